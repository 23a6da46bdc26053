// Package metrics collects wasmserve's metrics and exports them to
// Prometheus (a registry the admin listener serves) and to statsd (the
// runtime reporters of baseplate-serve, pushed over UDP).
//
// One Metrics value lives for the whole process, across reloads. It
// implements the observer the worker pool (pool.Observer) reports to,
// gives each front end its request observer (HTTPObserver, ThriftObserver;
// the interface checks live where the parts are wired, in package server),
// and registers the metrics guests define through the
// ABI's metric import. Everything on the request path is a few atomic
// operations on metrics resolved in advance.
package metrics

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// DefaultGuestLimit is the number of metric names an app may define when
// Options.GuestLimit is 0.
const DefaultGuestLimit = 100

// Options configure New. The zero value is usable.
type Options struct {
	// Logger receives blocked-worker reports and refused guest metrics;
	// nil means slog.Default().
	Logger *slog.Logger
	// GuestLimit bounds the number of distinct metric names guests may
	// define; 0 means DefaultGuestLimit and a negative value refuses all.
	GuestLimit int
	// BlockedWorker, when positive, is the guest-call duration from which a
	// call is reported as a blocked worker (logged, counted, and sent to
	// statsd as the timer runtime.blocked_worker).
	BlockedWorker time.Duration
	// Pool returns the pool serving now, or nil before there is one; it is
	// read at scrape and flush time for the idle/busy instance gauges.
	Pool func() *pool.Pool
	// Generation returns the generation serving now.
	Generation func() int64
}

// Metrics is the process's metric state. Its methods are safe for
// concurrent use.
type Metrics struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	// connections and requests for the concurrency reporter and the
	// *_active_requests gauges.
	openConns    atomic.Int64
	httpActive   atomic.Int64
	thriftActive atomic.Int64

	httpOnce   sync.Once
	http       *requestMetrics // set by HTTPObserver
	thriftOnce sync.Once
	thrift     *requestMetrics // set by ThriftObserver
	wasm       *wasmMetrics
	guest      *guestRegistry
	kv         *kvMetrics

	statsd atomic.Pointer[Statsd] // the running reporter, if any

	clientPools atomic.Pointer[func() []ClientPool] // see SetClientPools
}

// New returns Metrics with its collectors registered in a fresh Prometheus
// registry, including the Go runtime and process collectors; a front
// end's request series are registered when its observer is taken.
func New(opts Options) *Metrics {
	m := &Metrics{opts: opts, log: opts.Logger, reg: prometheus.NewRegistry()}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.opts.GuestLimit == 0 {
		m.opts.GuestLimit = DefaultGuestLimit
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.wasm = newWasmMetrics(m)
	m.guest = newGuestRegistry(m)
	m.kv = newKVMetrics(m)
	return m
}

// Registry is the Prometheus registry holding every metric, for the admin
// listener's /metrics and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// LatencyBuckets are the bucket upper bounds, in seconds, of the request
// latency histograms: 100 µs to 30 s, as baseplate uses.
var LatencyBuckets = []float64{
	0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 15, 30,
}

package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmserve/wasmserve/host/internal/kv"
)

// kvKinds is the number of kv.Kind values plus one for success (0).
const kvKinds = int(kv.Invalid) + 1

// kvStoreMetrics are one key-value store's counters, fed by its Handle and
// read by the Prometheus collector and the statsd reporter.
type kvStoreMetrics struct {
	name, backend string
	ops           [kv.NumOps]atomic.Uint64
	errs          [kvKinds]atomic.Uint64 // by kind; index 0 unused
	in, out       atomic.Uint64          // bytes sent to and received from the store
	latency       [kv.NumOps]prometheus.Observer
	times         samples // statsd timer samples, milliseconds
}

// kvMetrics are the per-store metrics of the key-value stores, kept by
// store name for the life of the process, across reloads.
type kvMetrics struct {
	mu       sync.Mutex
	stores   []*kvStoreMetrics // guarded by mu, in creation order
	byName   map[string]*kvStoreMetrics
	duration *prometheus.HistogramVec
	descs    struct{ ops, errs, bytes *prometheus.Desc }
}

func newKVMetrics(m *Metrics) *kvMetrics {
	k := &kvMetrics{byName: map[string]*kvStoreMetrics{}}
	k.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wasmserve_kv_duration_seconds",
		Help:    "Duration of guest key-value store operations, by store and operation.",
		Buckets: LatencyBuckets,
	}, []string{"store", "op"})
	k.descs.ops = prometheus.NewDesc("wasmserve_kv_operations_total", "Guest key-value store operations, by store, backend and operation.", []string{"store", "backend", "op"}, nil)
	k.descs.errs = prometheus.NewDesc("wasmserve_kv_errors_total", "Guest key-value store operations that failed, by store and kind: no_store, too_large, unavailable, timeout, invalid.", []string{"store", "kind"}, nil)
	k.descs.bytes = prometheus.NewDesc("wasmserve_kv_bytes_total", "Bytes of keys and values sent to (direction=in) and received from (direction=out) a key-value store.", []string{"store", "direction"}, nil)
	m.reg.MustRegister(k.duration, k)
	return k
}

// Describe implements prometheus.Collector.
func (k *kvMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- k.descs.ops
	ch <- k.descs.errs
	ch <- k.descs.bytes
}

// Collect implements prometheus.Collector.
func (k *kvMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, s := range k.list() {
		for op := range kv.NumOps {
			ch <- prometheus.MustNewConstMetric(k.descs.ops, prometheus.CounterValue, float64(s.ops[op].Load()), s.name, s.backend, op.String())
		}
		for kind := 1; kind < kvKinds; kind++ {
			ch <- prometheus.MustNewConstMetric(k.descs.errs, prometheus.CounterValue, float64(s.errs[kind].Load()), s.name, kv.Kind(kind).String())
		}
		ch <- prometheus.MustNewConstMetric(k.descs.bytes, prometheus.CounterValue, float64(s.in.Load()), s.name, "in")
		ch <- prometheus.MustNewConstMetric(k.descs.bytes, prometheus.CounterValue, float64(s.out.Load()), s.name, "out")
	}
}

func (k *kvMetrics) list() []*kvStoreMetrics {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*kvStoreMetrics(nil), k.stores...)
}

// KVObserver is the kv.Observer that feeds the key-value store metrics.
type KVObserver struct{ k *kvMetrics }

var _ kv.Observer = KVObserver{}

// KVObserver returns the observer to give every kv.Open.
func (m *Metrics) KVObserver() KVObserver { return KVObserver{m.kv} }

// Store implements kv.Observer. A store keeps its metrics across reloads;
// its backend label is the first one it was opened with.
func (o KVObserver) Store(name, backend string) func(op kv.Op, d time.Duration, in, out int, kind kv.Kind) {
	k := o.k
	k.mu.Lock()
	s, ok := k.byName[name]
	if !ok {
		s = &kvStoreMetrics{name: name, backend: backend}
		for op := range kv.NumOps {
			s.latency[op] = k.duration.WithLabelValues(name, op.String())
		}
		k.byName[name] = s
		k.stores = append(k.stores, s)
	}
	k.mu.Unlock()
	return s.observe
}

func (s *kvStoreMetrics) observe(op kv.Op, d time.Duration, in, out int, kind kv.Kind) {
	if op < 0 || op >= kv.NumOps {
		return
	}
	s.ops[op].Add(1)
	if kind > 0 && int(kind) < kvKinds {
		s.errs[kind].Add(1)
	}
	s.in.Add(uint64(in))
	s.out.Add(uint64(out))
	s.latency[op].Observe(d.Seconds())
	s.times.add(ms(d))
}

// kv sends the key-value store metrics: kv.STORE.ops.OP, kv.STORE.errors.KIND
// and kv.STORE.bytes_in/bytes_out counters, and the kv.STORE.latency timer.
func (s *Statsd) kv() {
	for _, st := range s.m.kv.list() {
		p := "kv." + st.name + "."
		for op := range kv.NumOps {
			s.counter(p+"ops."+op.String(), st.ops[op].Load())
		}
		for kind := 1; kind < kvKinds; kind++ {
			s.counter(p+"errors."+kv.Kind(kind).String(), st.errs[kind].Load())
		}
		s.counter(p+"bytes_in", st.in.Load())
		s.counter(p+"bytes_out", st.out.Load())
		s.timers(p+"latency", &st.times)
	}
}

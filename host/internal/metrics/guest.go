package metrics

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmserve/wasmserve/abi"
)

// GuestPrefix is prepended to a guest metric's name in Prometheus
// ("app_" + name); statsd uses "<namespace>.app." + name.
const GuestPrefix = "app_"

// maxGuestName bounds the length of a guest metric name.
const maxGuestName = 128

// guestMetric is one metric a guest defined, fed to both sinks.
type guestMetric struct {
	name  string // as the guest wrote it
	kind  int32
	prom  prometheus.Collector
	add   func(float64) // the Prometheus update
	delta atomic.Uint64 // counter: float64 bits added since the last flush
	value atomic.Uint64 // gauge: float64 bits of the last value
	set   atomic.Bool   // gauge: set at least once
	obs   samples       // histogram: values since the last flush
}

// guestRegistry holds the metrics guests defined, at most opts.GuestLimit
// names for the life of the process.
type guestRegistry struct {
	m       *Metrics
	byName  sync.Map // string → *guestMetric
	mu      sync.Mutex
	list    []*guestMetric // guarded by mu, in creation order
	refused atomic.Uint64
	lastLog atomic.Int64 // unix nanoseconds of the last refusal logged
}

func newGuestRegistry(m *Metrics) *guestRegistry {
	g := &guestRegistry{m: m}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wasmserve_guest_metrics_refused_total",
		Help: "Guest metric calls refused because the app reached metrics.guest_limit names.",
	}, func() float64 { return float64(g.refused.Load()) }))
	return g
}

// GuestMetric implements the ABI's metric import: kind is abi.MetricCounter
// (add v ≥ 0), abi.MetricGauge (set v) or abi.MetricHistogram (observe
// v). It returns 0, abi.ErrInvalid for a bad kind, name or value or a name
// already used with another kind, or abi.ErrLimit once the app has defined
// metrics.guest_limit names (the refusal is logged, at most every 10 s).
// Names are [a-zA-Z_:][a-zA-Z0-9_:]*, at most 128 bytes. It is the
// engine.Options.Metric callback.
func (m *Metrics) GuestMetric(kind int32, name string, v float64) int32 {
	if math.IsNaN(v) || math.IsInf(v, 0) || (kind == abi.MetricCounter && v < 0) {
		return abi.ErrInvalid
	}
	g := m.guest
	x, ok := g.byName.Load(name)
	if !ok {
		var code int32
		if x, code = g.define(kind, name); code != 0 {
			return code
		}
	}
	gm := x.(*guestMetric)
	if gm.kind != kind {
		return abi.ErrInvalid
	}
	gm.add(v)
	switch kind {
	case abi.MetricCounter:
		addFloat(&gm.delta, v)
	case abi.MetricGauge:
		gm.value.Store(math.Float64bits(v))
		gm.set.Store(true)
	case abi.MetricHistogram:
		if m.statsd.Load() != nil {
			gm.obs.add(v)
		}
	}
	return 0
}

func (g *guestRegistry) define(kind int32, name string) (any, int32) {
	if kind < abi.MetricCounter || kind > abi.MetricHistogram || !validGuestName(name) {
		return nil, abi.ErrInvalid
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if x, ok := g.byName.Load(name); ok {
		return x, 0
	}
	if len(g.list) >= g.m.opts.GuestLimit {
		g.refuse(name)
		return nil, abi.ErrLimit
	}
	gm := &guestMetric{name: name, kind: kind}
	help := fmt.Sprintf("Guest metric %q.", name)
	switch kind {
	case abi.MetricCounter:
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: GuestPrefix + name, Help: help})
		gm.prom, gm.add = c, c.Add
	case abi.MetricGauge:
		c := prometheus.NewGauge(prometheus.GaugeOpts{Name: GuestPrefix + name, Help: help})
		gm.prom, gm.add = c, c.Set
	case abi.MetricHistogram:
		c := prometheus.NewHistogram(prometheus.HistogramOpts{Name: GuestPrefix + name, Help: help})
		gm.prom, gm.add = c, c.Observe
	}
	if err := g.m.reg.Register(gm.prom); err != nil {
		g.m.log.Error("guest metric refused", "name", name, "error", err)
		return nil, abi.ErrInvalid
	}
	g.list = append(g.list, gm)
	g.byName.Store(name, gm)
	return gm, 0
}

func (g *guestRegistry) refuse(name string) {
	g.refused.Add(1)
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if last != 0 && now-last < int64(10*time.Second) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	g.m.log.Error("guest metric refused: the app reached metrics.guest_limit names",
		"name", name, "limit", g.m.opts.GuestLimit, "refused_total", g.refused.Load())
}

// metrics returns the guest metrics defined so far.
func (g *guestRegistry) metrics() []*guestMetric {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*guestMetric(nil), g.list...)
}

func validGuestName(s string) bool {
	if s == "" || len(s) > maxGuestName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// addFloat adds v to the float64 whose bits u holds.
func addFloat(u *atomic.Uint64, v float64) {
	for {
		old := u.Load()
		if u.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

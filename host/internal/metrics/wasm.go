package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// faultKinds are the engine fault kinds with their own label value, in
// engine.FaultKind order starting at engine.Trap.
var faultKinds = [...]engine.FaultKind{engine.Trap, engine.Timeout, engine.MemoryLimit, engine.BadResponse}

// maxWorkers bounds the worker ids whose memory is tracked.
const maxWorkers = 4096

// wasmMetrics are the metrics only a wasm server has. Counters are plain
// atomics read by a Prometheus collector and by the statsd reporter, which
// sends their deltas.
type wasmMetrics struct {
	m *Metrics

	instOK, instFailed   atomic.Uint64
	faults               [len(faultKinds) + 1]atomic.Uint64 // by kind; last = unknown kinds
	recycles             atomic.Uint64
	compiles, cacheHits  atomic.Uint64
	reloadOK, reloadFail atomic.Uint64
	blocked              atomic.Uint64

	memory   [maxWorkers + 1]atomic.Uint32 // by worker id
	maxIndex atomic.Int64                  // highest worker id seen

	instDur, compileDur prometheus.Histogram
	instTimes           samples // statsd timer samples, milliseconds
	compileTimes        samples
	blockedTimes        samples

	descs struct {
		instances, instantiations, faults, recycles, memory, memoryMax,
		compiles, cacheHits, reloads, generation, blocked *prometheus.Desc
	}
}

func newWasmMetrics(m *Metrics) *wasmMetrics {
	w := &wasmMetrics{m: m}
	w.instDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wasmserve_instantiation_duration_seconds",
		Help:    "Time to instantiate a guest instance, including its _initialize and init exports.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	})
	w.compileDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wasmserve_compile_duration_seconds",
		Help:    "Time to compile the guest module, once per generation.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	d := &w.descs
	d.instances = prometheus.NewDesc("wasmserve_instances", "Guest instances of the generation serving now, by state.", []string{"state"}, nil)
	d.instantiations = prometheus.NewDesc("wasmserve_instantiations_total", "Guest instantiations, by result.", []string{"result"}, nil)
	d.faults = prometheus.NewDesc("wasmserve_guest_faults_total", "Guest calls that failed and discarded their instance, by kind: trap, timeout, memory_limit, bad_response.", []string{"kind"}, nil)
	d.recycles = prometheus.NewDesc("wasmserve_instance_recycles_total", "Instances replaced after max_requests.", nil, nil)
	d.memory = prometheus.NewDesc("wasmserve_guest_memory_bytes", "Sum of the guest instances' linear memory sizes, as of each instance's last successful call.", nil, nil)
	d.memoryMax = prometheus.NewDesc("wasmserve_guest_memory_max_bytes", "Largest guest instance linear memory size, as of each instance's last successful call.", nil, nil)
	d.compiles = prometheus.NewDesc("wasmserve_compilations_total", "Guest module compilations (one per generation).", nil, nil)
	d.cacheHits = prometheus.NewDesc("wasmserve_compilation_cache_hits_total", "Guest module compilations served from the compilation cache.", nil, nil)
	d.reloads = prometheus.NewDesc("wasmserve_reloads_total", "Reloads, by result.", []string{"result"}, nil)
	d.generation = prometheus.NewDesc("wasmserve_generation", "Generation serving now; 1 for the first.", nil, nil)
	d.blocked = prometheus.NewDesc("wasmserve_blocked_worker_calls_total", "Guest calls that ran longer than monitoring.blocked_worker.", nil, nil)
	m.reg.MustRegister(w.instDur, w.compileDur, w)
	return w
}

// Describe implements prometheus.Collector.
func (w *wasmMetrics) Describe(ch chan<- *prometheus.Desc) {
	d := &w.descs
	for _, x := range []*prometheus.Desc{d.instances, d.instantiations, d.faults, d.recycles, d.memory,
		d.memoryMax, d.compiles, d.cacheHits, d.reloads, d.generation, d.blocked} {
		ch <- x
	}
}

// Collect implements prometheus.Collector.
func (w *wasmMetrics) Collect(ch chan<- prometheus.Metric) {
	d := &w.descs
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	if st, ok := w.poolStats(); ok {
		gauge(d.instances, float64(st.Idle), "idle")
		gauge(d.instances, float64(st.Busy), "busy")
	}
	counter(d.instantiations, w.instOK.Load(), "success")
	counter(d.instantiations, w.instFailed.Load(), "failure")
	for i, k := range faultKinds {
		counter(d.faults, w.faults[i].Load(), k.String())
	}
	if n := w.faults[len(faultKinds)].Load(); n > 0 {
		counter(d.faults, n, "other")
	}
	counter(d.recycles, w.recycles.Load())
	sum, top := w.memoryStats()
	gauge(d.memory, float64(sum))
	gauge(d.memoryMax, float64(top))
	counter(d.compiles, w.compiles.Load())
	counter(d.cacheHits, w.cacheHits.Load())
	counter(d.reloads, w.reloadOK.Load(), "success")
	counter(d.reloads, w.reloadFail.Load(), "failure")
	if g := w.m.opts.Generation; g != nil {
		gauge(d.generation, float64(g()))
	}
	counter(d.blocked, w.blocked.Load())
}

func (w *wasmMetrics) poolStats() (pool.Stats, bool) {
	if w.m.opts.Pool == nil {
		return pool.Stats{}, false
	}
	p := w.m.opts.Pool()
	if p == nil {
		return pool.Stats{}, false
	}
	return p.Stats(), true
}

func (w *wasmMetrics) memoryStats() (sum, top uint64) {
	n := w.maxIndex.Load()
	for i := int64(0); i <= n; i++ {
		v := uint64(w.memory[i].Load())
		sum += v
		top = max(top, v)
	}
	return sum, top
}

// PoolObserver is the pool.Observer that feeds the wasm metrics and the
// blocked-worker reporter. A guest call costs one atomic store and one
// comparison.
type PoolObserver struct{ w *wasmMetrics }

// PoolObserver returns the observer to give every pool.
func (m *Metrics) PoolObserver() PoolObserver { return PoolObserver{m.wasm} }

// Instantiated counts an instantiation and its duration.
func (o PoolObserver) Instantiated(d time.Duration, err error) {
	if err != nil {
		o.w.instFailed.Add(1)
	} else {
		o.w.instOK.Add(1)
	}
	o.w.instDur.Observe(d.Seconds())
	o.w.instTimes.add(ms(d))
}

// Fault counts a failed guest call by kind.
func (o PoolObserver) Fault(kind engine.FaultKind) {
	i := int(kind - engine.Trap)
	if i < 0 || i >= len(faultKinds) {
		i = len(faultKinds)
	}
	o.w.faults[i].Add(1)
}

// Recycled counts an instance recycled after max_requests.
func (o PoolObserver) Recycled() { o.w.recycles.Add(1) }

// GuestCall records the instance's memory size and reports the call when
// it ran for monitoring.blocked_worker or longer.
func (o PoolObserver) GuestCall(d time.Duration, worker int, memory uint32, req *abi.RequestInfo) {
	if worker >= 0 && worker <= maxWorkers {
		o.w.memory[worker].Store(memory)
		if int64(worker) > o.w.maxIndex.Load() {
			o.w.raiseIndex(int64(worker))
		}
	}
	if t := o.w.m.opts.BlockedWorker; t > 0 && d >= t {
		o.w.blockedCall(d, worker, req)
	}
}

func (w *wasmMetrics) raiseIndex(i int64) {
	for {
		cur := w.maxIndex.Load()
		if i <= cur || w.maxIndex.CompareAndSwap(cur, i) {
			return
		}
	}
}

func (w *wasmMetrics) blockedCall(d time.Duration, worker int, req *abi.RequestInfo) {
	w.blocked.Add(1)
	w.blockedTimes.add(ms(d))
	args := []any{"worker", worker, "duration", d, "threshold", w.m.opts.BlockedWorker}
	if req != nil {
		if req.Kind == abi.KindThrift {
			args = append(args, "request", "thrift "+req.Method)
		} else {
			args = append(args, "request", req.Method+" "+req.Path)
		}
	}
	w.m.log.Warn("blocked worker: guest call exceeded monitoring.blocked_worker", args...)
}

// CompiledModule records a module compilation: its duration and whether
// the compilation cache served it.
func (m *Metrics) CompiledModule(d time.Duration, cacheHit bool) {
	m.wasm.compiles.Add(1)
	if cacheHit {
		m.wasm.cacheHits.Add(1)
	}
	m.wasm.compileDur.Observe(d.Seconds())
	m.wasm.compileTimes.add(ms(d))
}

// ReloadSucceeded counts a reload that swapped in a new generation.
func (m *Metrics) ReloadSucceeded() { m.wasm.reloadOK.Add(1) }

// ReloadFailed counts a reload that left the old generation serving.
func (m *Metrics) ReloadFailed() { m.wasm.reloadFail.Add(1) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxSamples bounds the timer samples kept between two statsd flushes; the
// rest are dropped and the kept ones sent with a sample rate.
const maxSamples = 1000

// samples buffers timer or histogram values for the next statsd flush.
type samples struct {
	mu   sync.Mutex
	vals []float64
	seen int
}

func (s *samples) add(v float64) {
	s.mu.Lock()
	s.seen++
	if len(s.vals) < maxSamples {
		s.vals = append(s.vals, v)
	}
	s.mu.Unlock()
}

// take returns the buffered values and the fraction of observed values
// they represent, and empties the buffer.
func (s *samples) take() ([]float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals, seen := s.vals, s.seen
	s.vals, s.seen = nil, 0
	if seen == 0 {
		return nil, 1
	}
	return vals, float64(len(vals)) / float64(seen)
}

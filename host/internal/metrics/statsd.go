package metrics

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmserve/wasmserve/abi"
)

// DefaultStatsdInterval is how often the statsd reporter sends, aligned to
// the wall clock (at :00, :10, :20 … seconds).
const DefaultStatsdInterval = 10 * time.Second

// maxDatagram is the largest UDP payload sent: lines are packed into
// datagrams that fit an Ethernet MTU.
const maxDatagram = 1432

// StatsdOptions configure StartStatsd.
type StatsdOptions struct {
	// Address is the statsd server, host:port (UDP). Required.
	Address string
	// Namespace prefixes every name: <Namespace>.runtime.*, .wasm.*, .app.*.
	Namespace string
	// Concurrency sends the runtime.open_connections and
	// runtime.active_requests gauges (monitoring.concurrency).
	Concurrency bool
	// GCStats sends the runtime.gc.* gauges (monitoring.gc.stats).
	GCStats bool
	// GCTiming sends the timer runtime.gc.elapsed, one value per GC cycle
	// (monitoring.gc.timing).
	GCTiming bool
	// Hostname and PID are the values of the hostname and PID tags; "" and
	// 0 mean os.Hostname() and os.Getpid().
	Hostname string
	PID      int
	// Interval between sends, aligned to the wall clock; 0 means
	// DefaultStatsdInterval. Shorter intervals are for tests.
	Interval time.Duration
}

// Statsd sends the runtime reporters, the wasm metrics and the guest
// metrics to a statsd server over UDP, in DogStatsD format with the tags
// hostname and PID. Lost datagrams and an absent server are not errors.
type Statsd struct {
	m        *Metrics
	opts     StatsdOptions
	conn     net.Conn
	prefix   string // namespace and dot, or ""
	tags     string // "|#hostname:…,PID:…"
	done     chan struct{}
	stopped  chan struct{}
	once     sync.Once
	last     map[string]uint64 // counter values sent, for deltas
	lastGC   uint32            // MemStats.NumGC already reported
	gcSample []metrics.Sample
	gcNames  []string
	buf      []byte
}

// gcMetrics maps runtime/metrics names to the gauge names sent under
// runtime.gc.
var gcMetrics = []struct{ metric, name string }{
	{"/gc/cycles/total:gc-cycles", "gc.cycles"},
	{"/gc/cycles/forced:gc-cycles", "gc.forced_cycles"},
	{"/gc/heap/live:bytes", "gc.heap_live_bytes"},
	{"/gc/heap/goal:bytes", "gc.heap_goal_bytes"},
	{"/gc/heap/objects:objects", "gc.heap_objects"},
	{"/gc/heap/allocs:bytes", "gc.heap_allocs_bytes"},
	{"/memory/classes/total:bytes", "gc.memory_total_bytes"},
	{"/gc/gogc:percent", "gc.gogc_percent"},
}

// StartStatsd starts sending to opts.Address every opts.Interval until
// Close. It fails only when the address does not resolve.
func (m *Metrics) StartStatsd(opts StatsdOptions) (*Statsd, error) {
	if opts.Address == "" {
		return nil, errors.New("statsd: no address")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultStatsdInterval
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	conn, err := net.Dial("udp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("statsd[%s]: %w", opts.Address, err)
	}
	s := &Statsd{
		m:       m,
		opts:    opts,
		conn:    conn,
		tags:    "|#hostname:" + tagValue(opts.Hostname) + ",PID:" + strconv.Itoa(opts.PID),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		last:    map[string]uint64{},
	}
	if opts.Namespace != "" {
		s.prefix = opts.Namespace + "."
	}
	if opts.GCStats {
		descs := map[string]bool{}
		for _, d := range metrics.All() {
			descs[d.Name] = true
		}
		for _, g := range gcMetrics {
			if descs[g.metric] {
				s.gcSample = append(s.gcSample, metrics.Sample{Name: g.metric})
				s.gcNames = append(s.gcNames, g.name)
			}
		}
	}
	if opts.GCTiming {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.lastGC = ms.NumGC
	}
	m.statsd.Store(s)
	go s.run()
	return s, nil
}

// Close stops the reporter; it sends nothing more. It is safe to call more
// than once.
func (s *Statsd) Close() error {
	s.once.Do(func() {
		close(s.done)
		<-s.stopped
		s.m.statsd.CompareAndSwap(s, nil)
		s.conn.Close()
	})
	return nil
}

func (s *Statsd) run() {
	defer close(s.stopped)
	iv := s.opts.Interval
	next := nextFlush(time.Now(), iv)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.flush()
		now := time.Now()
		next = next.Add(iv)
		if !next.After(now) { // the machine slept or the clock jumped
			next = nextFlush(now, iv)
		}
		t.Reset(time.Until(next))
	}
}

// nextFlush is the first multiple of iv since the Unix epoch (in wall
// clock time) after now: with 10 s, the next :00, :10, :20 … second.
func nextFlush(now time.Time, iv time.Duration) time.Time {
	return now.Truncate(iv).Add(iv)
}

// flush sends one report.
func (s *Statsd) flush() {
	s.buf = s.buf[:0]
	m := s.m
	if s.opts.Concurrency {
		s.gauge("runtime.open_connections", float64(m.openConns.Load()))
		s.gauge("runtime.active_requests", float64(m.httpActive.Load()+m.thriftActive.Load()))
	}
	if len(s.gcSample) > 0 {
		metrics.Read(s.gcSample)
		for i, smp := range s.gcSample {
			switch smp.Value.Kind() {
			case metrics.KindUint64:
				s.gauge("runtime."+s.gcNames[i], float64(smp.Value.Uint64()))
			case metrics.KindFloat64:
				s.gauge("runtime."+s.gcNames[i], smp.Value.Float64())
			}
		}
	}
	if s.opts.GCTiming {
		s.gcTimes()
	}
	s.timers("runtime.blocked_worker", &m.wasm.blockedTimes)
	s.wasm()
	s.guest()
	s.clients()
	s.kv()
	s.send()
}

func (s *Statsd) gcTimes() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	from := s.lastGC
	if ms.NumGC-from > uint32(len(ms.PauseNs)) {
		from = ms.NumGC - uint32(len(ms.PauseNs))
	}
	for n := from + 1; n <= ms.NumGC && n > from; n++ {
		pause := ms.PauseNs[(n+uint32(len(ms.PauseNs))-1)%uint32(len(ms.PauseNs))]
		s.line("runtime.gc.elapsed", float64(pause)/1e6, "ms", 1)
	}
	s.lastGC = ms.NumGC
}

func (s *Statsd) wasm() {
	w := s.m.wasm
	if st, ok := w.poolStats(); ok {
		s.gauge("wasm.instances.idle", float64(st.Idle))
		s.gauge("wasm.instances.busy", float64(st.Busy))
	}
	s.counter("wasm.instantiations.success", w.instOK.Load())
	s.counter("wasm.instantiations.failure", w.instFailed.Load())
	s.timers("wasm.instantiation_time", &w.instTimes)
	for i, k := range faultKinds {
		s.counter("wasm.faults."+k.String(), w.faults[i].Load())
	}
	s.counter("wasm.faults.other", w.faults[len(faultKinds)].Load())
	s.counter("wasm.recycles", w.recycles.Load())
	sum, top := w.memoryStats()
	s.gauge("wasm.guest_memory_bytes", float64(sum))
	s.gauge("wasm.guest_memory_max_bytes", float64(top))
	s.counter("wasm.compilations", w.compiles.Load())
	s.counter("wasm.compilation_cache_hits", w.cacheHits.Load())
	s.timers("wasm.compile_time", &w.compileTimes)
	s.counter("wasm.reloads.success", w.reloadOK.Load())
	s.counter("wasm.reloads.failure", w.reloadFail.Load())
	if g := s.m.opts.Generation; g != nil {
		s.gauge("wasm.generation", float64(g()))
	}
}

func (s *Statsd) guest() {
	for _, gm := range s.m.guest.metrics() {
		name := "app." + strings.ReplaceAll(gm.name, ":", "_")
		switch gm.kind {
		case abi.MetricCounter:
			if d := math.Float64frombits(gm.delta.Swap(0)); d != 0 {
				s.line(name, d, "c", 1)
			}
		case abi.MetricGauge:
			if gm.set.Load() {
				s.gauge(name, math.Float64frombits(gm.value.Load()))
			}
		case abi.MetricHistogram:
			vals, rate := gm.obs.take()
			for _, v := range vals {
				s.line(name, v, "h", rate)
			}
		}
	}
}

// counter sends the increase of a cumulative count since the last flush,
// if any.
func (s *Statsd) counter(name string, total uint64) {
	d := total - s.last[name]
	s.last[name] = total
	if d > 0 {
		s.line(name, float64(d), "c", 1)
	}
}

// gauge sends an absolute gauge value; a negative one is sent after a 0,
// since a signed value means "adjust" to statsd.
func (s *Statsd) gauge(name string, v float64) {
	if v < 0 {
		s.line(name, 0, "g", 1)
	}
	s.line(name, v, "g", 1)
}

func (s *Statsd) timers(name string, smp *samples) {
	vals, rate := smp.take()
	for _, v := range vals {
		s.line(name, v, "ms", rate)
	}
}

// line appends one statsd line, sending the datagram first if the line
// would not fit.
func (s *Statsd) line(name string, v float64, typ string, rate float64) {
	var l [256]byte
	b := append(l[:0], s.prefix...)
	b = append(b, name...)
	b = append(b, ':')
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	b = append(b, '|')
	b = append(b, typ...)
	if rate < 1 {
		b = append(b, "|@"...)
		b = strconv.AppendFloat(b, rate, 'f', 4, 64)
	}
	b = append(b, s.tags...)
	if len(s.buf) > 0 && len(s.buf)+1+len(b) > maxDatagram {
		s.send()
	}
	if len(s.buf) > 0 {
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, b...)
}

func (s *Statsd) send() {
	if len(s.buf) == 0 {
		return
	}
	if _, err := s.conn.Write(s.buf); err != nil {
		s.m.log.Debug("statsd send", "address", s.opts.Address, "error", err)
	}
	s.buf = s.buf[:0]
}

// tagValue makes v safe as a DogStatsD tag value.
func tagValue(v string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ',', '|', '#', ' ', '\n':
			return '_'
		}
		return r
	}, v)
}

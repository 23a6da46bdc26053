package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"

	dto "github.com/prometheus/client_model/go"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
)

// value returns the value of the metric name with labels, or -1.
func value(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range mt.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if len(have) != len(labels) {
				continue
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return metricValue(mt)
		}
	}
	return -1
}

func metricValue(mt *dto.Metric) float64 {
	switch {
	case mt.Counter != nil:
		return mt.Counter.GetValue()
	case mt.Gauge != nil:
		return mt.Gauge.GetValue()
	case mt.Histogram != nil:
		return float64(mt.Histogram.GetSampleCount())
	}
	return -1
}

type syncBuffer = testguest.Buffer

func TestHTTPObserver(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	o := m.HTTPObserver()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				o.RequestStarted()
				o.RequestDone("GET", 200, time.Millisecond)
			}
		})
	}
	wg.Wait()
	o.RequestStarted()
	o.RequestDone("BREW", 418, 2*time.Second)
	o.RequestStarted()
	o.RequestDone("POST", 0, time.Millisecond)
	o.RequestStarted()
	o.RequestStarted()
	o.RequestDone("GET", 503, time.Millisecond)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_server_requests_total", map[string]string{"http_method": "GET", "http_success": "true", "http_response_code": "200"}, 800},
		{"http_server_requests_total", map[string]string{"http_method": "other", "http_success": "false", "http_response_code": "418"}, 1},
		{"http_server_requests_total", map[string]string{"http_method": "POST", "http_success": "true", "http_response_code": "200"}, 1},
		{"http_server_requests_total", map[string]string{"http_method": "GET", "http_success": "false", "http_response_code": "503"}, 1},
		{"http_server_latency_seconds", map[string]string{"http_method": "GET", "http_success": "true"}, 800},
		{"http_server_latency_seconds", map[string]string{"http_method": "GET", "http_success": "false"}, 1},
		{"http_server_active_requests", map[string]string{}, 1},
	} {
		if got := value(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestThriftObserver(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	o := m.ThriftObserver()
	o.ConnOpened()
	for range 3 {
		o.RequestStarted()
		o.RequestDone("echo", true, "", time.Millisecond)
	}
	o.RequestStarted()
	o.RequestDone("echo", false, "NotFound", time.Millisecond)
	for i := range maxThriftLabels + 10 {
		o.RequestStarted()
		o.RequestDone("m"+strings.Repeat("x", i%600), true, "", time.Millisecond)
	}
	if got := value(t, m, "thrift_server_requests_total", map[string]string{"thrift_method": "echo", "thrift_success": "true", "thrift_exception_type": ""}); got != 3 {
		t.Errorf("echo successes = %v, want 3", got)
	}
	if got := value(t, m, "thrift_server_requests_total", map[string]string{"thrift_method": "echo", "thrift_success": "false", "thrift_exception_type": "NotFound"}); got != 1 {
		t.Errorf("echo NotFound = %v, want 1", got)
	}
	if got := value(t, m, "thrift_server_requests_total", map[string]string{"thrift_method": "other", "thrift_success": "true", "thrift_exception_type": ""}); got != 12 {
		t.Errorf("overflow method count = %v, want 12", got)
	}
	if got := value(t, m, "thrift_server_active_requests", map[string]string{}); got != 0 {
		t.Errorf("thrift_server_active_requests = %v, want 0", got)
	}
	if got := m.openConns.Load(); got != 1 {
		t.Errorf("open connections = %d, want 1", got)
	}
}

func TestGuestMetrics(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	m := New(Options{GuestLimit: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, tc := range []struct {
		kind int32
		name string
		v    float64
		want int32
	}{
		{abi.MetricCounter, "jobs", 2, 0},
		{abi.MetricCounter, "jobs", 3, 0},
		{abi.MetricGauge, "queue_depth", -4, 0},
		{abi.MetricHistogram, "job_seconds", 0.5, 0},
		{abi.MetricGauge, "jobs", 1, abi.ErrInvalid},     // kind differs from the first use
		{abi.MetricCounter, "jobs", -1, abi.ErrInvalid},  // counters only go up
		{abi.MetricCounter, "9lives", 1, abi.ErrInvalid}, // bad name
		{abi.MetricCounter, "a-b", 1, abi.ErrInvalid},    // bad name
		{4, "kind", 1, abi.ErrInvalid},                   // bad kind
		{abi.MetricCounter, "fourth", 1, abi.ErrLimit},   // over the bound
		{abi.MetricCounter, "fifth", 1, abi.ErrLimit},    // still over
		{abi.MetricHistogram, "job_seconds", 1.5, 0},     // known names still work
		{abi.MetricGauge, strings.Repeat("x", 129), 1, abi.ErrInvalid},
	} {
		if got := m.GuestMetric(tc.kind, tc.name, tc.v); got != tc.want {
			t.Errorf("GuestMetric(%d, %q, %v) = %d, want %d", tc.kind, tc.name, tc.v, got, tc.want)
		}
	}
	for name, want := range map[string]float64{"app_jobs": 5, "app_queue_depth": -4, "app_job_seconds": 2, "wasmserve_guest_metrics_refused_total": 2} {
		if got := value(t, m, name, map[string]string{}); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, m, "app_fourth", map[string]string{}); got != -1 {
		t.Errorf("refused metric app_fourth exported with value %v", got)
	}
	if n := strings.Count(logs.String(), "guest metric refused"); n != 1 {
		t.Errorf("%d refusal log records, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "name=fourth") {
		t.Errorf("refusal log lacks level or name:\n%s", logs.String())
	}
}

func TestPoolObserver(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	m := New(Options{BlockedWorker: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Generation: func() int64 { return 7 }})
	o := m.PoolObserver()
	o.Instantiated(time.Millisecond, nil)
	o.Instantiated(time.Millisecond, nil)
	o.Instantiated(time.Millisecond, errors.New("boom"))
	o.Fault(engine.Trap)
	o.Fault(engine.Timeout)
	o.Fault(engine.Timeout)
	o.Fault(engine.MemoryLimit)
	o.Recycled()
	req := &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/slow"}
	o.GuestCall(time.Millisecond, 1, 2<<16, req)
	o.GuestCall(time.Second, 2, 3<<16, req)
	m.CompiledModule(time.Second, true)
	m.ReloadSucceeded()
	m.ReloadFailed()
	m.ReloadFailed()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wasmserve_instantiations_total", map[string]string{"result": "success"}, 2},
		{"wasmserve_instantiations_total", map[string]string{"result": "failure"}, 1},
		{"wasmserve_instantiation_duration_seconds", map[string]string{}, 3},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "trap"}, 1},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "timeout"}, 2},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "memory_limit"}, 1},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "bad_response"}, 0},
		{"wasmserve_instance_recycles_total", map[string]string{}, 1},
		{"wasmserve_guest_memory_bytes", map[string]string{}, 5 << 16},
		{"wasmserve_guest_memory_max_bytes", map[string]string{}, 3 << 16},
		{"wasmserve_compilations_total", map[string]string{}, 1},
		{"wasmserve_compilation_cache_hits_total", map[string]string{}, 1},
		{"wasmserve_compile_duration_seconds", map[string]string{}, 1},
		{"wasmserve_reloads_total", map[string]string{"result": "success"}, 1},
		{"wasmserve_reloads_total", map[string]string{"result": "failure"}, 2},
		{"wasmserve_generation", map[string]string{}, 7},
		{"wasmserve_blocked_worker_calls_total", map[string]string{}, 1},
	} {
		if got := value(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if s := logs.String(); strings.Count(s, "blocked worker") != 1 || !strings.Contains(s, "worker=2") || !strings.Contains(s, `request="GET /slow"`) {
		t.Errorf("want one blocked-worker record for worker 2, GET /slow:\n%s", s)
	}
}

func TestStatsd(t *testing.T) {
	t.Parallel()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := New(Options{BlockedWorker: time.Millisecond})
	h := m.HTTPObserver()
	h.ConnState(nil, http.StateNew)
	h.ConnState(nil, http.StateNew)
	h.RequestStarted()
	m.PoolObserver().GuestCall(5*time.Millisecond, 1, 65536, &abi.RequestInfo{Method: "GET", Path: "/"})
	m.PoolObserver().Fault(engine.Trap)
	s, err := m.StartStatsd(StatsdOptions{
		Address: conn.LocalAddr().String(), Namespace: "ns", Concurrency: true, GCStats: true,
		Hostname: "host a", PID: 42, Interval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.GuestMetric(abi.MetricCounter, "hits", 2)
	m.GuestMetric(abi.MetricGauge, "temp", -3)
	m.GuestMetric(abi.MetricHistogram, "size:bytes", 10)

	want := []string{
		"ns.runtime.open_connections:2|g|#hostname:host_a,PID:42",
		"ns.runtime.active_requests:1|g|#hostname:host_a,PID:42",
		"ns.wasm.faults.trap:1|c|#hostname:host_a,PID:42",
		"ns.wasm.guest_memory_bytes:65536|g|#hostname:host_a,PID:42",
		"ns.app.hits:2|c|#hostname:host_a,PID:42",
		"ns.app.temp:0|g|#hostname:host_a,PID:42",
		"ns.app.temp:-3|g|#hostname:host_a,PID:42",
		"ns.app.size_bytes:10|h|#hostname:host_a,PID:42",
		"ns.runtime.blocked_worker:5|ms|#hostname:host_a,PID:42",
	}
	got := map[string]int{}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 65536)
	gcSeen := false
	for missing := len(want); missing > 0 || !gcSeen; {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read: %v; received %v", err, got)
		}
		if n > maxDatagram {
			t.Errorf("datagram of %d bytes, want at most %d", n, maxDatagram)
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			got[l]++
			if strings.HasPrefix(l, "ns.runtime.gc.cycles:") {
				gcSeen = true
			}
		}
		missing = 0
		for _, w := range want {
			if got[w] == 0 {
				missing++
			}
		}
	}
	// Counters are sent as deltas: a second report must not repeat them.
	for range 3 {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			got[l]++
		}
	}
	for _, once := range []string{"ns.wasm.faults.trap:1|c|#hostname:host_a,PID:42", "ns.app.hits:2|c|#hostname:host_a,PID:42"} {
		if got[once] != 1 {
			t.Errorf("%q sent %d times, want once", once, got[once])
		}
	}
}

func TestNextFlushAligned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ now, want time.Time }{
		{time.Date(2026, 1, 2, 3, 4, 17, 500, time.UTC), time.Date(2026, 1, 2, 3, 4, 20, 0, time.UTC)},
		{time.Date(2026, 1, 2, 3, 4, 20, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 30, 0, time.UTC)},
		{time.Date(2026, 1, 2, 3, 4, 59, 999, time.UTC), time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)},
	} {
		if got := nextFlush(tc.now, DefaultStatsdInterval); !got.Equal(tc.want) {
			t.Errorf("nextFlush(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

// BenchmarkHTTPObserver is the per-request cost of the HTTP metrics.
func BenchmarkHTTPObserver(b *testing.B) {
	m := New(Options{})
	o := m.HTTPObserver()
	p := m.PoolObserver()
	req := &abi.RequestInfo{Method: "GET", Path: "/"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.RequestStarted()
			p.GuestCall(time.Microsecond, 1, 1<<20, req)
			o.RequestDone("GET", 200, time.Millisecond)
		}
	})
}

package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// mtProc is a wasmserve process started by a metrics test, with its JSON
// log records collected as they arrive.
type mtProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []map[string]any
	exited chan struct{}
	app    string // http://host:port of the app listener
	admin  string // http://host:port of the admin listener
}

// mtStart serves hello-go with the server keys of keys (over the test
// defaults) and waits until both listeners are up.
func mtStart(t *testing.T, keys map[string]string, env ...string) *mtProc {
	t.Helper()
	module := testguest.Module(t, "hello-go", "hello.wasm")
	bin := testguest.Binary(t)
	server := map[string]string{
		"factory":           "http",
		"bind":              "127.0.0.1:0",
		"workers":           "2",
		"max_concurrency":   "64",
		"compilation_cache": testguest.CacheDir(),
		"admin.bind":        "127.0.0.1:0",
		"log.format":        "json",
		"drain_time":        "0 seconds",
		"stop_timeout":      "5 seconds",
	}
	for k, v := range keys {
		server[k] = v
	}
	var b strings.Builder
	b.WriteString("[server:main]\n")
	for k, v := range server {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	fmt.Fprintf(&b, "\n[app:main]\nfactory = %s\n", module)
	ini := filepath.Join(t.TempDir(), "app.ini")
	if err := os.WriteFile(ini, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &mtProc{t: t, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, ini)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			rec := map[string]any{}
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"msg": sc.Text()}
			}
			p.mu.Lock()
			p.logs = append(p.logs, rec)
			p.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			p.mu.Lock()
			for _, rec := range p.logs {
				t.Logf("server log: %v", rec)
			}
			p.mu.Unlock()
		}
	})
	p.app = "http://" + p.waitLog(t, "listening", 60*time.Second)["address"].(string)
	p.admin = "http://" + p.waitLog(t, "admin listening", 10*time.Second)["address"].(string)
	return p
}

// waitLog returns the first log record with message msg, waiting until
// the deadline.
func (p *mtProc) waitLog(t *testing.T, msg string, wait time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if recs := p.find(msg); len(recs) > 0 {
			return recs[0]
		}
		select {
		case <-p.exited:
			if recs := p.find(msg); len(recs) > 0 {
				return recs[0]
			}
			t.Fatalf("wasmserve exited before logging %q", msg)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log record in %s", msg, wait)
		}
	}
}

// find returns the log records whose message starts with msg.
func (p *mtProc) find(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, rec := range p.logs {
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

var mtClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// mtGet requests url and returns the status and body.
func mtGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := mtClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// mtScrape fetches and parses the admin listener's /metrics.
func mtScrape(t *testing.T, p *mtProc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := mtClient.Get(p.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return fams
}

// mtValue sums the values of family name's metrics whose labels include
// want: counters, gauges, untyped values, and histogram sample counts.
func mtValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum := 0.0
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

type mtWant struct {
	name   string
	labels map[string]string
	value  float64
}

// mtEventually scrapes until every want holds or the deadline passes.
func mtEventually(t *testing.T, p *mtProc, wants []mtWant) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams := mtScrape(t, p)
		var bad []string
		for _, w := range wants {
			if got := mtValue(fams, w.name, w.labels); got != w.value {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
			}
		}
		if len(bad) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never matched:\n%s", strings.Join(bad, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsPrometheusScrape(t *testing.T) {
	t.Parallel()
	p := mtStart(t, map[string]string{"request_timeout": "1 second"})
	const hellos, counted = 20, 3
	for range hellos {
		if code, body := mtGet(t, p.app+"/"); code != 200 || body != "hello, world" {
			t.Fatalf("GET /: %d %q", code, body)
		}
	}
	for range counted {
		if code, body := mtGet(t, p.app+"/metric"); code != 200 {
			t.Fatalf("GET /metric: %d %q", code, body)
		}
	}
	if code, _ := mtGet(t, p.app+"/panic"); code != 500 {
		t.Fatalf("GET /panic: status %d, want 500", code)
	}
	if code, _ := mtGet(t, p.app+"/spin"); code != 504 {
		t.Fatalf("GET /spin: status %d, want 504", code)
	}
	if code, _ := mtGet(t, p.app+"/status/404"); code != 404 {
		t.Fatalf("GET /status/404: status %d, want 404", code)
	}
	get := map[string]string{"http_method": "GET"}
	fams := mtEventually(t, p, []mtWant{
		{"http_server_requests_total", get, hellos + counted + 3},
		{"http_server_requests_total", map[string]string{"http_response_code": "200", "http_success": "true"}, hellos + counted},
		{"http_server_requests_total", map[string]string{"http_response_code": "500", "http_success": "false"}, 1},
		{"http_server_requests_total", map[string]string{"http_response_code": "504"}, 1},
		{"http_server_requests_total", map[string]string{"http_response_code": "404", "http_success": "false"}, 1},
		{"http_server_latency_seconds", get, hellos + counted + 3},
		{"http_server_latency_seconds", map[string]string{"http_success": "true"}, hellos + counted},
		{"http_server_active_requests", nil, 0},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "trap"}, 1},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "timeout"}, 1},
		{"wasmserve_guest_faults_total", map[string]string{"kind": "memory_limit"}, 0},
		{"app_hello_requests", nil, counted},
		{"wasmserve_compilations_total", nil, 1},
		{"wasmserve_generation", nil, 1},
		{"wasmserve_instances", nil, 2},
		{"wasmserve_instantiations_total", map[string]string{"result": "success"}, 4}, // 2 + 2 replacements
		{"wasmserve_instantiation_duration_seconds", nil, 4},
		{"wasmserve_blocked_worker_calls_total", nil, 0},
	})
	// The latency histogram uses baseplate's buckets, 100 µs to 30 s.
	h := fams["http_server_latency_seconds"].GetMetric()[0].GetHistogram()
	b := h.GetBucket()
	if n := len(b); n > 0 && math.IsInf(b[n-1].GetUpperBound(), 1) {
		b = b[:n-1] // the parser adds +Inf
	}
	if len(b) == 0 || b[0].GetUpperBound() != 0.0001 || b[len(b)-1].GetUpperBound() != 30 {
		t.Errorf("latency buckets %v, want 0.0001 … 30", b)
	}
	if v := mtValue(fams, "wasmserve_guest_memory_bytes", nil); v < 65536 {
		t.Errorf("wasmserve_guest_memory_bytes = %v, want at least a page", v)
	}
	// Only the active front end's series: none for Thrift on an HTTP server.
	for name := range fams {
		if strings.HasPrefix(name, "thrift_server_") {
			t.Errorf("HTTP-only server exports %s", name)
		}
	}
}

// mtStatsd is a statsd server: a real UDP socket collecting lines.
type mtStatsd struct {
	conn  net.PacketConn
	mu    sync.Mutex
	lines []string
}

func mtListenStatsd(t *testing.T) *mtStatsd {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &mtStatsd{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.lines = append(s.lines, strings.Split(string(buf[:n]), "\n")...)
			s.mu.Unlock()
		}
	}()
	return s
}

// waitLine waits for a line satisfying ok and returns it.
func (s *mtStatsd) waitLine(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			if ok(l) {
				s.mu.Unlock()
				return l
			}
		}
		n := len(s.lines)
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.mu.Lock()
			tail := s.lines[max(0, n-40):]
			s.mu.Unlock()
			t.Fatalf("no statsd line %s in 20 s; last lines:\n%s", what, strings.Join(tail, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sum adds the values of the lines named name with type typ.
func (s *mtStatsd) sum(name, typ string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0.0
	for _, l := range s.lines {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			fields := strings.Split(v, "|")
			if len(fields) >= 2 && fields[1] == typ {
				f, _ := strconv.ParseFloat(fields[0], 64)
				total += f
			}
		}
	}
	return total
}

func TestMetricsStatsdRuntime(t *testing.T) {
	t.Parallel()
	sd := mtListenStatsd(t)
	p := mtStart(t, map[string]string{
		"workers":              "3",
		"metrics.endpoint":     sd.conn.LocalAddr().String(),
		"metrics.namespace":    "mtns",
		"monitoring.gc.timing": "true",
	}, StatsdIntervalEnv+"=100ms")
	host, _ := os.Hostname()
	tags := "|#hostname:" + host + ",PID:" + strconv.Itoa(p.cmd.Process.Pid)
	sd.waitLine(t, "active_requests 0", func(l string) bool { return l == "mtns.runtime.active_requests:0|g"+tags })

	// Three slow requests in flight, each on its own connection.
	const slow = 3
	var wg sync.WaitGroup
	codes := make(chan int, slow)
	for range slow {
		wg.Go(func() {
			resp, err := mtClient.Get(p.app + "/sleep?ms=3000")
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	sd.waitLine(t, "active_requests 3", func(l string) bool { return l == "mtns.runtime.active_requests:3|g"+tags })
	sd.waitLine(t, "open_connections 3", func(l string) bool { return l == "mtns.runtime.open_connections:3|g"+tags })
	sd.waitLine(t, "busy instances 3", func(l string) bool { return l == "mtns.wasm.instances.busy:3|g"+tags })
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("GET /sleep: status %d, want 200", c)
		}
	}
	// Once they are done, the gauges fall back.
	sd.waitLine(t, "open_connections 0 after the requests", func(l string) bool {
		return l == "mtns.runtime.open_connections:0|g"+tags
	})
	sd.waitLine(t, "busy instances 0 after the requests", func(l string) bool {
		return l == "mtns.wasm.instances.busy:0|g"+tags
	})
	sd.waitLine(t, "a GC gauge", func(l string) bool {
		return strings.HasPrefix(l, "mtns.runtime.gc.heap_live_bytes:") && strings.HasSuffix(l, "|g"+tags)
	})
	if got := sd.sum("mtns.wasm.instantiations.success", "c"); got < 3 {
		t.Errorf("wasm.instantiations.success sums to %v, want at least 3", got)
	}
	if got := sd.sum("mtns.wasm.compilations", "c"); got != 1 {
		t.Errorf("wasm.compilations sums to %v, want 1", got)
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for _, l := range sd.lines {
		if l != "" && !strings.HasSuffix(l, tags) {
			t.Errorf("line %q lacks the tags %q", l, tags)
		}
		if l != "" && !strings.HasPrefix(l, "mtns.") {
			t.Errorf("line %q lacks the namespace", l)
		}
	}
}

func TestMetricsBlockedWorker(t *testing.T) {
	t.Parallel()
	sd := mtListenStatsd(t)
	p := mtStart(t, map[string]string{
		"monitoring.blocked_worker": "1 second",
		"metrics.endpoint":          sd.conn.LocalAddr().String(),
		"metrics.namespace":         "blk",
	}, StatsdIntervalEnv+"=100ms")
	for range 10 {
		if code, _ := mtGet(t, p.app+"/"); code != 200 {
			t.Fatalf("GET /: %d", code)
		}
	}
	if code, _ := mtGet(t, p.app+"/sleep?ms=1500"); code != 200 {
		t.Fatalf("GET /sleep: status %d, want 200", code)
	}
	mtEventually(t, p, []mtWant{
		{"wasmserve_blocked_worker_calls_total", nil, 1},
		{"http_server_requests_total", nil, 11},
	})
	line := sd.waitLine(t, "blk.runtime.blocked_worker", func(l string) bool {
		return strings.HasPrefix(l, "blk.runtime.blocked_worker:")
	})
	v, _ := strconv.ParseFloat(strings.TrimPrefix(strings.Split(line, "|")[0], "blk.runtime.blocked_worker:"), 64)
	if !strings.Contains(line, "|ms|#hostname:") || v < 1500 {
		t.Errorf("blocked_worker line %q: want a timer of at least 1500 ms", line)
	}
	recs := p.find("blocked worker")
	if len(recs) != 1 {
		t.Fatalf("%d blocked-worker log records, want 1 (the /sleep call only)", len(recs))
	}
	if recs[0]["request"] != "GET /sleep" || recs[0]["worker"] == nil || recs[0]["duration"] == nil {
		t.Errorf("blocked-worker record %v: want worker, request GET /sleep and duration", recs[0])
	}
}

func TestMetricsGuestLimit(t *testing.T) {
	t.Parallel()
	p := mtStart(t, map[string]string{"metrics.guest_limit": "0"})
	code, body := mtGet(t, p.app+"/metric")
	if code != 500 || !strings.Contains(body, "limit") {
		t.Fatalf("GET /metric over the limit: %d %q, want 500 with the limit error", code, body)
	}
	rec := p.waitLog(t, "guest metric refused", 10*time.Second)
	if rec["level"] != "ERROR" || rec["name"] != "hello_requests" {
		t.Errorf("refusal record %v: want level ERROR and name hello_requests", rec)
	}
	fams := mtEventually(t, p, []mtWant{{"wasmserve_guest_metrics_refused_total", nil, 1}})
	if fams["app_hello_requests"] != nil {
		t.Error("refused guest metric app_hello_requests was exported")
	}
}

func TestMetricsHealthDrain(t *testing.T) {
	t.Parallel()
	p := mtStart(t, map[string]string{"drain_time": "30 seconds"})
	for _, probe := range []string{"", "1", "2", "3"} {
		if code, _ := mtGet(t, p.admin+"/health?type="+probe); code != 200 {
			t.Fatalf("health type=%q before SIGTERM: %d, want 200", probe, code)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := mtGet(t, p.admin+"/health?type=1")
		if code == http.StatusServiceUnavailable {
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("readiness during drain: %d, want 503 soon after SIGTERM", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := mtGet(t, p.admin+"/health?type=2"); code != 200 {
		t.Errorf("liveness during drain: %d, want 200", code)
	}
	if code, _ := mtGet(t, p.admin+"/health"); code != 503 {
		t.Errorf("health without a type during drain: %d, want 503 (readiness)", code)
	}
	// Still serving the app while draining.
	if code, _ := mtGet(t, p.app+"/"); code != 200 {
		t.Errorf("GET / during drain: %d, want 200", code)
	}
}

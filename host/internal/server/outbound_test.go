package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// freeAddr returns a 127.0.0.1 address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestOutboundGateway runs the gateway-go example against a Go HTTP
// upstream and the thrift-go example served by wasmserve, all on
// 127.0.0.1.
func TestOutboundGateway(t *testing.T) {
	t.Parallel()
	// The Thrift backend: the thrift-go example.
	thriftAddr, thriftFile := tcpSocket(t)
	thriftINI := filepath.Join(t.TempDir(), "thrift.ini")
	if err := os.WriteFile(thriftINI, []byte(fmt.Sprintf("[server:main]\nfactory = thrift\nworkers = 2\ncompilation_cache = %s\n[app:main]\nfactory = %s\n",
		testguest.CacheDir(), testguest.Module(t, "thrift-go", "thrift.wasm"))), 0o644); err != nil {
		t.Fatal(err)
	}
	backend := wasmserve(t, thriftINI, starterEnv(thriftAddr), []*os.File{thriftFile})

	// The HTTP upstream.
	var conns, hanging atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := "http://" + ln.Addr().String()
	srv := &http.Server{ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			time.Sleep(200 * time.Millisecond)
			io.WriteString(w, "root\n")
		case "/trace":
			for _, k := range []string{"X-Trace", "X-Parent", "X-Span", "Traceparent"} {
				fmt.Fprintf(w, "%s: %s\n", k, r.Header.Get(k))
			}
		case "/hang":
			hanging.Add(1)
			defer hanging.Add(-1)
			<-r.Context().Done()
		case "/reset":
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		case "/huge":
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			chunk := make([]byte, 64<<10)
			for range (1 << 30) / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			w.WriteHeader(404)
			io.WriteString(w, "no such file\n")
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	down := "http://" + freeAddr(t)

	// The gateway, with an admin listener.
	gwAddr, gwFile := tcpSocket(t)
	admin := freeAddr(t)
	ini := fmt.Sprintf(`[server:main]
factory = http
workers = 2
request_timeout = 8 seconds
admin.bind = %s
compilation_cache = %s

[app:main]
factory = %s
upstream = %s
http.allow = %s, %s, http://%s
http.timeout = 4 seconds
max_response_body = 1 MiB
backend.endpoint = %s
backend.timeout = 20 seconds
`, admin, testguest.CacheDir(), testguest.Module(t, "gateway-go", "gateway.wasm"), up, up, down, admin, thriftAddr)
	path := filepath.Join(t.TempDir(), "gateway.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := wasmserve(t, path, starterEnv(gwAddr), []*os.File{gwFile})
	backend.log.waitFor(t, startTimeout, 1, "msg=serving")
	gw.log.waitFor(t, startTimeout, 1, "msg=serving")

	get := func(path string, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+gwAddr+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := get("/thrift"); code != 200 || strings.TrimSpace(body) != "true" {
		t.Fatalf("/thrift = %d %q", code, body)
	}
	// Fan-out from goroutines in the guest runs in parallel.
	start := time.Now()
	if code, body := get("/fanout?n=16"); code != 200 || strings.TrimSpace(body) != "16" {
		t.Fatalf("/fanout?n=16 = %d %q", code, body)
	}
	if d := time.Since(start); d > 1600*time.Millisecond {
		t.Errorf("/fanout?n=16 against a 200 ms upstream took %s (3.2 s in sequence)", d)
	}
	// Pool reuse across requests and instances.
	before := conns.Load()
	for range 40 {
		if code, _ := get("/http?path=/trace"); code != 200 {
			t.Fatalf("/http?path=/trace = %d", code)
		}
	}
	if opened := conns.Load() - before; opened > 2 {
		t.Errorf("40 proxied requests opened %d upstream connections", opened)
	}
	// Trace headers reach the upstream and the Thrift backend.
	_, body := get("/http?path=/trace", "X-Trace", "12345", "X-Span", "678")
	for _, want := range []string{"X-Trace: 12345\n", "X-Parent: 678\n", "Traceparent: 00-" + fmt.Sprintf("%032x", 12345) + "-"} {
		if !strings.Contains(body, want) {
			t.Errorf("upstream saw %q, want %q in it", body, want)
		}
	}
	if _, body := get("/thrift/lookup?header=Trace", "X-Trace", "4242"); strings.TrimSpace(body) != "4242" {
		t.Errorf("Trace at the Thrift backend = %q", body)
	}
	// Deadline-Budget: what remains of the request's 8 s deadline, less
	// than the client's 20 s timeout.
	_, body = get("/thrift/lookup?header=Deadline-Budget")
	if ms, err := strconv.Atoi(strings.TrimSpace(body)); err != nil || ms <= 0 || ms > 8000 {
		t.Errorf("Deadline-Budget at the backend = %q, want 1..8000", body)
	}
	// Deny by default, and the admin listener even when allowed.
	code, body := get("/http?url=http://127.0.0.2:1/x")
	if code != 502 || !strings.Contains(body, "http.allow") || !strings.Contains(body, "127.0.0.2") {
		t.Errorf("outside http.allow: %d %q", code, body)
	}
	code, body = get("/http?url=http://" + admin + "/metrics")
	if code != 502 || !strings.Contains(body, "admin listener") {
		t.Errorf("admin listener: %d %q", code, body)
	}
	// Faults: answers with the host's message; no instance faults.
	for _, c := range []struct{ path, want string }{
		{"/http?url=" + down + "/", "connect"},
		{"/http?path=/hang", "timed out"},
		{"/http?path=/reset", "reading the response body"},
		{"/http?path=/huge", "max_response_body"},
	} {
		if code, body := get(c.path); code != 502 || !strings.Contains(body, c.want) {
			t.Errorf("%s = %d %q, want 502 with %q", c.path, code, body, c.want)
		}
	}
	// max_outbound, and calls never waited on are cancelled at the end
	// of the request, well before http.timeout (4 s) would end them.
	if code, body := get("/open?n=70&path=/hang"); code != 200 || !strings.HasPrefix(body, "64\n") || !strings.Contains(body, "max_outbound") {
		t.Errorf("/open?n=70 = %d %q", code, body)
	}
	deadline := time.Now().Add(3 * time.Second)
	for hanging.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := hanging.Load(); n > 0 {
		t.Errorf("%d abandoned calls still hang at the upstream 3 s after their request ended", n)
	}
	if n := gw.log.count("guest fault"); n != 0 {
		t.Errorf("%d guest faults", n)
	}
	// Metrics with their labels. An abandoned call leaves the active
	// gauge when its goroutine sees the cancellation, which can be just
	// after the upstream saw the connection close: read until it is 0.
	metricsText := func() string {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(m)
	}
	idle := `http_client_active_requests{http_client_name="http",http_method="GET"} 0`
	m := metricsText()
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(m, idle) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		m = metricsText()
	}
	for _, want := range []string{
		`http_client_requests_total{http_client_name="http",http_method="GET",http_response_code="200",http_success="true"}`,
		`http_client_requests_total{http_client_name="http",http_method="GET",http_response_code="",http_success="false"}`,
		`http_client_latency_seconds_bucket{http_client_name="http",http_method="GET",http_success="true"`,
		idle,
		`thrift_client_requests_total{thrift_baseplate_status="",thrift_baseplate_status_code="",thrift_client_name="backend",thrift_exception_type="",thrift_method="is_healthy",thrift_success="true"} 1`,
		`thrift_client_latency_seconds_bucket{thrift_client_name="backend",thrift_method="lookup",thrift_success="true"`,
		`thrift_client_pool_max_size{thrift_pool="backend"} 10`,
		`thrift_client_pool_active_connections{thrift_pool="backend"} `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

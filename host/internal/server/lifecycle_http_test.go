package server_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bjoern's scenarios for the HTTP front end, against the real binary with
// real signals.

// One slow request in flight and nine more waiting behind it for the only
// worker, then SIGTERM: all ten complete (with Connection: close), the
// listener is closed so a new connect is refused, and the process exits 0.
func TestLifecycleHTTPQueuedComplete(t *testing.T) {
	t.Parallel()
	addr, f := tcpSocket(t)
	p := wasmserve(t, writeINI(t, "workers = 1\nmax_concurrency = 32\ndrain_time = 0\nstop_timeout = 30 seconds\n"),
		starterEnv(addr), []*os.File{f})
	f.Close() // the server holds the only copy: once it closes it, connects are refused
	waitServing(t, p, "tcp", addr)

	slow := dial(t, "tcp", addr)
	if err := slow.send("/sleep?ms=1500"); err != nil {
		t.Fatal(err)
	}
	waitBusy(t, p, "/sleep")
	var queued []*conn
	for i := 0; i < 9; i++ {
		c := dial(t, "tcp", addr)
		if err := c.send(fmt.Sprintf("/echo?i=%d", i)); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, c)
	}
	p.signal(t, syscall.SIGTERM)
	p.log.waitFor(t, waitTimeout, 1, "listeners closed")
	if c, err := net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
		c.Close()
		t.Error("connect after the listener closed succeeded, want refused")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect after the listener closed: %v, want connection refused", err)
	}
	for i, c := range append([]*conn{slow}, queued...) {
		resp, body, err := c.response()
		if err != nil {
			t.Errorf("request %d: %v", i, err)
			continue
		}
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("request %d: status %d, close %v (body %q)", i, resp.StatusCode, resp.Close, body)
		}
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if p.log.count("shutdown complete") != 1 {
		t.Error("no shutdown complete line")
	}
}

// An idle keep-alive connection and a connection that never sends do not
// hold shutdown, and a request in
// flight on another keep-alive connection gets its response (with
// Connection: close): the process exits long before stop_timeout.
func TestLifecycleHTTPKeepAlive(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	const stopTimeout = 60 * time.Second
	p := wasmserve(t, writeINI(t, "workers = 2\ndrain_time = 0\nstop_timeout = 60 seconds\nkeepalive = 5 minutes\n"),
		nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)

	silent := dial(t, "unix", sock) // connects, never sends
	defer silent.Close()
	idle := dial(t, "unix", sock)
	if resp, _ := idle.get(t, "/"); resp.Close {
		t.Fatal("keep-alive response says Connection: close before shutdown")
	}
	busy := dial(t, "unix", sock)
	busy.get(t, "/")
	if err := busy.send("/sleep?ms=1000"); err != nil {
		t.Fatal(err)
	}
	waitBusy(t, p, "/sleep")
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	resp, body, err := busy.response()
	if err != nil {
		t.Fatalf("in-flight request on a keep-alive connection: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close || !strings.HasPrefix(body, "slept") {
		t.Errorf("in-flight request: %d close=%v %q", resp.StatusCode, resp.Close, body)
	}
	idle.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("idle keep-alive connection: read %d bytes, %v; want closed", n, err)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if d := p.ended.Sub(start); d > stopTimeout/2 {
		t.Errorf("shutdown took %s with stop_timeout %s", d, stopTimeout)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// A request that never finishes arriving holds shutdown until stop_timeout;
// then the process exits non-zero and logs the abandoned requests.
func TestLifecycleHTTPPartialRequest(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	const stopTimeout = 3 * time.Second
	p := wasmserve(t, writeINI(t, "drain_time = 0\nstop_timeout = 3 seconds\nheader_timeout = 5 minutes\n"),
		nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)
	c := dial(t, "unix", sock)
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: wasmserve\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.exit(t)
	if code == 0 {
		t.Error("exit 0 after stop_timeout expired, want non-zero")
	}
	if d := p.ended.Sub(start); d < stopTimeout {
		t.Errorf("exited %s after SIGTERM, before stop_timeout %s", d, stopTimeout)
	}
	if p.log.count("stop_timeout expired", "abandoned=1") != 1 {
		t.Error("no log line counting the partial request as abandoned")
	}
}

// A slow request still running when stop_timeout expires is abandoned and
// counted.
func TestLifecycleHTTPAbandonedCount(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	p := wasmserve(t, writeINI(t, "workers = 2\ndrain_time = 0\nstop_timeout = 500 milliseconds\n"),
		nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)
	for i := 0; i < 2; i++ {
		c := dial(t, "unix", sock)
		if err := c.send("/sleep?ms=10000"); err != nil {
			t.Fatal(err)
		}
	}
	waitBusy(t, p, "count=2")
	p.signal(t, syscall.SIGTERM)
	if code := p.exit(t); code == 0 {
		t.Error("exit 0 with requests abandoned")
	}
	if p.log.count("stop_timeout expired", "abandoned=2") != 1 {
		t.Error("no log line counting 2 abandoned requests")
	}
}

// Clients that abort mid-request or mid-response do not hold shutdown.
func TestLifecycleHTTPClientAbort(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	const stopTimeout = 60 * time.Second
	p := wasmserve(t, writeINI(t, "workers = 2\ndrain_time = 0\nstop_timeout = 60 seconds\nheader_timeout = 5 minutes\n"),
		nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)

	// Mid-request: half a request line and headers, then gone.
	half := dial(t, "unix", sock)
	fmt.Fprint(half, "POST /echo HTTP/1.1\r\nHost: wasmserve\r\nContent-Length: 100\r\n\r\nabc")
	// Mid-response: an 8 MiB echo, of which the client reads a little.
	big := dial(t, "unix", sock)
	body := strings.Repeat("x", 8<<20)
	go fmt.Fprintf(big, "POST /echo HTTP/1.1\r\nHost: wasmserve\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	big.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := big.r.Peek(4096); err != nil {
		t.Fatalf("start of the big response: %v", err)
	}
	// Before the response is done, with a request begun on the other one.
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	p.log.waitFor(t, waitTimeout, 1, "listeners closed")
	half.Close()
	big.Close()
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if d := p.ended.Sub(start); d > stopTimeout/2 {
		t.Errorf("shutdown took %s with stop_timeout %s", d, stopTimeout)
	}
}

// During drain_time the server keeps accepting and serving, the guest's
// shutting-down query returns true (READINESS fails) and responses close
// their connections; the listener closes only after drain_time.
func TestLifecycleHTTPDrainTime(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	p := wasmserve(t, writeINI(t, "drain_time = 4 seconds\nstop_timeout = 10 seconds\n"),
		nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)
	c := dial(t, "unix", sock)
	if _, body := c.get(t, "/shutting-down"); body != "false" {
		t.Fatalf("/shutting-down before SIGTERM = %q", body)
	}
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	p.log.waitFor(t, waitTimeout, 1, "shutting down")
	resp, body := c.get(t, "/shutting-down")
	if body != "true" || !resp.Close {
		t.Errorf("/shutting-down during drain = %q, close=%v; want true, close", body, resp.Close)
	}
	for i := 0; i < 3; i++ {
		fresh := dial(t, "unix", sock) // a new connection is still accepted
		if resp, body := fresh.get(t, "/"); resp.StatusCode != 200 || !resp.Close {
			t.Errorf("new request during drain: %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
	}
	if p.log.count("listener closed") != 0 && time.Since(start) < 4*time.Second {
		t.Error("listener closed before drain_time")
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if d := p.ended.Sub(start); d < 4*time.Second {
		t.Errorf("exited %s after SIGTERM, before drain_time", d)
	}
}

// SIGUSR1 logs goroutine stacks and the busy worker table while serving
// continues.
func TestLifecycleDebugSignal(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	p := wasmserve(t, writeINI(t, "workers = 2\ndrain_time = 0\n"), nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)
	slow := dial(t, "unix", sock)
	if err := slow.send("/sleep?ms=3000"); err != nil {
		t.Fatal(err)
	}
	waitBusy(t, p, "GET /sleep")
	if p.log.count("SIGUSR1: goroutine stacks", "goroutine 1 [") == 0 {
		t.Error("no goroutine stacks in the SIGUSR1 output")
	}
	if p.log.count("WORKER", "RUNNING", "REQUEST", "GET /sleep") == 0 {
		t.Error("busy table has no header or no slow request")
	}
	other := dial(t, "unix", sock)
	if resp, body := other.get(t, "/"); resp.StatusCode != 200 {
		t.Errorf("GET / after SIGUSR1 = %d %q", resp.StatusCode, body)
	}
	if resp, body, err := slow.response(); err != nil || resp.StatusCode != 200 {
		t.Errorf("slow request after SIGUSR1: %v %q", err, body)
	}
	if p.exited() {
		t.Fatal("SIGUSR1 stopped the server")
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A second SIGTERM during shutdown stops at once, abandoning what runs.
func TestLifecycleQuickStop(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	p := wasmserve(t, writeINI(t, "drain_time = 60 seconds\nstop_timeout = 60 seconds\n"), nil, nil, "--bind", "unix:"+sock)
	waitServing(t, p, "unix", sock)
	slow := dial(t, "unix", sock)
	if err := slow.send("/sleep?ms=10000"); err != nil {
		t.Fatal(err)
	}
	waitBusy(t, p, "/sleep")
	p.signal(t, syscall.SIGTERM)
	p.log.waitFor(t, waitTimeout, 1, "shutting down")
	start := time.Now()
	p.signal(t, syscall.SIGINT)
	if code := p.exit(t); code == 0 {
		t.Error("exit 0 after a quick stop, want non-zero")
	}
	if d := p.ended.Sub(start); d > 30*time.Second {
		t.Errorf("quick stop took %s", d)
	}
	if p.log.count("second stop signal", "abandoned=1") != 1 {
		t.Error("no quick-stop line counting the abandoned request")
	}
}

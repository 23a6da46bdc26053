package engine_test

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

const netHTTPGuest = "./abi/guest/testdata/nethttp"

func netHTTPInstance(t testing.TB, ldflags string) *engine.Instance {
	t.Helper()
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{
		Path:      testguest.Go(t, netHTTPGuest, ldflags),
		CacheDir:  testguest.CacheDir(),
		MaxMemory: 64 << 20,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	inst, err := m.NewInstance(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(ctx) })
	return inst
}

// TestHandleHTTPServeMux serves an http.ServeMux with method patterns, a
// path wildcard and a middleware from a guest through guest.HandleHTTP.
func TestHandleHTTPServeMux(t *testing.T) {
	t.Parallel()
	inst := netHTTPInstance(t, "")
	headers := abi.AppendField(nil, "Host", "example.test")
	headers = abi.AppendField(headers, "User-Agent", "tester/1")
	cases := []struct {
		method, path, query, body string
		status                    uint32
		want                      string
		header                    map[string]string
	}{
		{method: "GET", path: "/hello", status: 200, want: "hello, world",
			header: map[string]string{"X-Middleware": "saw GET", "Content-Type": "text/plain; charset=utf-8"}},
		{method: "GET", path: "/items/a%20b", query: "q=x%26y", status: 200,
			want:   "item a b q=x&y host=example.test agent=tester/1 uri=/items/a%20b?q=x%26y",
			header: map[string]string{"X-Middleware": "saw GET"}},
		{method: "POST", path: "/items", body: "payload", status: 201, want: "created payload",
			header: map[string]string{"X-Middleware": "saw POST", "Location": "/items/1"}},
		// The method pattern refuses PUT: ServeMux answers 405 with Allow.
		{method: "PUT", path: "/items/7", status: 405, want: "Method Not Allowed\n",
			header: map[string]string{"X-Middleware": "saw PUT", "Allow": "GET, HEAD"}},
		{method: "GET", path: "/nothing", status: 404, want: "404 page not found\n"},
	}
	for _, c := range cases {
		resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{
			Kind: abi.KindHTTP, Method: c.method, Path: c.path, Query: c.query,
			Headers: headers, Body: []byte(c.body), Remote: "127.0.0.1:5000",
		}})
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if resp.Status != c.status || string(resp.Body) != c.want {
			t.Errorf("%s %s = %d %q, want %d %q", c.method, c.path, resp.Status, resp.Body, c.status, c.want)
		}
		got := map[string]string{}
		_ = resp.Headers.Range(func(k, v []byte) bool {
			got[string(k)] = string(v)
			return true
		})
		for k, v := range c.header {
			if got[k] != v {
				t.Errorf("%s %s: header %s = %q, want %q (all: %q)", c.method, c.path, k, got[k], v, got)
			}
		}
	}
}

// processCPU is the CPU time the process has used, user and system, in
// nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkGoSDK compares the cost of one GET /hello through the Go SDK's
// two HTTP paths, the guest call alone (no network):
//
//	go test -run '^$' -bench GoSDK -benchmem ./host/internal/engine
func BenchmarkGoSDK(b *testing.B) {
	for _, c := range []struct{ name, ldflags string }{
		{"Handle", "-X=main.mode=raw"},
		{"HandleHTTP", "-X=main.mode=plain"},
		{"HandleHTTP-ServeMux", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			inst := netHTTPInstance(b, c.ldflags)
			headers := abi.AppendField(nil, "Host", "example.test")
			headers = abi.AppendField(headers, "User-Agent", "bench/1")
			headers = abi.AppendField(headers, "Accept", "*/*")
			call := &engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/hello", Headers: headers, Remote: "127.0.0.1:5000"}}
			cpu := processCPU()
			for b.Loop() {
				resp, err := inst.Handle(call)
				if err != nil || resp.Status != 200 {
					b.Fatalf("GET /hello = %d, %v", resp.Status, err)
				}
			}
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

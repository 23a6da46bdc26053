package httpfront_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/httpfront"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// BenchmarkServeHTTP measures the front end's per-request work around a
// guest call, without sockets.
func BenchmarkServeHTTP(b *testing.B) {
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{Path: testguest.Module(b, "hello-go", "hello.wasm"), CacheDir: testguest.CacheDir(), MaxMemory: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	p, err := pool.New(ctx, m, pool.Options{Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	opts := defaults()
	opts.Handler = p
	s := httpfront.New(opts)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("User-Agent", "bench")
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

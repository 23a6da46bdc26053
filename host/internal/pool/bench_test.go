package pool_test

import (
	"context"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// BenchmarkHandle measures one request through the pool and a guest, host
// side and guest side together, without the network.
func BenchmarkHandle(b *testing.B) {
	for _, g := range []struct{ name, example, path string }{{"wat", "", "/"}, {"go", "hello-go", "/"}, {"go-status", "hello-go", "/status/200"}} {
		b.Run(g.name, func(b *testing.B) {
			ctx := context.Background()
			opts := engine.Options{Path: "counter.wasm", Binary: testguest.WAT(b, counterGuest), CacheDir: testguest.CacheDir(), MaxMemory: 64 << 20}
			if g.example != "" {
				opts.Path, opts.Binary = testguest.Module(b, g.example, "hello.wasm"), nil
			}
			m, err := engine.Load(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			p, err := pool.New(ctx, m, pool.Options{Workers: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			req := &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: g.path, Remote: "127.0.0.1:5555",
				Headers: abi.AppendField(abi.AppendField(nil, "Host", "127.0.0.1:9090"), "User-Agent", "wrk")}
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := p.Handle(ctx, req, "")
				if err != nil {
					b.Fatal(err)
				}
				n += len(resp.Body)
				resp.Release()
			}
		})
	}
}

//go:build !wasip1

package conformance

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// BenchmarkGuests measures every example guest side by side: its module
// size, the cost of one instance (instantiate, reactor initialiser, version
// check, init) and hello-world requests per second through the real server
// (two workers, keep-alive over a unix socket, eight concurrent clients).
//
//	go test -run '^$' -bench . -benchtime 3s ./guests/conformance/
func BenchmarkGuests(b *testing.B) {
	bin := testguest.Binary(b)
	for _, g := range loadGuests(b) {
		testguest.Example(b, g.name)
		path := filepath.Join(g.dir, g.m.Module)
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(g.name+"/instantiate", func(b *testing.B) {
			ctx := context.Background()
			m, err := engine.Load(ctx, engine.Options{
				Path:      path,
				CacheDir:  testguest.CacheDir(),
				MaxMemory: 16 << 20,
				Config:    []engine.ConfigEntry{{Key: "greeting", Value: "hello, world"}},
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				inst, err := m.NewInstance(ctx, i)
				if err != nil {
					b.Fatal(err)
				}
				inst.Close(ctx)
			}
			b.ReportMetric(float64(st.Size()), "module-bytes")
		})
		b.Run(g.name+"/hello", func(b *testing.B) {
			s := startServer(b, bin, g, g.m.Module)
			defer s.client.CloseIdleConnections()
			s.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := s.client.Get("http://guest/")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

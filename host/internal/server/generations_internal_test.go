package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/frontend"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// okModule answers 200 "ok" to every request.
const okModule = `(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00ok")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0x4000000000A))`

func testPool(t *testing.T, bin []byte, gen int64) *pool.Pool {
	t.Helper()
	ctx := context.Background()
	mod, err := engine.Load(ctx, engine.Options{Path: "ok.wasm", Binary: bin, Generation: gen,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, mod, pool.Options{Workers: 2, MaxConcurrency: 1000,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGenerationsHammer runs requests from many goroutines while
// generations are swapped in, then shuts down: every request before the
// shutdown succeeds, each one learns a generation that existed, a Swap
// after StopSwaps is refused, and Close leaves every pool closed.
func TestGenerationsHammer(t *testing.T) {
	t.Parallel()
	bin := testguest.WAT(t, okModule)
	const swaps = 10
	pools := []*pool.Pool{testPool(t, bin, 1)}
	for i := 2; i <= swaps+1; i++ {
		pools = append(pools, testPool(t, bin, int64(i)))
	}
	g := newGenerations(slog.New(slog.NewTextHandler(io.Discard, nil)), &generation{n: 1, pool: pools[0]}, 10*time.Second)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	errs := make(chan error, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx, rec := frontend.WithServed(context.Background())
				var body string
				resp, err := g.Handle(ctx, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}, "")
				if err == nil {
					body = string(resp.Body)
					resp.Release()
				}
				switch {
				case err != nil:
					failed.Add(1)
					select {
					case errs <- err:
					default:
					}
				case body != "ok" || rec.Generation < 1 || rec.Generation > swaps+1:
					failed.Add(1)
				default:
					served.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= swaps; i++ {
		for n := served.Load(); served.Load() < n+50; {
			time.Sleep(time.Millisecond)
		}
		if _, err := g.Swap(&generation{n: int64(i + 1), pool: pools[i]}); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across swaps; first error: %v", n, n+served.Load(), <-errs)
	}
	g.StopSwaps()
	extra := testPool(t, bin, 99)
	if _, err := g.Swap(&generation{n: 99, pool: extra}); !errors.Is(err, errShuttingDown) {
		t.Fatalf("Swap after StopSwaps = %v, want errShuttingDown", err)
	}
	extra.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, p := range pools {
		_, err := p.Handle(context.Background(), &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}, "")
		if !errors.Is(err, pool.ErrClosed) {
			t.Errorf("generation %d still serves after Close: %v", i+1, err)
		}
	}
}

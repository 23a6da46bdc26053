package pool_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

type countingObserver struct{ instantiated atomic.Int64 }

func (o *countingObserver) Instantiated(time.Duration, error) { o.instantiated.Add(1) }
func (o *countingObserver) Fault(engine.FaultKind)            {}
func (o *countingObserver) Recycled()                         {}
func (o *countingObserver) GuestCall(time.Duration, int, uint32, *abi.RequestInfo) {
}

// TestPerRequestIsolationByReset: with snapshots, every request sees the
// counter at its start-up value and no instance is created after start-up;
// a module that cannot be reset gets a fresh instance per request, still
// isolated.
func TestPerRequestIsolationByReset(t *testing.T) {
	t.Parallel()
	tableSet := strings.Replace(counterGuest, `(func (export "wasmserve_abi_version")`,
		`(table 1 funcref) (elem declare func 0) (func (export "settab") (table.set 0 (i32.const 0) (ref.func 0))) (func (export "wasmserve_abi_version")`, 1)
	for _, c := range []struct {
		name, wat string
		reset     bool
	}{{"reset", counterGuest, true}, {"fallback", tableSet, false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m, err := engine.Load(ctx, engine.Options{Path: "counter.wasm", Binary: testguest.WAT(t, c.wat), CacheDir: testguest.CacheDir(), Snapshot: true})
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := m.Resettable(); ok != c.reset {
				t.Fatalf("Resettable = %v, want %v", ok, c.reset)
			}
			obs := &countingObserver{}
			p, err := pool.New(ctx, m, pool.Options{Workers: 2, Isolation: pool.PerRequest, Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			for i := range 20 {
				if n, err := count(t, p, "/"); err != nil || n != 1 {
					t.Fatalf("request %d: counter %d (%v), want 1", i, n, err)
				}
			}
			if c.reset {
				if n := obs.instantiated.Load(); n != 2 {
					t.Errorf("%d instances created for 2 workers and 20 requests, want 2 (reset, not replaced)", n)
				}
				// A trap still discards the instance.
				if _, err := count(t, p, "/trap"); err == nil {
					t.Fatal("/trap did not fail")
				}
				waitIdle(t, p, 2)
				if n := obs.instantiated.Load(); n != 3 {
					t.Errorf("%d instances after a trap, want 3", n)
				}
			}
		})
	}
}

package pool_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// counterGuest answers every request with a 200 whose 4-byte body is a
// per-instance request counter; path "/trap" traps.
const counterGuest = `(module
  (import "wasmserve" "request_read" (func $read (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param $n i32) (result i64)
    (drop (call $read (i32.const 4096) (local.get $n)))
    ;; path length is at record offset 16; "/trap" is the only 5-byte path used
    (if (i32.eq (i32.load (i32.const 4112)) (i32.const 5)) (then unreachable))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (i32.const 1032) (global.get $count))
    i64.const 0x4000000000C))`

func newPool(t *testing.T, opts pool.Options) *pool.Pool {
	t.Helper()
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{Path: "counter.wasm", Binary: testguest.WAT(t, counterGuest), CacheDir: testguest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	return p
}

func get(path string) *abi.RequestInfo {
	return &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: path}
}

func count(t *testing.T, p pool.Handler, path string) (int, error) {
	t.Helper()
	resp, err := p.Handle(context.Background(), get(path), "")
	if err != nil {
		return -1, err
	}
	defer resp.Release()
	return int(resp.Body[0]) | int(resp.Body[1])<<8, nil
}

// hook is an Observer whose GuestCall runs a test's function while the
// instance is still lent, to hold it or to panic there.
type hook struct{ guestCall func(worker int) }

func (hook) Instantiated(time.Duration, error) {}
func (hook) Fault(engine.FaultKind)            {}
func (hook) Recycled()                         {}
func (h hook) GuestCall(_ time.Duration, worker int, _ uint32, _ *abi.RequestInfo) {
	if h.guestCall != nil {
		h.guestCall(worker)
	}
}

// waitIdle waits until the pool has n idle instances.
func waitIdle(t *testing.T, p *pool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Idle != n {
		if time.Now().After(deadline) {
			t.Fatalf("pool has %d idle instances, want %d", p.Stats().Idle, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStatePersistsPerWorker(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 1})
	for want := 1; want <= 3; want++ {
		if n, err := count(t, p, "/"); err != nil || n != want {
			t.Fatalf("request %d: counter %d, %v", want, n, err)
		}
	}
}

func TestPerRequestIsolation(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 2, Isolation: pool.PerRequest})
	for i := 0; i < 5; i++ {
		if n, err := count(t, p, "/"); err != nil || n != 1 {
			t.Fatalf("request %d: counter %d, %v; want a fresh instance (1)", i, n, err)
		}
	}
	waitIdle(t, p, 2)
}

func TestFaultReplacesInstance(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 2})
	_, err := count(t, p, "/trap")
	var f *engine.Fault
	if !errors.As(err, &f) || f.Kind != engine.Trap {
		t.Fatalf("trap: %v, want a trap fault", err)
	}
	waitIdle(t, p, 2)
	if _, err := count(t, p, "/"); err != nil {
		t.Fatalf("after trap: %v", err)
	}
}

func TestMaxRequestsRecycles(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 1, MaxRequests: 3})
	var got []int
	for i := 0; i < 7; i++ {
		waitIdle(t, p, 1)
		n, err := count(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	want := []int{1, 2, 3, 1, 2, 3, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("counters %v, want %v", got, want)
		}
	}
}

func TestOverloadedBeyondMaxConcurrency(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var started, wg sync.WaitGroup
	p := newPool(t, pool.Options{Workers: 2, MaxConcurrency: 4, Observer: hook{func(int) {
		started.Done()
		<-release
	}}})
	var ok atomic.Int32
	started.Add(2)
	// Two requests hold both instances; two more wait for them.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.Handle(context.Background(), get("/"), "")
			if err == nil {
				resp.Release()
				ok.Add(1)
			}
		}()
		if i == 1 {
			started.Wait()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Admitted != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("admitted %d, want 4", p.Stats().Admitted)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := p.Handle(context.Background(), get("/"), ""); !errors.Is(err, pool.ErrOverloaded) {
		t.Fatalf("fifth request: %v, want ErrOverloaded", err)
	}
	started.Add(2)
	close(release)
	wg.Wait()
	if ok.Load() != 4 {
		t.Fatalf("%d of 4 admitted requests succeeded", ok.Load())
	}
}

func TestHammer(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 3, MaxConcurrency: 64})
	var wg sync.WaitGroup
	var faults, okN atomic.Int32
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				path := "/"
				if (g+i)%10 == 0 {
					path = "/trap"
				}
				_, err := count(t, p, path)
				switch {
				case err == nil:
					okN.Add(1)
				case path == "/trap":
					faults.Add(1)
				default:
					t.Errorf("GET %s: %v", path, err)
				}
			}
		}()
	}
	wg.Wait()
	if okN.Load()+faults.Load() != 800 || faults.Load() != 80 {
		t.Fatalf("ok %d, faults %d; want 720 and 80", okN.Load(), faults.Load())
	}
	waitIdle(t, p, 3)
}

func TestCloseWaitsForInFlight(t *testing.T) {
	t.Parallel()
	inside := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p := newPool(t, pool.Options{Workers: 1, MaxConcurrency: 4, Observer: hook{func(int) {
		once.Do(func() { close(inside) })
		<-release
	}}})
	done := make(chan error)
	go func() {
		resp, err := p.Handle(context.Background(), get("/"), "")
		resp.Release()
		done <- err
	}()
	<-inside
	defer close(release)
	closed := make(chan struct{})
	go func() { p.Close(context.Background()); close(closed) }()
	if _, err := p.Handle(context.Background(), get("/"), ""); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("request on closing pool: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a request was in flight")
	default:
	}
	release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	<-closed
}

// A panic while an instance is lent (here in the observer, between the
// guest call and the instance's return) replaces the instance: the pool
// keeps its size and serves as many requests at once as before.
func TestPanicDoesNotShrinkPool(t *testing.T) {
	t.Parallel()
	var panics atomic.Int32
	panics.Store(2)
	var inside sync.WaitGroup // after the panics: both requests in a guest call at once
	inside.Add(2)
	p := newPool(t, pool.Options{Workers: 2, Observer: hook{func(int) {
		if panics.Add(-1) >= 0 {
			panic("observer failure")
		}
		inside.Done()
		inside.Wait()
	}}})
	for i := 0; i < 2; i++ {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("Handle did not let the panic through")
				}
			}()
			p.Handle(context.Background(), get("/"), "")
		}()
	}
	waitIdle(t, p, 2)
	if st := p.Stats(); st.Busy != 0 || st.Admitted != 0 {
		t.Fatalf("after the panics: %+v, want nothing busy or admitted", st)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := count(t, p, "/"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait() // returns only if both workers served at once
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close after panics: %v (an instance was lost)", err)
	}
}

// Close returns without waiting out the backoff of a replacement that
// keeps failing.
func TestCloseStopsFailingReplacement(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Options{Workers: 1})
	// Closing the module makes every new instance fail, so the trapped
	// instance's replacement retries with backoff.
	if err := p.Module().Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := count(t, p, "/trap"); err == nil {
		t.Fatal("trap on a closed module answered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("Close: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("Close waited for its context to end")
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
}

package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

func TestLoadRefusesReservedNames(t *testing.T) {
	t.Parallel()
	for name, wat := range map[string]string{
		"import": watGuest(`(import "wasmserve" "__wasmserve_interrupt" (func (result i32)))`, versionOK, hello),
		"export": watGuest("", versionOK+`(global (export "__wasmserve_budget") (mut i32) (i32.const 0))`, hello),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, testguest.WAT(t, wat), nil)
			if err == nil || !strings.Contains(err.Error(), "__wasmserve_") || !strings.Contains(err.Error(), "reserved") {
				t.Fatalf("Load error = %v, want a refusal naming the reserved name", err)
			}
		})
	}
}

// spinner is a guest whose handler calls shutting_down once, then loops
// forever without calling the host.
const spinner = `(module
  (import "wasmserve" "shutting_down" (func $sd (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i64) (i64.const 0))
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64)
    (drop (call $sd))
    (loop $l (global.set $n (i64.add (global.get $n) (i64.const 1))) (br $l))
    i64.const 0))`

func TestGCRunsWhileAGuestSpinsWithoutDeadline(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	inst := instance(t, testguest.WAT(t, spinner), 1, func(o *engine.Options) {
		o.ShuttingDown = func() bool { close(started); return false }
	})
	done := make(chan error, 1)
	go func() {
		_, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}})
		done <- err
	}()
	<-started
	// Without preemption points in the guest, a collection waits for the
	// loop, which never ends: this would hang.
	for range 3 {
		runtime.GC()
	}
	select {
	case err := <-done:
		t.Fatalf("the guest returned (%v); it should still spin", err)
	default:
	}
	inst.Stop()
	err := <-done
	var f *engine.Fault
	if !errors.As(err, &f) || f.Kind != engine.Timeout || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("Handle after Stop = %v, want a timeout fault saying the instance was stopped", err)
	}
}

func TestStartUpPhasesHaveADeadline(t *testing.T) {
	t.Parallel()
	const loop = `(loop $forever (global.set $n (i32.add (global.get $n) (i32.const 1))) (br $forever))`
	for phase, fn := range map[string]string{
		"start":          `(func $spin ` + loop + `) (start $spin)`,
		"_initialize":    `(func (export "_initialize") ` + loop + `)`,
		"wasmserve_init": `(func (export "wasmserve_init") (result i32) ` + loop + ` (i32.const 0))`,
	} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			wat := `(module (memory (export "memory") 1) (global $n (mut i32) (i32.const 0)) ` + fn + versionOK +
				`(func (export "wasmserve_handle") (param i32) (result i64) ` + hello + `))`
			var logs strings.Builder
			m, err := load(t, testguest.WAT(t, wat), func(o *engine.Options) {
				o.InitTimeout = 100 * time.Millisecond
				o.Logger = testLogger(&logs)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.NewInstance(context.Background(), 4)
			want := phase + " exceeded init_timeout of 100ms"
			if !errors.Is(err, engine.ErrInitTimeout) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "worker 4") {
				t.Fatalf("NewInstance error = %v, want ErrInitTimeout saying %q for worker 4", err, want)
			}
			if l := logs.String(); !strings.Contains(l, want) || !strings.Contains(l, "phase="+phase) || !strings.Contains(l, "worker=4") || !strings.Contains(l, "limit=100ms") {
				t.Errorf("log %q does not name the phase, worker and limit", l)
			}
		})
	}
}

func TestRequestTimeoutStopsASpinningGuest(t *testing.T) {
	t.Parallel()
	inst := instance(t, testguest.WAT(t, spinner), 2, func(o *engine.Options) { o.ShuttingDown = func() bool { return false } })
	_, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}, Timeout: 50 * time.Millisecond})
	var f *engine.Fault
	if !errors.As(err, &f) || f.Kind != engine.Timeout || !strings.Contains(err.Error(), "request_timeout of 50ms exceeded") {
		t.Fatalf("Handle = %v, want a request_timeout fault", err)
	}
}

// testLogger logs text records into b; safe for concurrent use.
func testLogger(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: b}, nil))
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// scratchGuest exposes its state to the test: poke writes a byte anywhere
// in memory, set* change its mutable globals (one private, one exported,
// one i64, one f64) and grow adds a page. Its start-up leaves marks in
// memory and globals, so that the snapshot is not all zeros.
const scratchGuest = `(module
  (memory (export "memory") 9)
  (global $priv (mut i32) (i32.const 7))
  (global $pub (export "pub") (mut i32) (i32.const 8))
  (global $wide (mut i64) (i64.const 9))
  (global $real (mut f64) (f64.const 1.5))
  (global $const i32 (i32.const 3))
  (data (i32.const 100) "snapshot data")
  (func (export "_initialize")
    (i32.store (i32.const 2000) (i32.const 0x11223344))
    (global.set $priv (i32.const 70)))
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0)
  (func (export "poke") (param $a i32) (param $v i32) (i32.store8 (local.get $a) (local.get $v)))
  (func (export "setpriv") (param i32) (global.set $priv (local.get 0)))
  (func (export "setpub") (param i32) (global.set $pub (local.get 0)))
  (func (export "setwide") (param i64) (global.set $wide (local.get 0)))
  (func (export "setreal") (param f64) (global.set $real (local.get 0)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))`

func loadScratch(t *testing.T, wat string, snapshot bool) *Module {
	return loadScratchReset(t, wat, snapshot, resetBest)
}

func loadScratchReset(t *testing.T, wat string, snapshot bool, way int) *Module {
	t.Helper()
	m, err := Load(context.Background(), Options{Path: "scratch.wasm", Binary: testguest.WAT(t, wat), CacheDir: testguest.CacheDir(),
		Snapshot: snapshot, resetWay: way, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func newScratch(t *testing.T, m *Module) *Instance {
	t.Helper()
	inst, err := m.NewInstance(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func (i *Instance) call(t *testing.T, name string, args ...uint64) uint64 {
	t.Helper()
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	if err := i.callGuest(i.m.ExportedFunction(name), stack); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stack[0]
}

// state is what a request can observe: memory up to the fresh size, the
// bytes past it, and every global the instrumentation exports.
func (i *Instance) state(t *testing.T, freshSize uint32) (mem []byte, grown bool, globals []uint64) {
	t.Helper()
	m := i.m.Memory()
	b, _ := m.Read(0, m.Size())
	mem = bytes.Clone(b[:freshSize])
	for off := int(freshSize); off < len(b); off += resetBlock {
		if !allZero(b[off:min(off+resetBlock, len(b))]) {
			grown = true
		}
	}
	for _, g := range i.mod.inst.Globals {
		globals = append(globals, i.m.ExportedGlobal(g.Export).Get())
	}
	return mem, grown, globals
}

func TestResetMatchesAFreshInstance(t *testing.T) {
	t.Parallel()
	// What the kernel offers decides how Reset works; each way is
	// checked where it is offered (Linux 6.7 or later for the first two),
	// the fallback otherwise.
	tracking, touched, perf := kernelSupport()
	t.Logf("%s: written pages tracked: %v, touched pages found: %v, faults recorded by a perf event: %v", runtime.GOOS, tracking, touched, perf)
	for _, way := range []struct {
		name              string
		way               int  // Options.resetWay
		rusage            bool // Options.faultsByRusage
		tracking, touched bool // how Reset is expected to work
	}{
		{"tracking written pages", resetBest, false, tracking, !tracking && touched},
		{"tracking written pages, faults counted by getrusage", resetBest, true, tracking, !tracking && touched},
		{"comparing touched pages", resetTouched, false, false, touched},
		{"comparing all pages", resetCompare, false, false, false},
	} {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			m := loadScratchReset(t, scratchGuest, true, way.way)
			m.opts.faultsByRusage = way.rusage
			inst := newScratch(t, m)
			if inst.tracking != way.tracking || inst.snap.sparse != way.touched {
				t.Fatalf("Reset tracks written pages: %v, compares touched pages: %v; want %v, %v", inst.tracking, inst.snap.sparse, way.tracking, way.touched)
			}
			ring := testResetMatchesAFreshInstance(t, m, inst)
			// Where the kernel allows a perf event, tracked calls use it
			// unless told to count faults with getrusage.
			if want := way.tracking && perf && !way.rusage; (ring > 0) != want {
				t.Fatalf("%d guest calls watched faults through a perf event; want them to: %v", ring, want)
			}
		})
	}
}

// testResetMatchesAFreshInstance returns how many guest calls watched
// page faults through a perf event.
func testResetMatchesAFreshInstance(t *testing.T, m *Module, inst *Instance) (ring int) {
	if ok, why := m.Resettable(); !ok {
		t.Fatalf("scratch guest not resettable: %s", why)
	}
	if n := len(m.inst.Globals); n != 4 {
		t.Fatalf("%d mutable globals found, want 4", n)
	}
	fresh := newScratch(t, m)
	size := fresh.m.Memory().Size()
	wantMem, _, wantGlobals := fresh.state(t, size)
	// Hot pages are protected again every few resets here, so that both
	// their promotion and their return are exercised.
	relearn := func(inst *Instance) {
		if inst.mem != nil {
			inst.mem.relearn = 5
		}
	}
	relearn(inst)
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 600
	regrown, promoted, fast := 0, 0, 0
	for round := range rounds {
		// Random writes: memory anywhere (half of them in the first four
		// pages, so that pages are written round after round, as a
		// guest's stack is), globals, now and then a grow (after which the
		// instance cannot be reset and is replaced).
		for range rng.IntN(20) {
			switch rng.IntN(7) {
			case 0, 1, 2:
				at := rng.Uint32N(inst.m.Memory().Size())
				if rng.IntN(2) == 0 {
					at = rng.Uint32N(4 << 12)
				}
				inst.call(t, "poke", uint64(at), uint64(rng.Uint32N(255)+1))
			case 3:
				inst.call(t, []string{"setpriv", "setpub"}[rng.IntN(2)], uint64(rng.Uint32()))
			case 4:
				inst.call(t, "setwide", rng.Uint64())
				inst.call(t, "setreal", rng.Uint64())
			case 5:
				if rng.IntN(4) == 0 {
					inst.call(t, "grow")
				}
			}
		}
		grew := inst.m.Memory().Size() > size
		err := inst.Reset()
		if grew {
			// The memory cannot shrink back: Reset refuses, and a fresh
			// instance takes over with the snapshot's size.
			if !errors.Is(err, ErrNotResettable) {
				t.Fatalf("round %d: Reset after memory grew: %v, want ErrNotResettable", round, err)
			}
			if inst.mem != nil {
				promoted, fast = promoted+inst.mem.promoted, fast+inst.mem.fast
			}
			ring += inst.ringCalls
			inst.Close(context.Background())
			inst = newScratch(t, m)
			relearn(inst)
			regrown++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		mem, grown, globals := inst.state(t, size)
		if !bytes.Equal(mem, wantMem) {
			t.Fatalf("round %d: memory differs from a fresh instance's after Reset", round)
		}
		if grown {
			t.Fatalf("round %d: memory past the snapshot after Reset", round)
		}
		if !equalU64(globals, wantGlobals) {
			t.Fatalf("round %d: globals %v after Reset, fresh %v", round, globals, wantGlobals)
		}
	}
	if regrown == 0 || regrown > rounds*3/4 {
		t.Fatalf("%d of %d rounds grew memory: the test covers too little", regrown, rounds)
	}
	if inst.mem != nil {
		promoted, fast = promoted+inst.mem.promoted, fast+inst.mem.fast
	}
	ring += inst.ringCalls
	if inst.tracking && promoted == 0 {
		t.Fatalf("no page was written at two resets in a row: the hot pages are not tested")
	}
	if inst.tracking && fast == 0 {
		t.Fatalf("no reset copied the hot pages alone: that way is not tested")
	}
	return ring
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResetFallbacks(t *testing.T) {
	t.Parallel()
	tableSet := strings.Replace(scratchGuest, `(func (export "grow")`,
		`(table 2 funcref) (elem declare func 0) (func (export "settab") (table.set 0 (i32.const 0) (ref.func 0))) (func (export "grow")`, 1)
	m := loadScratch(t, tableSet, true)
	ok, why := m.Resettable()
	if ok || !strings.Contains(why, "table.set") {
		t.Fatalf("Resettable = %v %q, want false naming table.set", ok, why)
	}
	if err := newScratch(t, m).Reset(); !errors.Is(err, ErrNotResettable) || !strings.Contains(err.Error(), "table.set") {
		t.Fatalf("Reset = %v, want ErrNotResettable naming table.set", err)
	}
	noSnap := loadScratch(t, scratchGuest, false)
	if err := newScratch(t, noSnap).Reset(); !errors.Is(err, ErrNotResettable) {
		t.Fatalf("Reset without a snapshot = %v, want ErrNotResettable", err)
	}
}

// TestResetSeesKernelWrites: a guest call whose host function has the
// kernel write into guest memory (WASI fd_read from a file: read(2) into
// a page Reset had protected) is seen as having written that page, with
// faults watched either way.
func TestResetSeesKernelWrites(t *testing.T) {
	t.Parallel()
	tracking, _, _ := kernelSupport()
	if !tracking {
		t.Logf("%s: written pages are not tracked here; Reset compares memory", runtime.GOOS)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("kernel wrote this "), 16), 0o644); err != nil {
		t.Fatal(err)
	}
	const guest = `(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 9)
  (data (i32.const 300) "f")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0)
  (func (export "poke") (param $a i32) (param $v i32) (i32.store8 (local.get $a) (local.get $v)))
  ;; slurp reads the file's first 200 bytes into memory at $at, through
  ;; the kernel; it returns the WASI errno of the first call that failed.
  (func (export "slurp") (param $at i32) (result i32) (local $e i32)
    (local.set $e (call $open (i32.const 3) (i32.const 0) (i32.const 300) (i32.const 1) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 412)))
    (if (local.get $e) (then (return (local.get $e))))
    (i32.store (i32.const 400) (local.get $at))
    (i32.store (i32.const 404) (i32.const 200))
    (local.set $e (call $read (i32.load (i32.const 412)) (i32.const 400) (i32.const 1) (i32.const 408)))
    (drop (call $close (i32.load (i32.const 412))))
    (local.get $e)))`
	for _, rusage := range []bool{false, true} {
		m, err := Load(context.Background(), Options{Path: "kernel.wasm", Binary: testguest.WAT(t, guest), CacheDir: testguest.CacheDir(),
			Snapshot: true, faultsByRusage: rusage, Mounts: []Mount{{Host: dir, Guest: "/"}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		fresh, inst := newScratch(t, m), newScratch(t, m)
		size := fresh.m.Memory().Size()
		want, _, _ := fresh.state(t, size)
		// Page 0 (the guest's iovec and file descriptor) becomes hot. Odd
		// rounds write it alone (so the next reset copies the hot pages
		// without asking the kernel); even rounds have the kernel write
		// into another page too, protected until then: missed, it would
		// be left as written.
		page := os.Getpagesize()
		pages := int(size) / page
		for round := range 6 * pages {
			at := (2 + round/2%(pages-2)) * page
			if round%2 == 1 {
				inst.call(t, "poke", 412, 1)
			} else if e := inst.call(t, "slurp", uint64(at)); e != 0 {
				t.Fatalf("slurp: WASI errno %d", e)
			}
			if err := inst.Reset(); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := inst.state(t, size); !bytes.Equal(got, want) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Fatalf("faults by getrusage: %v: round %d: byte %#x differs from a fresh instance's after Reset (the kernel's write at %#x was missed)", rusage, round, i, at)
			}
		}
		// With getrusage, a fault of the thread between calls (the race
		// detector's, say) also sends Reset to the kernel: the fast path
		// is then not certain to be taken in so few rounds.
		if inst.tracking && inst.ringCalls > 0 && inst.mem.fast == 0 {
			t.Fatalf("faults by getrusage: %v: no reset copied the hot pages alone: the fast path was not tested", rusage)
		}
	}
}

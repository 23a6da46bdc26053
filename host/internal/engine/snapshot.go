package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Per-request isolation by reset: with Options.Snapshot, an instance
// records its state once start-up is done (linear memory and every mutable
// global, reached through the exports the instrumentation adds), and Reset
// puts that state back after a request, so that the next request cannot
// see anything the previous one left, without instantiating again.
//
// On Linux (6.7 or later) the kernel tracks the pages written since the
// snapshot (see watchedMemory) and Reset copies the snapshot back into
// those only: its cost follows what a request wrote, not the memory's
// size. Where writes cannot be tracked (userfaultfd refused), Reset
// compares the pages touched since the snapshot (all of memory where the
// kernel cannot say that either) with the snapshot in blocks and copies
// back the blocks that differ. Wasm memory cannot shrink: a request that
// grew it makes Reset fail, and the instance is replaced. Modules whose
// state lives elsewhere too (tables or segments changed at run time,
// imported or shared memory, v128 globals) are not resettable: Resettable
// says why.

// resetBlock is the unit of comparison and copy.
const resetBlock = 4 << 10

// How Reset may work (Options.resetWay, for tests).
const (
	resetBest    = iota // track writes, else compare touched pages, else compare all
	resetTouched        // compare touched pages, else all
	resetCompare        // compare all
)

// ErrNotResettable is wrapped by the error of Reset on an instance that
// has no snapshot or whose module cannot be restored exactly.
var ErrNotResettable = errors.New("instance cannot be reset")

type snapshot struct {
	size    int    // bytes of memory at the snapshot
	mem     []byte // their copy, when Reset compares blocks (not tracking)
	sparse  bool   // mem was copied from the touched pages only
	zero    []bool // per block of mem: all zero, compared against zeroBlock (one stream to read, not two)
	globals []savedGlobal
}

type savedGlobal struct {
	g api.MutableGlobal
	v uint64
}

// Resettable reports whether instances of the module can be restored to
// their post-start-up state by Reset; when not, why names what prevents
// it (for a log line at load).
func (m *Module) Resettable() (ok bool, why string) {
	if m.inst == nil {
		return false, "not instrumented"
	}
	reasons := append([]string(nil), m.inst.NotRestorable...)
	for _, g := range m.inst.Globals {
		if g.Type == 0x7b {
			reasons = append(reasons, fmt.Sprintf("mutable v128 global %d", g.Index))
		}
	}
	if len(reasons) > 0 {
		return false, "the module uses " + strings.Join(reasons, ", ")
	}
	return true, ""
}

// takeSnapshot records the instance's state; called once start-up is done.
func (i *Instance) takeSnapshot() error {
	if ok, _ := i.mod.Resettable(); !ok {
		return nil
	}
	mem := i.m.Memory()
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		return fmt.Errorf("snapshot: read memory of %d bytes", mem.Size())
	}
	s := &snapshot{size: len(b)}
	if i.mem != nil && (len(b) == 0 || &i.mem.buf[0] != &b[0]) {
		i.mem = nil // not the memory the allocator made
	}
	if i.mem != nil && i.mod.opts.resetWay == resetBest {
		if err := i.mem.snapshot(); err != nil {
			i.mod.watchFallback.Do(func() {
				i.log.Info("isolation = request: written pages cannot be tracked here, so each reset compares memory with its snapshot", "reason", err.Error())
			})
		} else {
			i.tracking, i.cleanCall = true, true
			if err := faultRingErr(); err != nil {
				i.mod.watchFallback.Do(func() {
					i.log.Info("isolation = request: each request costs a getrusage system call, as page faults cannot be recorded by a perf event here", "reason", err.Error())
				})
			}
		}
	}
	if !i.tracking {
		// Copy only the pages start-up touched where the kernel says
		// which (the rest read 0 and stay unmapped); Reset then compares
		// only pages touched since.
		s.mem = make([]byte, len(b))
		if i.mem != nil && i.mem.touched(len(b), func(from, to int) { copy(s.mem[from:to], b[from:to]) }) == nil {
			s.sparse = true
		} else {
			copy(s.mem, b)
		}
		for off := 0; off < len(s.mem); off += resetBlock {
			s.zero = append(s.zero, allZero(s.mem[off:min(off+resetBlock, len(s.mem))]))
		}
	}
	for _, g := range i.mod.inst.Globals {
		eg := i.m.ExportedGlobal(g.Export)
		mg, ok := eg.(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("snapshot: global %d is not exported as mutable %q", g.Index, g.Export)
		}
		s.globals = append(s.globals, savedGlobal{mg, mg.Get()})
	}
	i.snap = s
	return nil
}

// Reset restores the instance to its state right after start-up: linear
// memory (bytes past the snapshot's size read 0) and mutable globals. It
// fails, wrapping ErrNotResettable, when the instance has no snapshot
// (Options.Snapshot off, or a module Resettable refuses); the instance
// must then be discarded. ResetBytes reports how much the last call
// copied.
func (i *Instance) Reset() error {
	if i.snap == nil {
		if ok, why := i.mod.Resettable(); !ok {
			return fmt.Errorf("%w: %s", ErrNotResettable, why)
		}
		return fmt.Errorf("%w: no snapshot (Options.Snapshot is off)", ErrNotResettable)
	}
	i.stdout.flush()
	i.stderr.flush()
	mem := i.m.Memory()
	cur, ok := mem.Read(0, mem.Size())
	if !ok || len(cur) < i.snap.size {
		return fmt.Errorf("%w: memory of %d bytes, snapshot of %d", ErrNotResettable, len(cur), i.snap.size)
	}
	if len(cur) > i.snap.size {
		// Wasm memory cannot shrink: kept, the grown pages would be lost
		// to the guest's allocator (restored to the snapshot's view) and
		// every such request would bring the instance closer to its
		// memory limit. A fresh instance starts from the snapshot's size.
		return fmt.Errorf("%w: memory grew from %d to %d bytes during the request", ErrNotResettable, i.snap.size, len(cur))
	}
	if i.tracking {
		copied, err := i.mem.reset(i.cleanCall)
		i.cleanCall = true
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotResettable, err)
		}
		i.restoreGlobals()
		i.resetBytes = copied
		return nil
	}
	copied := -1
	if i.snap.sparse {
		n := 0
		if i.mem.touched(len(cur), func(from, to int) { n += i.restoreBlocks(cur, from, to) }) == nil {
			copied = n
		}
	}
	if copied < 0 {
		copied = i.restoreBlocks(cur, 0, len(cur))
	}
	i.restoreGlobals()
	i.resetBytes = copied
	return nil
}

// restoreBlocks puts back the snapshot's bytes in cur[from:to], comparing
// block by block, and returns the bytes written. cur is the snapshot's
// size (Reset refuses a grown memory).
func (i *Instance) restoreBlocks(cur []byte, from, to int) int {
	copied := 0
	snap := i.snap.mem
	for off := from / resetBlock * resetBlock; off < to; off += resetBlock {
		end := min(off+resetBlock, len(snap))
		if i.snap.zero[off/resetBlock] {
			if !allZero(cur[off:end]) {
				clear(cur[off:end])
				copied += end - off
			}
		} else if !bytes.Equal(cur[off:end], snap[off:end]) {
			copied += copy(cur[off:end], snap[off:end])
		}
	}
	return copied
}

func (i *Instance) restoreGlobals() {
	for _, g := range i.snap.globals {
		g.g.Set(g.v)
	}
}

// ResetBytes is how many bytes of memory the last Reset wrote.
func (i *Instance) ResetBytes() int { return i.resetBytes }

var zeroBlock [resetBlock]byte

func allZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

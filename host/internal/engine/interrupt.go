package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/host/internal/instrument"
)

// Interruption: every module is instrumented before it is compiled (package
// instrument), so that guest code calls the host's interrupt import at
// least every refillBudget loop iterations or function entries. The import
// stops the call when its deadline passed or the module is closing, and
// otherwise returns at once; entering Go is what lets a garbage collection
// stop the world while a guest spins (compiled guest code cannot be
// preempted), and the import yields to the scheduler so that other
// goroutines run even on a single CPU.

// refillBudget is the budget the interrupt import gives back: about a
// millisecond of a tight loop between two host calls.
const refillBudget = instrument.DefaultBudget

// epoch is the origin of the monotonic clock deadlines are expressed in.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// interrupted is the panic value of the interrupt import stopping a call;
// wazero returns it, wrapped, as the call's error.
type interrupted struct {
	phase  string
	limit  time.Duration
	closed bool
}

func (e *interrupted) Error() string {
	if e.closed {
		return fmt.Sprintf("%s stopped: the instance was stopped or its module closed", e.phase)
	}
	key := "request_timeout"
	if e.phase != phaseRequest {
		key = "init_timeout"
	}
	return fmt.Sprintf("%s exceeded %s of %s", e.phase, key, e.limit)
}

// Phases of a guest call, named in timeout messages.
const (
	phaseStart      = "start"
	phaseInitialize = "_initialize"
	phaseVersion    = "wasmserve_abi_version"
	phaseInit       = "wasmserve_init"
	phaseRequest    = "request"
)

// interrupt is the host side of the instrumentation's import: () -> i32,
// the new budget.
func interrupt(ctx context.Context, _ api.Module, stack []uint64) {
	if inst := instanceOf(ctx); inst != nil {
		if inst.mod.closed.Load() || inst.stopped.Load() {
			panic(&interrupted{phase: inst.phase, closed: true})
		}
		if inst.deadline != 0 && monotonic() >= inst.deadline {
			panic(&interrupted{phase: inst.phase, limit: inst.limit})
		}
	}
	// Let other goroutines run: compiled guest code cannot be preempted,
	// so with one CPU (GOMAXPROCS=1) a spinning guest would otherwise hold
	// it until the scheduler forces a switch (about 10 ms), and every
	// other request would wait that long.
	runtime.Gosched()
	stack[0] = refillBudget
}

// Stop makes the instance's running call, if any, stop at its next
// interruption check (within about a millisecond of guest work) with a
// Timeout fault; the instance must then be closed. It is safe to call from
// any goroutine.
func (i *Instance) Stop() { i.stopped.Store(true) }

// setDeadline starts a phase bounded by limit (0 = none).
func (i *Instance) setDeadline(phase string, limit time.Duration) {
	i.phase, i.limit, i.deadline = phase, limit, 0
	if limit > 0 {
		i.deadline = monotonic() + int64(limit)
	}
}

// instrument rewrites bin for interruption.
func (m *Module) instrument(bin []byte) ([]byte, error) {
	res, err := instrument.Instrument(bin, instrument.Options{Budget: refillBudget, ExportGlobals: true})
	if err == nil {
		m.inst = res
		return res.Binary, nil
	}
	if errors.Is(err, instrument.ErrMalformed) {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return nil, fmt.Errorf("instrument for interruption: %w", err)
}

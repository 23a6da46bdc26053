package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmserve/wasmserve/abi"
)

// Instance is one instantiated guest. It handles one request at a time and
// must not be used concurrently.
type Instance struct {
	// ID identifies the worker slot the instance fills, for logs.
	ID int
	// Requests counts the requests the instance has handled.
	Requests int

	mod     *Module
	m       api.Module
	handle  api.Function
	stack   []uint64
	ctx     context.Context
	record  []byte
	log     *slog.Logger
	trace   string
	mu      sync.Mutex // guards fault, written by output writers
	fault   string
	oom     bool // the current call's stderr reported an allocation failure
	stdout  *lineWriter
	stderr  *lineWriter
	out     guestOutput
	created time.Time
	// The running phase and its deadline (monotonic(); 0 = none), read by
	// the interrupt import on the calling goroutine.
	phase    string
	limit    time.Duration
	deadline int64
	stopped  atomic.Bool
	outCalls outState // outbound calls of the current request
	kv       kvState  // key-value calls: the request's deadline, the last error
	// snap is the post-start-up state Reset restores; nil without one.
	snap       *snapshot
	resetBytes int
	// mem is the linear memory when the instance's own allocator made it
	// (Linux, Options.Snapshot); tracking is set when the kernel tracks
	// the pages written to it since the snapshot.
	mem      *watchedMemory
	tracking bool
	// cleanCall is set by Reset and cleared by a guest call that took a
	// page fault (see callGuest).
	cleanCall bool
	ringCalls int // guest calls that watched faults through a perf event, for tests
}

// FaultKind classifies a failed guest call.
type FaultKind int

// Kinds of fault. Every fault discards the instance.
const (
	Trap        FaultKind = iota + 1 // the guest trapped, exited or aborted
	Timeout                          // the call's context was done
	MemoryLimit                      // the guest trapped at its memory limit
	BadResponse                      // the response record was malformed
)

func (k FaultKind) String() string {
	switch k {
	case Trap:
		return "trap"
	case Timeout:
		return "timeout"
	case MemoryLimit:
		return "memory_limit"
	case BadResponse:
		return "bad_response"
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// Fault is the error of a failed guest call.
type Fault struct {
	Kind    FaultKind
	Worker  int
	Message string // the guest's own message, when it wrote one
	Err     error
}

func (f *Fault) Error() string {
	s := fmt.Sprintf("worker %d: guest %s: %v", f.Worker, f.Kind, f.Err)
	if f.Message != "" {
		s += ": " + f.Message
	}
	return s
}

func (f *Fault) Unwrap() error { return f.Err }

// NewInstance instantiates the module for worker slot id, runs its reactor
// initialiser, checks its ABI version and calls its init export.
func (m *Module) NewInstance(ctx context.Context, id int) (*Instance, error) {
	inst := &Instance{ID: id, mod: m, stack: make([]uint64, 1), created: time.Now()}
	inst.log = m.log.With("worker", id, "generation", m.opts.Generation)
	inst.ctx = context.WithValue(context.WithoutCancel(ctx), instKey{}, inst)
	inst.stdout = &lineWriter{inst: inst, level: slog.LevelInfo, stream: "stdout"}
	inst.stderr = &lineWriter{inst: inst, level: slog.LevelWarn, stream: "stderr"}
	mc := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("guest-%d-%d", id, m.seq.Add(1))).
		WithStartFunctions(). // _initialize is called by start, under its own deadline
		WithStdout(inst.stdout).WithStderr(inst.stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(randReader{})
	if len(m.opts.Mounts) > 0 {
		fc := wazero.NewFSConfig()
		for _, mt := range m.opts.Mounts {
			fc = fc.WithReadOnlyDirMount(mt.Host, mt.Guest)
		}
		mc = mc.WithFSConfig(fc)
	}
	for _, kv := range m.opts.Env {
		mc = mc.WithEnv(kv.Key, kv.Value)
	}
	inst.setDeadline(phaseStart, m.opts.InitTimeout)
	ictx := inst.ctx
	if m.opts.Snapshot && m.opts.resetWay != resetCompare {
		ictx = experimental.WithMemoryAllocator(ictx, watchAllocator(&inst.mem))
	}
	mod, err := m.rt.InstantiateModule(ictx, m.compiled, mc)
	if err != nil {
		err = inst.initError(err)
		return nil, fmt.Errorf("instantiate %s (worker %d): %w%s", m.opts.Path, id, err, inst.faultSuffix())
	}
	inst.m = mod
	inst.handle = mod.ExportedFunction(abi.ExportHandle)
	if err := inst.start(); err != nil {
		mod.Close(ctx)
		return nil, fmt.Errorf("instantiate %s (worker %d): %w", m.opts.Path, id, err)
	}
	inst.setDeadline(phaseRequest, 0)
	if m.opts.Snapshot {
		if err := inst.takeSnapshot(); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("instantiate %s (worker %d): %w", m.opts.Path, id, err)
		}
	}
	return inst, nil
}

// start runs the guest's start-up exports, each under InitTimeout.
func (i *Instance) start() error {
	stack := make([]uint64, 1)
	if fn := i.m.ExportedFunction(abi.ExportInitialize); fn != nil {
		i.setDeadline(phaseInitialize, i.mod.opts.InitTimeout)
		if err := fn.CallWithStack(i.ctx, stack); err != nil {
			return fmt.Errorf("call %s: %w%s", abi.ExportInitialize, i.initError(err), i.faultSuffix())
		}
	}
	i.setDeadline(phaseVersion, i.mod.opts.InitTimeout)
	if err := i.m.ExportedFunction(abi.ExportABIVersion).CallWithStack(i.ctx, stack); err != nil {
		return fmt.Errorf("call %s: %w%s", abi.ExportABIVersion, i.initError(err), i.faultSuffix())
	}
	if v := int32(stack[0]); v != abi.Version {
		return fmt.Errorf("%w: guest declares ABI version %d, host implements version %d", ErrABIVersion, v, abi.Version)
	}
	if fn := i.m.ExportedFunction(abi.ExportInit); fn != nil {
		i.setDeadline(phaseInit, i.mod.opts.InitTimeout)
		if err := fn.CallWithStack(i.ctx, stack); err != nil {
			return fmt.Errorf("call %s: %w%s", abi.ExportInit, i.initError(err), i.faultSuffix())
		}
		if r := int32(stack[0]); r != 0 {
			return fmt.Errorf("%s returned %d%s", abi.ExportInit, r, i.faultSuffix())
		}
	}
	return nil
}

// initError logs a start-up phase stopped at its deadline and returns the
// error to report: the timeout alone, without wazero's stack trace.
func (i *Instance) initError(err error) error {
	var in *interrupted
	if !errors.As(err, &in) {
		return err
	}
	i.log.Error("guest start-up stopped: "+in.Error(), "phase", in.phase, "limit", in.limit.String())
	return fmt.Errorf("%w: %w", ErrInitTimeout, in)
}

func (i *Instance) faultSuffix() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.fault == "" {
		return ""
	}
	return ": " + i.fault
}

func (i *Instance) noteFault(msg string) {
	i.mu.Lock()
	if i.fault == "" {
		i.fault = msg
	}
	i.mu.Unlock()
}

func (i *Instance) logger() *slog.Logger {
	if i.trace != "" {
		return i.log.With("trace", i.trace)
	}
	return i.log
}

// Call is one request for Handle.
type Call struct {
	Request *abi.RequestInfo
	// Timeout bounds the guest call; 0 means none.
	Timeout time.Duration
	// Trace is the request's trace id, added to the guest's log records.
	Trace string
	// Ctx ends when the request does (its client went away); the guest's
	// outbound calls are then cancelled. Nil means never.
	Ctx context.Context
	// Deadline bounds the guest's outbound calls: request_timeout or a
	// Thrift Deadline-Budget from the call's start. Zero means Timeout
	// from the call's start, or none.
	Deadline time.Time
}

// Handle runs one request through the guest and returns its parsed response
// record. The response aliases guest memory and is valid until the next
// call on the instance. On error, which is always a *Fault, the instance
// must be closed.
func (i *Instance) Handle(c *Call) (abi.Response, error) {
	i.record = abi.AppendRequest(i.record[:0], c.Request)
	i.trace = c.Trace
	i.Requests++
	i.mu.Lock()
	i.fault, i.oom = "", false
	i.mu.Unlock()
	i.kv.begin(c.Timeout)
	i.limit, i.deadline = c.Timeout, 0
	if c.Timeout > 0 {
		i.deadline = monotonic() + int64(c.Timeout)
	}
	i.stack[0] = uint64(uint32(len(i.record)))
	i.beginCall()
	i.beginOutbound(c)
	err := i.callGuest(i.handle, i.stack)
	i.endOutbound()
	i.endCall(err != nil)
	i.trace = ""
	if err != nil {
		return abi.Response{}, i.classify(err, c.Timeout)
	}
	resp, err := i.response(c.Request.Kind)
	if err != nil {
		return abi.Response{}, &Fault{Kind: BadResponse, Worker: i.ID, Err: err}
	}
	return resp, nil
}

// callGuest calls fn; every guest call after start-up goes through it.
// When Reset tracks written pages, it also records whether the call wrote
// only to pages left unprotected: the goroutine stays on its thread for
// the call, and a write to any other page of guest memory is a page fault
// of that thread (no other thread writes guest memory during a call), so
// a call that took no fault (see threadWatch) lets Reset copy back those
// pages without asking the kernel which were written.
func (i *Instance) callGuest(fn api.Function, stack []uint64) error {
	if !i.tracking {
		return fn.CallWithStack(i.ctx, stack)
	}
	// Unlocked also on a panic: a goroutine that ends locked ends its
	// thread, and a thread's fault watch must not outlive it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := watchFaults(i.mod.opts.faultsByRusage)
	clean := i.cleanCall
	i.cleanCall = false // should the call panic
	err := fn.CallWithStack(i.ctx, stack)
	i.cleanCall = w.clean() && clean
	if !w.rusage {
		i.ringCalls++
	}
	return err
}

func (i *Instance) classify(err error, timeout time.Duration) error {
	f := &Fault{Kind: Trap, Worker: i.ID, Err: err}
	var exit *sys.ExitError
	var in *interrupted
	switch {
	case errors.As(err, &in):
		f.Kind = Timeout
		if in.closed {
			f.Err = in
		} else {
			f.Err = fmt.Errorf("request_timeout of %s exceeded", timeout)
		}
	case errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled):
		f.Kind = Timeout
		f.Err = fmt.Errorf("request_timeout of %s exceeded", timeout)
	case i.mod.limit > 0 && i.m.Memory().Size() >= (i.mod.limit-1)*65536:
		f.Kind = MemoryLimit
	}
	i.mu.Lock()
	f.Message = i.fault
	i.mu.Unlock()
	// A guest whose allocator asked for more than the pages left (a
	// large block near the limit) reports it before trapping.
	i.mu.Lock()
	oom := i.oom
	i.mu.Unlock()
	if f.Kind == Trap && i.mod.limit > 0 && (oom || outOfMemory(f.Message)) {
		f.Kind = MemoryLimit
	}
	return f
}

// MemoryBytes is the current size of the instance's linear memory.
func (i *Instance) MemoryBytes() uint32 { return i.m.Memory().Size() }

// Age is how long ago the instance was created.
func (i *Instance) Age() time.Duration { return time.Since(i.created) }

// Close releases the instance. It is safe to call more than once.
func (i *Instance) Close(ctx context.Context) error {
	i.stdout.flush()
	i.stderr.flush()
	i.out.mu.Lock()
	i.flushGroup(false)
	i.reportDropped("start-up")
	i.out.mu.Unlock()
	if i.m == nil {
		return nil
	}
	return i.m.Close(ctx)
}

// outOfMemory reports whether a guest's fault message says an allocation
// failed, as the Go, Rust and C runtimes word it.
func outOfMemory(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "memory allocation of")
}

// Package pool keeps a fixed number of guest instances ready and lends one
// to each request for the guest call only: the response is copied into a
// host buffer and the instance given back before the front end writes it.
//
// A Pool admits at most MaxConcurrency requests at once (waiting for an
// instance counts); the rest are refused at once with ErrOverloaded. A
// faulted instance is closed and a replacement created off the request
// path, so the pool returns to Workers healthy instances within one
// instantiation.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
)

// Isolation says whether instances are reused across requests.
type Isolation int

const (
	// PerWorker reuses an instance for many requests; guest state persists.
	PerWorker Isolation = iota
	// PerRequest restores an instance to its post-start-up state after
	// each request (engine.Instance.Reset), or discards it when its module
	// cannot be restored exactly.
	PerRequest
)

// Errors returned by Handle.
var (
	// ErrOverloaded means MaxConcurrency requests are already admitted.
	ErrOverloaded = errors.New("pool: too many concurrent requests")
	// ErrClosed means the pool was closed; the caller may retry on the
	// pool that replaced it.
	ErrClosed = errors.New("pool: closed")
)

// Options configure a Pool.
type Options struct {
	Workers           int
	MaxConcurrency    int
	MaxRequests       int // recycle an instance after this many requests; 0 = never
	MaxRequestsJitter int // add rand[0, jitter] to MaxRequests per instance
	Isolation         Isolation
	Timeout           time.Duration // per guest call; 0 = none
	Logger            *slog.Logger
	Observer          Observer // nil = none
}

// Observer receives pool events, for metrics. Methods are called from
// request goroutines and must be cheap and safe for concurrent use.
type Observer interface {
	Instantiated(d time.Duration, err error)
	Fault(kind engine.FaultKind)
	Recycled()
	// GuestCall follows every guest call: d is its duration, memory the
	// size of the instance's linear memory after a successful call (0 after
	// a fault, when the instance is being discarded).
	GuestCall(d time.Duration, worker int, memory uint32, req *abi.RequestInfo)
}

// Pool lends instances of one module. Its methods are safe for concurrent
// use. A request takes no pool-wide lock: instances pass through a
// channel, and each worker slot has its own small lock for diagnostics.
type Pool struct {
	mod      *engine.Module
	opts     Options
	log      *slog.Logger
	idle     chan *engine.Instance // never closed; Close drains it
	slots    []slot                // by worker ID - 1
	admitted atomic.Int64
	closed   atomic.Bool
	done     chan struct{} // closed by Close
	ctx      context.Context

	mu      sync.Mutex    // guards live
	live    int           // instances alive or being replaced
	drained chan struct{} // closed when live drops to 0 after Close
}

// slot is one worker's state. Its lock is taken by the request using the
// worker and by BusyList, never pool-wide.
type slot struct {
	mu     sync.Mutex
	since  time.Time // zero while idle
	kind   abi.Kind
	method string
	path   string
	// limit is the max_requests limit of the slot's current instance; it
	// is written while no request uses the slot.
	limit int
}

// Busy describes an instance serving a request, for diagnostics.
type Busy struct {
	Worker int
	What   string // e.g. "GET /spin" or "thrift echo"
	Since  time.Time
}

// New instantiates opts.Workers instances of mod and returns the pool. It
// fails, closing what it made, if any instance fails.
func New(ctx context.Context, mod *engine.Module, opts Options) (*Pool, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.MaxConcurrency < opts.Workers {
		opts.MaxConcurrency = opts.Workers
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Pool{
		mod:     mod,
		opts:    opts,
		log:     opts.Logger,
		idle:    make(chan *engine.Instance, opts.Workers),
		slots:   make([]slot, opts.Workers),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		ctx:     context.WithoutCancel(ctx),
	}
	type result struct {
		inst *engine.Instance
		err  error
	}
	results := make(chan result, opts.Workers)
	for id := 1; id <= opts.Workers; id++ {
		go func() {
			inst, err := p.instantiate(id)
			results <- result{inst, err}
		}()
	}
	var errs []error
	for range opts.Workers {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		p.idle <- r.inst
		p.live++
	}
	if len(errs) > 0 {
		p.Close(ctx)
		return nil, errs[0]
	}
	return p, nil
}

func (p *Pool) instantiate(id int) (*engine.Instance, error) {
	start := time.Now()
	inst, err := p.mod.NewInstance(p.ctx, id)
	if p.opts.Observer != nil {
		p.opts.Observer.Instantiated(time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	if p.opts.MaxRequests > 0 {
		limit := p.opts.MaxRequests
		if p.opts.MaxRequestsJitter > 0 {
			limit += rand.IntN(p.opts.MaxRequestsJitter + 1)
		}
		p.slots[id-1].limit = limit
	}
	return inst, nil
}

// Module is the module the pool's instances come from.
func (p *Pool) Module() *engine.Module { return p.mod }

// Workers is the configured number of instances.
func (p *Pool) Workers() int { return p.opts.Workers }

// Handle lends an instance to req, waiting while none is idle, runs the
// guest, copies its response out of guest memory and returns the instance
// to the pool before it returns: no socket I/O ever happens while an
// instance is lent. The caller writes the response and then calls its
// Release.
//
// Handle returns ErrOverloaded at once when MaxConcurrency requests are in,
// ErrClosed on a closed pool, ctx.Err() if ctx ends while waiting, or the
// *engine.Fault of the call (after which the instance has been replaced).
// trace is the request's trace id, if any. A panic while the instance is
// lent replaces the instance before it propagates, so the pool never
// shrinks.
func (p *Pool) Handle(ctx context.Context, req *abi.RequestInfo, trace string) (*Response, error) {
	if p.admitted.Add(1) > int64(p.opts.MaxConcurrency) {
		p.admitted.Add(-1)
		return nil, ErrOverloaded
	}
	defer p.admitted.Add(-1)
	var inst *engine.Instance
	select {
	case inst = <-p.idle:
	case <-p.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.closed.Load() { // Close began while this request waited
		p.retire(inst)
		return nil, ErrClosed
	}
	timeout := p.opts.Timeout
	budget, hasBudget := ctx.Value(timeoutKey{}).(time.Duration)
	if hasBudget && timeout > 0 && budget < timeout {
		timeout = budget
	}
	call := engine.Call{Request: req, Timeout: timeout, Trace: trace, Ctx: ctx}
	return p.serve(inst, &call, budget)
}

// serve runs call on inst, which the caller has taken from the pool, and
// gives inst back, also when something panics. budget, when positive, is a
// Deadline-Budget: with call.Timeout it sets the deadline of the guest's
// outbound calls (also when request_timeout is off).
func (p *Pool) serve(inst *engine.Instance, call *engine.Call, budget time.Duration) (resp *Response, err error) {
	req := call.Request
	s := &p.slots[inst.ID-1]
	since := time.Now()
	if budget > 0 && (call.Timeout == 0 || budget < call.Timeout) {
		call.Deadline = since.Add(budget)
	} else if call.Timeout > 0 {
		call.Deadline = since.Add(call.Timeout)
	}
	s.mu.Lock()
	s.since, s.kind, s.method, s.path = since, req.Kind, req.Method, req.Path
	s.mu.Unlock()
	given := false
	defer func() {
		if given {
			return
		}
		// A panic while the instance was lent: its state is unknown, so it
		// is replaced rather than reused, and the panic goes on.
		s.idle()
		p.log.Error("panic while serving a request; replacing instance", "worker", inst.ID)
		p.replace(inst)
	}()
	r, err := inst.Handle(call)
	d := time.Since(since)
	s.idle()
	if p.opts.Observer != nil {
		var mem uint32
		if err == nil {
			mem = inst.MemoryBytes()
		}
		p.opts.Observer.GuestCall(d, inst.ID, mem, req)
	}
	if err == nil {
		resp = newResponse(inst.ID, r)
	}
	given = true
	p.release(inst, err)
	return resp, err
}

func (s *slot) idle() {
	s.mu.Lock()
	s.since, s.method, s.path = time.Time{}, "", ""
	s.mu.Unlock()
}

type timeoutKey struct{}

// WithTimeout returns a context under which Handle bounds the guest call by
// d when that is shorter than the pool's timeout (for example a Thrift
// Deadline-Budget). It only narrows: with the pool's timeout off
// (request_timeout = 0) guest calls have no deadline and d is not applied
// to the guest, though outbound calls still honour it.
func WithTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, timeoutKey{}, d)
}

// release returns inst to the pool, or replaces it after a fault, when it
// reached max_requests, or under per-request isolation.
func (p *Pool) release(inst *engine.Instance, err error) {
	switch {
	case err != nil:
		p.fault(inst, err)
	case p.opts.Isolation == PerRequest && inst.Reset() != nil:
		// Reset restores the instance to its post-start-up state; a module
		// it cannot restore exactly gets a fresh instance instead.
	case p.opts.MaxRequests > 0 && inst.Requests >= p.slots[inst.ID-1].limit:
		p.log.Info("recycling instance after max_requests", "worker", inst.ID, "requests", inst.Requests)
		if p.opts.Observer != nil {
			p.opts.Observer.Recycled()
		}
	default:
		if !p.closed.Load() {
			// Never blocks: the channel holds every instance. Should Close
			// begin now, it takes the instance back from the channel.
			p.idle <- inst
			return
		}
		p.retire(inst)
		return
	}
	p.replace(inst)
}

// fault reports the failed call of inst.
func (p *Pool) fault(inst *engine.Instance, err error) {
	var f *engine.Fault
	if !errors.As(err, &f) {
		p.log.Error("guest call failed; replacing instance", "worker", inst.ID, "error", err)
		return
	}
	p.log.Error("guest fault; replacing instance", "worker", inst.ID, "kind", f.Kind.String(), "error", f.Err, "message", f.Message)
	if p.opts.Observer != nil {
		p.opts.Observer.Fault(f.Kind)
	}
}

// retire closes inst for good, after Close began.
func (p *Pool) retire(inst *engine.Instance) {
	if err := inst.Close(p.ctx); err != nil {
		p.log.Warn("close instance", "worker", inst.ID, "error", err)
	}
	p.gone()
}

// gone counts an instance that will not come back.
func (p *Pool) gone() {
	p.mu.Lock()
	p.live--
	if p.live == 0 {
		close(p.drained)
	}
	p.mu.Unlock()
}

// replace closes inst and, unless the pool is closed, creates its
// replacement in the background, retrying with backoff on failure until
// it succeeds or the pool is closed.
func (p *Pool) replace(inst *engine.Instance) {
	if p.closed.Load() {
		p.retire(inst)
		return
	}
	if err := inst.Close(p.ctx); err != nil {
		p.log.Warn("close instance", "worker", inst.ID, "error", err)
	}
	go func() {
		backoff := 10 * time.Millisecond
		for {
			n, err := p.instantiate(inst.ID)
			if err == nil {
				if !p.closed.Load() {
					p.idle <- n
					return
				}
				p.retire(n)
				return
			}
			p.log.Error("replace instance", "worker", inst.ID, "error", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				p.gone()
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

// Stats is a snapshot of the pool.
type Stats struct {
	Workers, Idle, Busy, Admitted int
}

// Stats returns a snapshot of the pool's state.
func (p *Pool) Stats() Stats {
	busy := 0
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if !s.since.IsZero() {
			busy++
		}
		s.mu.Unlock()
	}
	return Stats{Workers: p.opts.Workers, Idle: len(p.idle), Busy: busy, Admitted: int(p.admitted.Load())}
}

// BusyList returns the instances running a guest call right now.
func (p *Pool) BusyList() []Busy {
	var out []Busy
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if !s.since.IsZero() {
			what := s.method + " " + s.path
			if s.kind == abi.KindThrift {
				what = "thrift " + s.method
			}
			out = append(out, Busy{Worker: i + 1, What: what, Since: s.since})
		}
		s.mu.Unlock()
	}
	return out
}

// Close stops lending instances and waits until requests in flight finish
// and replacements under way end, or ctx is done; then it closes every
// instance and the module's runtime. Handle calls waiting for an instance
// get ErrClosed. It returns ctx's error if ctx ended first.
func (p *Pool) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	// Take back every idle instance; busy ones come back through release,
	// replacements under way through retire or gone.
	for {
		p.mu.Lock()
		live := p.live
		p.mu.Unlock()
		if live == 0 {
			break
		}
		select {
		case inst := <-p.idle:
			p.retire(inst)
			continue
		case <-p.drained:
		case <-ctx.Done():
		}
		break
	}
	if err := p.mod.Close(ctx); err != nil {
		return fmt.Errorf("close module %s: %w", p.mod.Path(), err)
	}
	return ctx.Err()
}

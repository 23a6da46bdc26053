// Package pool keeps a fixed number of guest instances ready and lends one
// to each request, pinned to it from start to response.
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
	// PerRequest discards an instance after one request.
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
// use.
type Pool struct {
	mod      *engine.Module
	opts     Options
	log      *slog.Logger
	idle     chan *engine.Instance
	admitted atomic.Int64
	mu       sync.Mutex // guards busy, closed, live
	busy     map[int]Busy
	closed   bool
	live     int
	drained  chan struct{}  // closed when live drops to 0 after Close
	done     chan struct{}  // closed by Close
	wg       sync.WaitGroup // replacement goroutines
	limits   map[*engine.Instance]int
	ctx      context.Context
}

// Busy describes an instance serving a request, for diagnostics.
type Busy struct {
	Worker int
	What   string // e.g. "GET /spin" or "thrift echo"
	Since  time.Time
	req    *abi.RequestInfo
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
		mod:    mod,
		opts:   opts,
		log:    opts.Logger,
		idle:   make(chan *engine.Instance, opts.Workers),
		busy:   map[int]Busy{},
		limits: map[*engine.Instance]int{},
		done:   make(chan struct{}),
		ctx:    context.WithoutCancel(ctx),
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
		p.mu.Lock()
		p.limits[inst] = limit
		p.mu.Unlock()
	}
	return inst, nil
}

// Module is the module the pool's instances come from.
func (p *Pool) Module() *engine.Module { return p.mod }

// Workers is the configured number of instances.
func (p *Pool) Workers() int { return p.opts.Workers }

// Handle lends an instance to req, waiting while none is idle, runs the
// guest and passes its response to write while the instance is still
// pinned (the response aliases guest memory). It returns ErrOverloaded at
// once when MaxConcurrency requests are in, ErrClosed on a closed pool,
// ctx.Err() if ctx ends while waiting, or the *engine.Fault of the call
// (after which the instance has been replaced). what describes the request
// for diagnostics ("" derives it from req when needed); trace is its trace
// id, if any.
func (p *Pool) Handle(ctx context.Context, req *abi.RequestInfo, what, trace string, write func(worker int, resp abi.Response)) error {
	if p.admitted.Add(1) > int64(p.opts.MaxConcurrency) {
		p.admitted.Add(-1)
		return ErrOverloaded
	}
	defer p.admitted.Add(-1)
	var inst *engine.Instance
	select {
	case inst = <-p.idle:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	if inst == nil { // closed
		return ErrClosed
	}
	since := time.Now()
	p.mu.Lock()
	p.busy[inst.ID] = Busy{Worker: inst.ID, What: what, Since: since, req: req}
	p.mu.Unlock()
	timeout := p.opts.Timeout
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok && timeout > 0 && d < timeout {
		timeout = d
	}
	call := engine.Call{Request: req, Timeout: timeout, Trace: trace}
	resp, err := inst.Handle(&call)
	if p.opts.Observer != nil {
		var mem uint32
		if err == nil {
			mem = inst.MemoryBytes()
		}
		p.opts.Observer.GuestCall(time.Since(since), inst.ID, mem, req)
	}
	if err == nil {
		write(inst.ID, resp)
	}
	p.mu.Lock()
	delete(p.busy, inst.ID)
	p.mu.Unlock()
	p.release(inst, err)
	return err
}

type timeoutKey struct{}

// WithTimeout returns a context under which Handle bounds the guest call by
// d when that is shorter than the pool's timeout (for example a Thrift
// Deadline-Budget). With the pool's timeout off it has no effect: the module
// was then compiled without the checks that stop a running guest.
func WithTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, timeoutKey{}, d)
}

// describe names a request for diagnostics: "GET /path" or "thrift name".
func describe(r *abi.RequestInfo) string {
	if r.Kind == abi.KindThrift {
		return "thrift " + r.Method
	}
	return r.Method + " " + r.Path
}

// release returns inst to the pool, or replaces it after a fault, when it
// reached max_requests, or under per-request isolation.
func (p *Pool) release(inst *engine.Instance, err error) {
	var f *engine.Fault
	switch {
	case errors.As(err, &f):
		p.log.Error("guest fault; replacing instance", "worker", inst.ID, "kind", f.Kind.String(), "error", f.Err, "message", f.Message)
		if p.opts.Observer != nil {
			p.opts.Observer.Fault(f.Kind)
		}
	case p.opts.Isolation == PerRequest:
	case p.recycleDue(inst):
		p.log.Info("recycling instance after max_requests", "worker", inst.ID, "requests", inst.Requests)
		if p.opts.Observer != nil {
			p.opts.Observer.Recycled()
		}
	default:
		p.mu.Lock()
		if !p.closed { // never blocks: the channel holds every instance
			p.idle <- inst
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	p.replace(inst)
}

func (p *Pool) recycleDue(inst *engine.Instance) bool {
	if p.opts.MaxRequests <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return inst.Requests >= p.limits[inst]
}

// replace closes inst and, unless the pool is closed, creates its
// replacement in the background, retrying with backoff on failure.
func (p *Pool) replace(inst *engine.Instance) {
	p.mu.Lock()
	delete(p.limits, inst)
	closed := p.closed
	if closed {
		p.live--
		if p.live == 0 {
			close(p.drained)
		}
	} else {
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if err := inst.Close(p.ctx); err != nil {
		p.log.Warn("close instance", "worker", inst.ID, "error", err)
	}
	if closed {
		return
	}
	go func() {
		defer p.wg.Done()
		backoff := 10 * time.Millisecond
		for {
			n, err := p.instantiate(inst.ID)
			if err == nil {
				p.mu.Lock()
				if !p.closed {
					p.idle <- n
					p.mu.Unlock()
					return
				}
				p.live--
				if p.live == 0 {
					close(p.drained)
				}
				p.mu.Unlock()
				n.Close(p.ctx)
				return
			}
			p.log.Error("replace instance", "worker", inst.ID, "error", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, 5*time.Second)
			p.mu.Lock()
			closed := p.closed
			if closed {
				p.live--
				if p.live == 0 {
					close(p.drained)
				}
			}
			p.mu.Unlock()
			if closed {
				return
			}
		}
	}()
}

// Stats is a snapshot of the pool.
type Stats struct {
	Workers, Idle, Busy, Admitted int
}

// Stats returns a snapshot of the pool's state.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	busy := len(p.busy)
	p.mu.Unlock()
	return Stats{Workers: p.opts.Workers, Idle: len(p.idle), Busy: busy, Admitted: int(p.admitted.Load())}
}

// BusyList returns the instances serving requests right now.
func (p *Pool) BusyList() []Busy {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Busy, 0, len(p.busy))
	for _, b := range p.busy {
		if b.What == "" {
			b.What = describe(b.req)
		}
		b.req = nil
		out = append(out, b)
	}
	return out
}

// Close stops lending instances, waits until requests in flight finish or
// ctx is done, then closes every instance and the module's runtime. Handle
// calls waiting for an instance get ErrClosed.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.drained = make(chan struct{})
	close(p.done)
	p.mu.Unlock()
	p.wg.Wait() // replacements finish or give up
	// Take back every idle instance; busy ones come back through release.
	for {
		p.mu.Lock()
		live := p.live
		p.mu.Unlock()
		if live == 0 {
			break
		}
		select {
		case inst := <-p.idle:
			inst.Close(ctx)
			p.mu.Lock()
			p.live--
			if p.live == 0 {
				close(p.drained)
			}
			p.mu.Unlock()
			continue
		case <-p.drained:
		case <-ctx.Done():
		}
		break
	}
	p.mu.Lock()
	close(p.idle)
	p.mu.Unlock()
	if err := p.mod.Close(ctx); err != nil {
		return fmt.Errorf("close module %s: %w", p.mod.Path(), err)
	}
	return ctx.Err()
}

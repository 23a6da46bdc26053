package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/frontend"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// generation is one build of the app: its number and the pool of workers
// running it.
type generation struct {
	n    int64
	pool *pool.Pool
}

// generations owns the generation serving now and the ones still draining
// after a reload. It is the handler the front ends call: each request runs
// on the generation current when it arrives (retried on the new one if it
// raced a swap and met the old pool closed), and the front end learns which
// one through the request context's frontend.Served record.
//
// Swap is refused once Close has begun, so a reload that finishes during
// shutdown closes what it built instead of leaving it open. Old generations
// drain with a bound: their requests in flight get drainBound to finish,
// then the generation is closed whatever remains. Its methods are safe for
// concurrent use.
type generations struct {
	log        *slog.Logger
	drainBound time.Duration
	cur        atomic.Pointer[generation]

	mu       sync.Mutex
	closing  bool          // Swap refused
	closed   bool          // Close has begun
	draining int           // old generations not yet closed
	drained  chan struct{} // closed when draining drops to 0; nil when none
}

var _ pool.Handler = (*generations)(nil)

// errShuttingDown refuses a reload or a swap once graceful shutdown has
// begun.
var errShuttingDown = errors.New("shutting down")

func newGenerations(log *slog.Logger, first *generation, drainBound time.Duration) *generations {
	g := &generations{log: log, drainBound: drainBound}
	g.cur.Store(first)
	return g
}

// Current returns the generation serving new requests.
func (g *generations) Current() *generation { return g.cur.Load() }

// Handle runs req on the current generation; see pool.Handler.
func (g *generations) Handle(ctx context.Context, req *abi.RequestInfo, trace string) (*pool.Response, error) {
	served := frontend.ServedFrom(ctx)
	for {
		cur := g.cur.Load()
		if served != nil {
			served.Generation = cur.n
		}
		resp, err := cur.pool.Handle(ctx, req, trace)
		if !errors.Is(err, pool.ErrClosed) || g.cur.Load() == cur {
			return resp, err
		}
	}
}

// Swap makes next the generation serving new requests and retires the
// previous one: it drains in the background, bounded by drainBound, and
// is then closed. It fails with errShuttingDown after StopSwaps or Close; the
// caller then still owns next and must close it.
func (g *generations) Swap(next *generation) (old *generation, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return nil, errShuttingDown
	}
	old = g.cur.Swap(next)
	g.draining++
	if g.drained == nil {
		g.drained = make(chan struct{})
	}
	go g.retire(old)
	return old, nil
}

// retire closes an old generation once its requests in flight finish, or
// after drainBound.
func (g *generations) retire(old *generation) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), g.drainBound)
	defer cancel()
	st := old.pool.Stats()
	err := old.pool.Close(ctx)
	args := []any{"generation", old.n, "in_flight", st.Busy,
		"drain_time", time.Since(start).Round(time.Microsecond)}
	if err != nil {
		g.log.Warn("previous generation closed before its requests finished", append(args, "bound", g.drainBound, "error", err)...)
	} else {
		g.log.Info("previous generation closed", args...)
	}
	g.mu.Lock()
	g.draining--
	if g.draining == 0 {
		close(g.drained)
		g.drained = nil
	}
	g.mu.Unlock()
}

// StopSwaps makes every later Swap fail: shutdown calls it as it begins,
// so that a reload still building cannot swap in a generation after that.
func (g *generations) StopSwaps() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
}

// Close refuses further swaps, closes the current generation and waits for
// old ones still draining, until ctx ends. It returns ctx's error if ctx
// ended first. Calling it again only waits again.
func (g *generations) Close(ctx context.Context) error {
	g.mu.Lock()
	first := !g.closed
	g.closing, g.closed = true, true
	g.mu.Unlock()
	var err error
	if first {
		cur := g.cur.Load()
		err = cur.pool.Close(ctx)
		if err != nil {
			g.log.Warn("generation closed before its requests finished", "generation", cur.n, "error", err)
		} else {
			g.log.Info("generation closed", "generation", cur.n)
		}
	}
	g.mu.Lock()
	wait := g.drained
	g.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

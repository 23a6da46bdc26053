package pool

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/wasmserve/wasmserve/abi"
)

// Handler runs requests through guests; front ends depend on it. *Pool and
// *Current implement it.
type Handler interface {
	// Handle runs req and returns the guest's response, with the instance
	// already back in its pool; see Pool.Handle.
	Handle(ctx context.Context, req *abi.RequestInfo, trace string) (*Response, error)
}

var (
	_ Handler = (*Pool)(nil)
	_ Handler = (*Current)(nil)
)

// Current holds the pool serving now. Swap replaces it atomically: new
// requests go to the new pool while requests already in the old one finish
// there. Its methods are safe for concurrent use.
type Current struct{ p atomic.Pointer[Pool] }

// NewCurrent returns a Current serving p.
func NewCurrent(p *Pool) *Current {
	c := &Current{}
	c.p.Store(p)
	return c
}

// Load returns the pool serving now.
func (c *Current) Load() *Pool { return c.p.Load() }

// Swap makes p the pool serving new requests and returns the previous one,
// which the caller closes.
func (c *Current) Swap(p *Pool) *Pool { return c.p.Swap(p) }

// Handle runs req on the current pool. A request that raced with a swap
// and met the closed old pool is retried on the new one.
func (c *Current) Handle(ctx context.Context, req *abi.RequestInfo, trace string) (*Response, error) {
	for {
		p := c.p.Load()
		resp, err := p.Handle(ctx, req, trace)
		if !errors.Is(err, ErrClosed) || c.p.Load() == p {
			return resp, err
		}
	}
}

package pool

import (
	"context"

	"github.com/wasmserve/wasmserve/abi"
)

// Handler runs requests through guests; front ends depend on it. *Pool
// implements it, and so does the server's generation owner, which routes
// each request to the pool serving now.
type Handler interface {
	// Handle runs req and returns the guest's response, with the instance
	// already back in its pool; see Pool.Handle.
	Handle(ctx context.Context, req *abi.RequestInfo, trace string) (*Response, error)
}

var _ Handler = (*Pool)(nil)

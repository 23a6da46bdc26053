package pool

import (
	"sync"

	"github.com/wasmserve/wasmserve/abi"
)

// Response is a guest's response copied out of guest memory into a host
// buffer, so that the instance is back in the pool before the front end
// writes a byte to the client. Its slices are valid until Release.
type Response struct {
	Worker  int        // the worker that ran the call
	Status  uint32     // as the guest returned it
	Headers abi.Fields // the guest's header field list
	Body    []byte
	buf     []byte
}

// maxKeptBuffer is the largest buffer Release keeps for reuse; a larger
// one (a large response) is left to the garbage collector, so a burst of
// large responses does not stay resident.
const maxKeptBuffer = 256 << 10

var responses = sync.Pool{New: func() any { return new(Response) }}

func newResponse(worker int, r abi.Response) *Response {
	resp := responses.Get().(*Response)
	n := len(r.Headers)
	resp.buf = append(append(resp.buf[:0], r.Headers...), r.Body...)
	resp.Worker, resp.Status = worker, r.Status
	resp.Headers = abi.Fields(resp.buf[:n:n])
	resp.Body = resp.buf[n:]
	return resp
}

// Release returns the response's buffer for reuse. The response must not
// be used afterwards.
func (r *Response) Release() {
	if r == nil {
		return
	}
	if cap(r.buf) > maxKeptBuffer {
		r.buf = nil
	}
	r.Headers, r.Body = nil, nil
	responses.Put(r)
}

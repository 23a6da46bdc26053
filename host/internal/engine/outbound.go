package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
)

// outboundFuncs are the outbound-call imports (see "Outbound calls" in
// abi/ABI.md), added to hostFuncs.
var outboundFuncs = []hostFunc{
	{abi.ImportHTTPSend, []api.ValueType{i32, i32}, []api.ValueType{i32}, httpSend},
	{abi.ImportThriftSend, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, thriftSend},
	{abi.ImportOutboundWait, []api.ValueType{i32, i32}, []api.ValueType{i32}, outboundWait},
	{abi.ImportOutboundRead, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, outboundRead},
	{abi.ImportOutboundClose, []api.ValueType{i32}, []api.ValueType{i32}, outboundClose},
	{abi.ImportOutboundError, []api.ValueType{i32, i32}, []api.ValueType{i32}, outboundError},
}

func init() { hostFuncs = append(hostFuncs, outboundFuncs...) }

// outState is an instance's outbound calls during one request. Handles
// live until the guest reads or closes them, or the request ends.
type outState struct {
	call    *Call // the request being served; nil outside one
	started bool  // req is set up
	req     outbound.Request
	cancel  context.CancelFunc
	handles map[int32]*outbound.Call
	next    int32
	lastErr string
}

// beginOutbound notes the request whose calls the guest may make. The
// request context and trace are set up on the first call.
func (i *Instance) beginOutbound(c *Call) { i.outCalls.call = c }

// endOutbound cancels and releases every handle the request left open.
func (i *Instance) endOutbound() {
	o := &i.outCalls
	o.call = nil
	if !o.started {
		return
	}
	for h, c := range o.handles {
		c.Cancel()
		delete(o.handles, h)
	}
	o.cancel()
	o.started, o.req, o.cancel = false, outbound.Request{}, nil
}

// outSet returns the instance's outbound clients and its request state, or
// sets the failure on stack and returns nil.
func outSet(ctx context.Context, fn string, stack []uint64) (*Instance, *outbound.Set) {
	inst := instanceOf(ctx)
	o := &inst.outCalls
	switch {
	case inst.mod.opts.Outbound == nil:
		inst.outFail(stack, &outbound.Error{Code: abi.ErrDenied, Msg: fn + ": no outbound clients are configured for this server"})
		return nil, nil
	case o.call == nil:
		inst.outFail(stack, &outbound.Error{Code: abi.ErrInvalid, Msg: fn + ": outbound calls are made while serving a request, not during initialisation"})
		return nil, nil
	}
	set := inst.mod.opts.Outbound
	if !o.started {
		parent := o.call.Ctx
		if parent == nil {
			parent = context.Background()
		}
		o.req.Ctx, o.cancel = context.WithCancel(parent)
		o.req.Deadline = o.call.Deadline
		if o.req.Deadline.IsZero() && o.call.Timeout > 0 {
			o.req.Deadline = time.Now().Add(o.call.Timeout)
		}
		if r := o.call.Request; r != nil {
			o.req.Trace = outbound.TraceFrom(r.Kind, r.Headers)
		}
		if o.handles == nil {
			o.handles = map[int32]*outbound.Call{}
		}
		o.started = true
	}
	if len(o.handles) >= set.MaxOutbound() {
		inst.outFail(stack, &outbound.Error{Code: abi.ErrLimit, Msg: fmt.Sprintf("%s: %d outbound calls are open, the max_outbound limit: wait on or close some first", fn, len(o.handles))})
		return nil, nil
	}
	return inst, set
}

func (i *Instance) outFail(stack []uint64, e *outbound.Error) {
	i.outCalls.lastErr = e.Msg
	stack[0] = code(e.Code)
}

// addHandle stores c and returns its handle in stack.
func (i *Instance) addHandle(stack []uint64, c *outbound.Call) {
	o := &i.outCalls
	for {
		o.next++
		if o.next <= 0 {
			o.next = 1
		}
		if _, used := o.handles[o.next]; !used {
			break
		}
	}
	o.handles[o.next] = c
	stack[0] = uint64(uint32(o.next))
}

func httpSend(ctx context.Context, mod api.Module, stack []uint64) {
	rec := view(mod, abi.ImportHTTPSend, uint32(stack[0]), uint32(stack[1]))
	inst, set := outSet(ctx, abi.ImportHTTPSend, stack)
	if set == nil {
		return
	}
	c, err := set.HTTP(&inst.outCalls.req, rec)
	if err != nil {
		inst.outFail(stack, err)
		return
	}
	inst.addHandle(stack, c)
}

func thriftSend(ctx context.Context, mod api.Module, stack []uint64) {
	name := view(mod, abi.ImportThriftSend, uint32(stack[0]), uint32(stack[1]))
	msg := view(mod, abi.ImportThriftSend, uint32(stack[2]), uint32(stack[3]))
	inst, set := outSet(ctx, abi.ImportThriftSend, stack)
	if set == nil {
		return
	}
	c, err := set.Thrift(&inst.outCalls.req, string(name), msg)
	if err != nil {
		inst.outFail(stack, err)
		return
	}
	inst.addHandle(stack, c)
}

func (i *Instance) handleOf(stack []uint64, fn string, h int32) *outbound.Call {
	c := i.outCalls.handles[h]
	if c == nil {
		i.outFail(stack, &outbound.Error{Code: abi.ErrNotFound, Msg: fmt.Sprintf("%s: no open outbound call with handle %d", fn, h)})
	}
	return c
}

// outboundWait blocks on the network, not in guest code: the time counts
// against the call's deadline (and so the request's), not as guest CPU.
func outboundWait(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	h, timeout := int32(stack[0]), int32(stack[1])
	c := inst.handleOf(stack, abi.ImportOutboundWait, h)
	if c == nil {
		return
	}
	switch {
	case timeout < 0:
		<-c.Done() // bounded by the call's own deadline
	case timeout == 0:
		select {
		case <-c.Done():
		default:
			stack[0] = code(abi.ErrPending)
			return
		}
	default:
		t := time.NewTimer(time.Duration(timeout) * time.Millisecond)
		select {
		case <-c.Done():
			t.Stop()
		case <-t.C:
			stack[0] = code(abi.ErrPending)
			return
		}
	}
	reply, err := c.Result()
	if err != nil {
		delete(inst.outCalls.handles, h)
		inst.outFail(stack, err)
		return
	}
	stack[0] = uint64(uint32(len(reply)))
}

func outboundRead(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	h, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	dst := view(mod, abi.ImportOutboundRead, ptr, n)
	c := inst.handleOf(stack, abi.ImportOutboundRead, h)
	if c == nil {
		return
	}
	select {
	case <-c.Done():
	default:
		stack[0] = code(abi.ErrPending)
		return
	}
	reply, err := c.Result()
	if err != nil {
		delete(inst.outCalls.handles, h)
		inst.outFail(stack, err)
		return
	}
	if len(reply) <= len(dst) {
		copy(dst, reply)
		delete(inst.outCalls.handles, h)
	}
	stack[0] = uint64(uint32(len(reply)))
}

func outboundClose(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	h := int32(stack[0])
	c := inst.handleOf(stack, abi.ImportOutboundClose, h)
	if c == nil {
		return
	}
	c.Cancel()
	delete(inst.outCalls.handles, h)
	stack[0] = 0
}

func outboundError(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	stack[0] = copyIfFits(mod, abi.ImportOutboundError, uint32(stack[0]), uint32(stack[1]), []byte(inst.outCalls.lastErr))
}

// closeOutbound releases the module's outbound clients.
func (m *Module) closeOutbound() {
	if m.opts.Outbound != nil {
		m.opts.Outbound.Close()
	}
}

package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/kv"
)

// kvState is an instance's key-value state.
type kvState struct {
	deadline time.Time // of the request being handled; zero: none
	err      string    // message of the last failed kv call
	// A kv_get value that did not fit the guest's buffer, returned by the
	// next kv_get of the same store and key.
	pendStore, pendKey string
	pendVal            []byte
	pending            bool
}

// begin starts a request with the given timeout (0: none).
func (s *kvState) begin(timeout time.Duration) {
	s.deadline = time.Time{}
	if timeout > 0 {
		s.deadline = time.Now().Add(timeout)
	}
	s.drop()
}

func (s *kvState) drop() {
	s.pending, s.pendStore, s.pendKey, s.pendVal = false, "", "", nil
}

// kvCall is one kv import call in progress.
type kvCall struct {
	inst  *Instance
	mod   api.Module
	fn    string
	store *kv.Handle
	key   string
}

// startKV reads the store name and key of a kv import, clears the last
// error, and resolves the store. It returns ok false, with the error code
// in stack[0], when the store does not exist.
func startKV(ctx context.Context, mod api.Module, fn string, stack []uint64) (kvCall, bool) {
	inst := instanceOf(ctx)
	name := string(view(mod, fn, uint32(stack[0]), uint32(stack[1])))
	c := kvCall{inst: inst, mod: mod, fn: fn, key: string(view(mod, fn, uint32(stack[2]), uint32(stack[3])))}
	inst.kv.err = ""
	h, ok := inst.mod.opts.KV.Store(name)
	if !ok {
		inst.kv.err = fmt.Sprintf("kv: no store %q: the app section configures none (add kv.%s.backend)", name, name)
		stack[0] = code(abi.ErrKVNoStore)
		return c, false
	}
	c.store = h
	return c, true
}

// ctx returns the context of a store operation: the request's deadline,
// when it has one.
func (c kvCall) ctx() (context.Context, context.CancelFunc) {
	if d := c.inst.kv.deadline; !d.IsZero() {
		return context.WithDeadline(c.inst.ctx, d)
	}
	return c.inst.ctx, func() {}
}

// fail records err as the last error and returns its code.
func (c kvCall) fail(err error) uint64 {
	c.inst.kv.err = err.Error()
	var e *kv.Error
	if !errors.As(err, &e) {
		return code(abi.ErrKVUnavailable)
	}
	switch e.Kind {
	case kv.NoStore:
		return code(abi.ErrKVNoStore)
	case kv.TooLarge:
		return code(abi.ErrKVTooLarge)
	case kv.Timeout:
		return code(abi.ErrKVTimeout)
	case kv.Invalid:
		return code(abi.ErrInvalid)
	}
	return code(abi.ErrKVUnavailable)
}

func ttlOf(ms uint64) time.Duration {
	v := int64(ms)
	if v < 0 {
		return -1 // refused by the store as a negative TTL
	}
	return time.Duration(min(v, int64(1<<63-1)/int64(time.Millisecond))) * time.Millisecond
}

func kvGet(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVGet, stack)
	buf := view(mod, abi.ImportKVGet, uint32(stack[4]), uint32(stack[5]))
	if !ok {
		return
	}
	st := &c.inst.kv
	var v []byte
	if st.pending && st.pendStore == c.store.Name() && st.pendKey == c.key {
		v = st.pendVal
	} else {
		st.drop()
		cctx, cancel := c.ctx()
		var found bool
		var err error
		v, found, err = c.store.Get(cctx, c.key)
		cancel()
		if err != nil {
			stack[0] = c.fail(err)
			return
		}
		if !found {
			stack[0] = code(abi.ErrNotFound)
			return
		}
	}
	if len(v) > len(buf) {
		st.pending, st.pendStore, st.pendKey, st.pendVal = true, c.store.Name(), c.key, v
	} else {
		copy(buf, v)
		st.drop()
	}
	stack[0] = uint64(uint32(len(v)))
}

func kvSet(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVSet, stack)
	val := view(mod, abi.ImportKVSet, uint32(stack[4]), uint32(stack[5]))
	if !ok {
		return
	}
	c.inst.kv.drop()
	cctx, cancel := c.ctx()
	defer cancel()
	if err := c.store.Set(cctx, c.key, val, ttlOf(stack[6])); err != nil {
		stack[0] = c.fail(err)
		return
	}
	stack[0] = 0
}

func kvDelete(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVDelete, stack)
	if !ok {
		return
	}
	c.inst.kv.drop()
	cctx, cancel := c.ctx()
	defer cancel()
	found, err := c.store.Delete(cctx, c.key)
	stack[0] = c.boolResult(found, err)
}

func kvExists(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVExists, stack)
	if !ok {
		return
	}
	c.inst.kv.drop()
	cctx, cancel := c.ctx()
	defer cancel()
	found, err := c.store.Exists(cctx, c.key)
	stack[0] = c.boolResult(found, err)
}

func (c kvCall) boolResult(b bool, err error) uint64 {
	switch {
	case err != nil:
		return c.fail(err)
	case b:
		return 1
	}
	return 0
}

func kvIncr(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVIncr, stack)
	out := view(mod, abi.ImportKVIncr, uint32(stack[5]), 8)
	if !ok {
		return
	}
	c.inst.kv.drop()
	cctx, cancel := c.ctx()
	defer cancel()
	n, err := c.store.Incr(cctx, c.key, int64(stack[4]))
	if err != nil {
		stack[0] = c.fail(err)
		return
	}
	binary.LittleEndian.PutUint64(out, uint64(n))
	stack[0] = 0
}

func kvCAS(ctx context.Context, mod api.Module, stack []uint64) {
	c, ok := startKV(ctx, mod, abi.ImportKVCAS, stack)
	value := func(ptr, n uint64) kv.Value {
		if uint32(n) == abi.KVAbsent {
			return kv.Value{Absent: true}
		}
		return kv.Value{Data: view(mod, abi.ImportKVCAS, uint32(ptr), uint32(n))}
	}
	old, new := value(stack[4], stack[5]), value(stack[6], stack[7])
	if !ok {
		return
	}
	c.inst.kv.drop()
	cctx, cancel := c.ctx()
	defer cancel()
	swapped, err := c.store.CAS(cctx, c.key, old, new, ttlOf(stack[8]))
	stack[0] = c.boolResult(swapped, err)
}

func kvError(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	stack[0] = copyIfFits(mod, abi.ImportKVError, uint32(stack[0]), uint32(stack[1]), []byte(inst.kv.err))
}

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"unicode/utf16"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/abi"
)

// boundsError is the panic value of a host function given a guest range
// outside memory; wazero turns it into an error from the guest call.
type boundsError struct {
	fn       string
	ptr, len uint32
	size     uint32
}

func (e *boundsError) Error() string {
	return fmt.Sprintf("host function %s: guest range [%#x, +%d) outside memory of %d bytes", e.fn, e.ptr, e.len, e.size)
}

func view(mod api.Module, fn string, ptr, n uint32) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(&boundsError{fn: fn, ptr: ptr, len: n, size: mod.Memory().Size()})
	}
	return b
}

type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              api.GoModuleFunc
}

var hostFuncs = []hostFunc{
	{abi.ImportRequestRead, []api.ValueType{i32, i32}, []api.ValueType{i32}, requestRead},
	{abi.ImportConfigGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, configGet},
	{abi.ImportConfigList, []api.ValueType{i32, i32}, []api.ValueType{i32}, configList},
	{abi.ImportLog, []api.ValueType{i32, i32, i32}, nil, guestLog},
	{abi.ImportShuttingDown, nil, []api.ValueType{i32}, shuttingDown},
	{abi.ImportMetric, []api.ValueType{i32, i32, i32, f64}, []api.ValueType{i32}, metric},
	{abi.ImportGeneration, nil, []api.ValueType{i64}, generation},
	{abi.ImportKVGet, []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, kvGet},
	{abi.ImportKVSet, []api.ValueType{i32, i32, i32, i32, i32, i32, i64}, []api.ValueType{i32}, kvSet},
	{abi.ImportKVDelete, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, kvDelete},
	{abi.ImportKVExists, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, kvExists},
	{abi.ImportKVIncr, []api.ValueType{i32, i32, i32, i32, i64, i32}, []api.ValueType{i32}, kvIncr},
	{abi.ImportKVCAS, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i64}, []api.ValueType{i32}, kvCAS},
	{abi.ImportKVError, []api.ValueType{i32, i32}, []api.ValueType{i32}, kvError},
}

type instKey struct{}

func instanceOf(ctx context.Context) *Instance {
	inst, _ := ctx.Value(instKey{}).(*Instance)
	return inst
}

func requestRead(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	inst := instanceOf(ctx)
	var rec []byte
	if inst != nil {
		rec = inst.record
	}
	// The whole range the guest names is checked, not only the part the
	// record fills: a buffer running past memory traps even when the
	// record is short.
	dst := view(mod, abi.ImportRequestRead, ptr, n)
	copy(dst, rec)
	stack[0] = uint64(uint32(len(rec)))
}

// copyIfFits writes data to [ptr, ptr+n) when it fits and returns its length.
func copyIfFits(mod api.Module, fn string, ptr, n uint32, data []byte) uint64 {
	dst := view(mod, fn, ptr, n)
	if len(data) <= len(dst) {
		copy(dst, data)
	}
	return uint64(uint32(len(data)))
}

func configGet(ctx context.Context, mod api.Module, stack []uint64) {
	key := view(mod, abi.ImportConfigGet, uint32(stack[0]), uint32(stack[1]))
	ptr, n := uint32(stack[2]), uint32(stack[3])
	inst := instanceOf(ctx)
	v, ok := inst.mod.configM[string(key)]
	if !ok {
		view(mod, abi.ImportConfigGet, ptr, n)
		stack[0] = code(abi.ErrNotFound)
		return
	}
	stack[0] = copyIfFits(mod, abi.ImportConfigGet, ptr, n, []byte(v))
}

func configList(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	stack[0] = copyIfFits(mod, abi.ImportConfigList, uint32(stack[0]), uint32(stack[1]), inst.mod.config)
}

func levelOf(l int32) slog.Level {
	switch {
	case l < -2:
		return slog.LevelDebug
	case l < 2:
		return slog.LevelInfo
	case l < 6:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func guestLog(ctx context.Context, mod api.Module, stack []uint64) {
	msg := view(mod, abi.ImportLog, uint32(stack[1]), uint32(stack[2]))
	inst := instanceOf(ctx)
	inst.guestRecord(ctx, levelOf(int32(stack[0])), msg)
}

func shuttingDown(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceOf(ctx)
	stack[0] = 0
	if f := inst.mod.opts.ShuttingDown; f != nil && f() {
		stack[0] = 1
	}
}

func metric(ctx context.Context, mod api.Module, stack []uint64) {
	kind := int32(stack[0])
	name := view(mod, abi.ImportMetric, uint32(stack[1]), uint32(stack[2]))
	v := math.Float64frombits(stack[3])
	inst := instanceOf(ctx)
	c := abi.ErrLimit
	if f := inst.mod.opts.Metric; f != nil {
		c = f(kind, string(name), v)
	}
	stack[0] = code(c)
}

func generation(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(instanceOf(ctx).mod.opts.Generation)
}

// envAbort is AssemblyScript's abort(message, fileName, line, column): it
// logs the message and traps the call.
func envAbort(ctx context.Context, mod api.Module, stack []uint64) {
	msg := asString(mod, uint32(stack[0]))
	file := asString(mod, uint32(stack[1]))
	err := fmt.Errorf("abort: %s at %s:%d:%d", msg, file, uint32(stack[2]), uint32(stack[3]))
	if inst := instanceOf(ctx); inst != nil {
		inst.noteFault(err.Error())
		inst.logger().Error("guest aborted", "message", msg, "file", file, "line", uint32(stack[2]), "column", uint32(stack[3]))
	}
	panic(err)
}

// asString decodes an AssemblyScript string: UTF-16LE, its byte length in
// the four bytes before ptr. A zero or out-of-range pointer yields "".
func asString(mod api.Module, ptr uint32) string {
	if ptr < 4 {
		return ""
	}
	n, ok := mod.Memory().ReadUint32Le(ptr - 4)
	if !ok || n > 1<<16 {
		return ""
	}
	b, ok := mod.Memory().Read(ptr, n&^1)
	if !ok {
		return ""
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// code encodes an abi error code as an i32 result.
func code(c int32) uint64 { return uint64(uint32(c)) }

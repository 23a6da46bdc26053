package thriftfront

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// okModule answers "ok" to every call.
const okModule = `(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00ok")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0x4000000000A))`

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLargeMessageBuffersDropped: after one 4 MiB call on each of 20
// connections that then stay open and idle, the live heap has not kept a
// message-sized buffer per connection. It measures the process heap, so it
// does not run in parallel with other tests.
func TestLargeMessageBuffersDropped(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mod, err := engine.Load(ctx, engine.Options{Path: "ok.wasm", Binary: testguest.WAT(t, okModule), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, mod, pool.Options{Workers: 2, MaxConcurrency: 100, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	s := New(Options{Handler: p, MaxFrameSize: 64 << 20, MaxMessageSize: 64 << 20, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()

	buf := thrift.NewTMemoryBuffer()
	tr := thrift.NewTFramedTransportConf(buf, &thrift.TConfiguration{MaxFrameSize: 64 << 20})
	bp := thrift.NewTBinaryProtocolConf(tr, nil)
	bp.WriteMessageBegin(ctx, "echo", thrift.CALL, 1)
	bp.WriteStructBegin(ctx, "args")
	bp.WriteFieldBegin(ctx, "message", thrift.STRING, 1)
	bp.WriteString(ctx, strings.Repeat("x", 4<<20))
	bp.WriteFieldEnd(ctx)
	bp.WriteFieldStop(ctx)
	bp.WriteStructEnd(ctx)
	bp.WriteMessageEnd(ctx)
	bp.Flush(ctx)
	call := buf.Bytes()

	before := heapInUse()
	const conns = 20
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Write(call); err != nil {
			t.Fatal(err)
		}
		// The reply ("ok" in a frame) says the call was read and served.
		if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	call = nil
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("live heap %d MiB before, %d MiB after %d idle connections that each carried a 4 MiB call", before>>20, after>>20, conns)
	if grown > conns*(4<<20)/4 {
		t.Fatalf("live heap grew by %d MiB: connections keep their message buffers", grown>>20)
	}
}

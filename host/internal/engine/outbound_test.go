package engine_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

const outboundImports = `
  (import "wasmserve" "http_send" (func $send (param i32 i32) (result i32)))
  (import "wasmserve" "outbound_wait" (func $wait (param i32 i32) (result i32)))
  (import "wasmserve" "outbound_read" (func $read (param i32 i32 i32) (result i32)))
  (import "wasmserve" "outbound_close" (func $close (param i32) (result i32)))
  (import "wasmserve" "outbound_error" (func $error (param i32 i32) (result i32)))`

// watString is s as a WAT data string.
func watString(b []byte) string {
	var out strings.Builder
	for _, c := range b {
		fmt.Fprintf(&out, "\\%02x", c)
	}
	return out.String()
}

// outboundGuest sends GET url from its handle export. With fetch it waits
// and answers with the reply (a response record, which it returns as its
// own); without, it answers with the import results as a body of i32s and
// the last error message: http_send, outbound_wait and outbound_close of
// an unknown handle, outbound_error's length, then http_send called from
// wasmserve_init.
func outboundGuest(t *testing.T, url string, fetch bool) []byte {
	rec := abi.AppendOutboundRequest(nil, "GET", url, nil, nil)
	handle := `
    (i32.store (i32.const 0x408) (call $send (i32.const 0x100) (i32.const %d)))
    (i32.store (i32.const 0x40c) (call $wait (i32.const 7) (i32.const -1)))
    (i32.store (i32.const 0x410) (call $close (i32.const 7)))
    (i32.store (i32.const 0x414) (local.tee $m (call $error (i32.const 0x420) (i32.const 512))))
    (i32.store (i32.const 0x400) (i32.const 200))
    (i64.or (i64.const 0x40000000000) (i64.extend_i32_u (i32.add (i32.const 0x20) (local.get $m))))`
	if fetch {
		handle = `
    (local.set $h (call $send (i32.const 0x100) (i32.const %d)))
    (local.set $m (call $wait (local.get $h) (i32.const -1)))
    (if (i32.lt_s (local.get $m) (i32.const 0)) (then unreachable))
    (drop (call $read (local.get $h) (i32.const 0x1000) (local.get $m)))
    (i64.or (i64.const 0x100000000000) (i64.extend_i32_u (local.get $m)))`
	}
	src := fmt.Sprintf(`(module %s
  (memory (export "memory") 2)
  (data (i32.const 0x100) "%s")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_init") (result i32)
    (i32.store (i32.const 0x41c) (call $send (i32.const 0x100) (i32.const %d)))
    i32.const 0)
  (func (export "wasmserve_handle") (param $n i32) (result i64) (local $h i32) (local $m i32)
    %s))`, outboundImports, watString(rec), len(rec), fmt.Sprintf(handle, len(rec)))
	return testguest.WAT(t, src)
}

func outboundOnce(t *testing.T, m *engine.Module) abi.Response {
	t.Helper()
	inst, err := m.NewInstance(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOutboundImportErrors(t *testing.T) {
	t.Parallel()
	reg, err := outbound.NewRegistry(outbound.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bin := outboundGuest(t, "http://127.0.0.2:9/x", false)
	for _, c := range []struct {
		name string
		set  *outbound.Set
		send int32
		init int32 // http_send from wasmserve_init
	}{
		{"deny by default", reg.Set(outbound.Config{}), abi.ErrDenied, abi.ErrInvalid},
		{"no clients", nil, abi.ErrDenied, abi.ErrDenied},
	} {
		m, err := load(t, bin, func(o *engine.Options) { o.Outbound = c.set })
		if err != nil {
			t.Fatal(err)
		}
		body := outboundOnce(t, m).Body
		got := make([]int32, 6)
		for i := range got {
			got[i] = int32(binary.LittleEndian.Uint32(body[4*i:]))
		}
		msg := string(body[0x18:])
		want := []int32{c.send, abi.ErrNotFound, abi.ErrNotFound, int32(len(msg)), 0, c.init}
		for i, w := range want {
			if got[i] != w {
				t.Errorf("%s: results %v, want %v", c.name, got, want)
				break
			}
		}
		if !strings.Contains(msg, "no open outbound call with handle 7") {
			t.Errorf("%s: outbound_error = %q", c.name, msg)
		}
	}
}

func TestOutboundImportFetch(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "from upstream "+r.Header.Get("X-Trace"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String()
	reg, err := outbound.NewRegistry(outbound.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inst := instance(t, outboundGuest(t, url+"/", true), 1, func(o *engine.Options) {
		o.Outbound = reg.Set(outbound.Config{HTTP: outbound.HTTPConfig{Allow: []string{url}}})
	})
	headers := abi.AppendField(nil, "X-Trace", "77")
	resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/", Headers: headers}})
	if err != nil {
		t.Fatal(err)
	}
	upstream := ""
	_ = resp.Headers.Range(func(k, v []byte) bool {
		if string(k) == "X-Upstream" {
			upstream = string(v)
		}
		return true
	})
	if resp.Status != 200 || string(resp.Body) != "from upstream 77" || upstream != "yes" {
		t.Errorf("reply %d %q (X-Upstream %q)", resp.Status, resp.Body, upstream)
	}
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// watGuest builds a module whose handle export runs body and whose memory
// holds a 200 "hello" response record at 1024.
func watGuest(imports, exports, handle string) string {
	return fmt.Sprintf(`(module
  (import "wasmserve" "request_read" (func $read (param i32 i32) (result i32)))
  %s
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00hello")
  %s
  (func (export "wasmserve_handle") (param $n i32) (result i64)
    %s)
)`, imports, exports, handle)
}

const (
	versionOK = `(func (export "wasmserve_abi_version") (result i32) i32.const 1)`
	hello     = `i64.const 0x4000000000D` // 1024<<32 | 13
)

func load(t *testing.T, bin []byte, mod func(*engine.Options)) (*engine.Module, error) {
	t.Helper()
	opts := engine.Options{Path: t.Name() + ".wasm", Binary: bin, CacheDir: testguest.CacheDir(), MaxMemory: 4 << 20}
	if mod != nil {
		mod(&opts)
	}
	m, err := engine.Load(context.Background(), opts)
	if m != nil {
		t.Cleanup(func() { m.Close(context.Background()) })
	}
	return m, err
}

// instance loads bin (see load) and returns its instance id, closed when
// the test ends.
func instance(t *testing.T, bin []byte, id int, mod func(*engine.Options)) *engine.Instance {
	t.Helper()
	m, err := load(t, bin, mod)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.NewInstance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func TestLoadRefusesMismatchedModules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, wat string
		bin       []byte
		want      string
	}{
		{name: "not wasm", bin: []byte("#!/bin/sh\necho hi\n"), want: "not a WebAssembly module"},
		{name: "truncated", bin: []byte("\x00asm\x01\x00\x00\x00\x01\x05"), want: "compile"},
		{name: "no handle", wat: `(module (memory (export "memory") 1)` + versionOK + `)`,
			want: `missing required export "wasmserve_handle" (i32) -> (i64)`},
		{name: "no version", wat: `(module (memory (export "memory") 1) (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0))`,
			want: `missing required export "wasmserve_abi_version"`},
		{name: "no memory", wat: `(module ` + versionOK + ` (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0))`,
			want: `missing required export "memory"`},
		{name: "handle signature", wat: `(module (memory (export "memory") 1)` + versionOK + ` (func (export "wasmserve_handle") (param i32) (result i32) i32.const 0))`,
			want: `export "wasmserve_handle" has signature (i32) -> (i32), want (i32) -> (i64)`},
		{name: "unknown host import", wat: watGuest(`(import "wasmserve" "teleport" (func (param i32)))`, versionOK, hello),
			want: "imports wasmserve.teleport, which ABI v1 does not define"},
		{name: "host import signature", wat: watGuest(`(import "wasmserve" "log" (func (param i32)))`, versionOK, hello),
			want: "import wasmserve.log has signature (i32) -> (), want (i32, i32, i32) -> ()"},
		{name: "foreign import", wat: watGuest(`(import "env" "socket" (func (param i32) (result i32)))`, versionOK, hello),
			want: "imports env.socket (i32) -> (i32), which the host does not provide"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin := c.bin
			if c.wat != "" {
				bin = testguest.WAT(t, c.wat)
			}
			_, err := load(t, bin, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, c.want)
			}
			if !strings.Contains(err.Error(), t.Name()+".wasm") {
				t.Errorf("error %q does not name the module file", err)
			}
		})
	}
}

func TestNewInstanceChecks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, exports, want string
		is                  error
	}{
		{name: "abi version", exports: `(func (export "wasmserve_abi_version") (result i32) i32.const 2)`,
			want: "guest declares ABI version 2, host implements version 1", is: engine.ErrABIVersion},
		{name: "init fails", exports: versionOK + `(func (export "wasmserve_init") (result i32) i32.const 7)`,
			want: "wasmserve_init returned 7"},
		{name: "init traps", exports: versionOK + `(func (export "wasmserve_init") (result i32) unreachable)`,
			want: "call wasmserve_init"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := load(t, testguest.WAT(t, watGuest("", c.exports, hello)), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.NewInstance(context.Background(), 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewInstance error = %v, want %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

func TestHandleFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, handle string
		kind         engine.FaultKind
		want         string
	}{
		{name: "out of bounds request_read", kind: engine.Trap, want: "outside memory",
			handle: `(drop (call $read (i32.const 0xfffffff0) (i32.const 100))) ` + hello},
		{name: "unreachable", kind: engine.Trap, want: "unreachable", handle: `unreachable`},
		{name: "spin", kind: engine.Timeout, want: "request_timeout of 200ms exceeded", handle: `(loop $l (br $l)) ` + hello},
		{name: "grow", kind: engine.MemoryLimit, want: "unreachable",
			handle: `(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable`},
		{name: "response outside memory", kind: engine.BadResponse, want: "outside memory", handle: `i64.const 0x00FFFFFF00000010`},
		{name: "malformed response", kind: engine.BadResponse, want: "headers length",
			handle: `(i32.store (i32.const 2048) (i32.const 200)) (i32.store (i32.const 2052) (i32.const 99)) i64.const 0x80000000008`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inst := instance(t, testguest.WAT(t, watGuest("", versionOK, c.handle)), 3, nil)
			timeout := 30 * time.Second // generous: only the spin case should reach it
			if c.kind == engine.Timeout {
				timeout = 200 * time.Millisecond
			}
			_, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}, Timeout: timeout})
			var f *engine.Fault
			if !errors.As(err, &f) {
				t.Fatalf("Handle error = %v, want a *engine.Fault", err)
			}
			if f.Kind != c.kind || f.Worker != 3 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("fault = %v (kind %v, worker %d), want kind %v mentioning %q", err, f.Kind, f.Worker, c.kind, c.want)
			}
		})
	}
}

func TestHandleHelloGo(t *testing.T) {
	t.Parallel()
	path := testguest.Module(t, "hello-go", "hello.wasm")
	inst := instance(t, nil, 1, func(o *engine.Options) {
		o.Path = path
		o.MaxMemory = 64 << 20
		o.Config = []engine.ConfigEntry{{Key: "greeting", Value: "hi from the test"}, {Key: "noodles.blah", Value: "one, two"}}
	})
	for _, c := range []struct{ path, want string }{
		{"/", "hi from the test"},
		{"/config/noodles.blah", "one, two"},
		{"/counter", "1"},
		{"/counter", "2"},
		{"/generation", "1"},
	} {
		resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: c.path}})
		if err != nil {
			t.Fatalf("GET %s: %v", c.path, err)
		}
		if resp.Status != 200 || string(resp.Body) != c.want {
			t.Errorf("GET %s = %d %q, want 200 %q", c.path, resp.Status, resp.Body, c.want)
		}
	}
}

package pool_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// TestDeadlineBudgetBoundsOutbound: a Thrift caller's Deadline-Budget
// bounds the guest's outbound calls even with request_timeout off, where
// it cannot stop the guest itself.
func TestDeadlineBudgetBoundsOutbound(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"
	rec := abi.AppendOutboundRequest(nil, "GET", url, nil, nil)
	var data strings.Builder
	for _, c := range rec {
		fmt.Fprintf(&data, "\\%02x", c)
	}
	// The guest answers with the result of outbound_wait on a GET of a
	// server that never answers.
	guest := fmt.Sprintf(`(module
  (import "wasmserve" "http_send" (func $send (param i32 i32) (result i32)))
  (import "wasmserve" "outbound_wait" (func $wait (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "%s")
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param $n i32) (result i64)
    (i32.store (i32.const 1032) (call $wait (call $send (i32.const 256) (i32.const %d)) (i32.const -1)))
    i64.const 0x4000000000C))`, data.String(), len(rec))
	reg, err := outbound.NewRegistry(outbound.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{Path: "budget.wasm", Binary: testguest.WAT(t, guest), CacheDir: testguest.CacheDir(),
		Outbound: reg.Set(outbound.Config{HTTP: outbound.HTTPConfig{Allow: []string{"http://" + ln.Addr().String()}, Timeout: time.Hour}})})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, m, pool.Options{Workers: 1, MaxConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	resp, err := p.Handle(pool.WithTimeout(ctx, 200*time.Millisecond), get("/"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Release()
	if got := int32(binary.LittleEndian.Uint32(resp.Body)); got != abi.ErrTimeout {
		t.Errorf("outbound_wait = %d, want %d (timeout)", got, abi.ErrTimeout)
	}
}

package engine_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"syscall"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// BenchmarkIsolation measures one GET / per example guest in each
// isolation mode, without the network: "worker" reuses the instance,
// "reset" restores its snapshot after each request, "fresh" instantiates
// one per request. cpu-ns/op is the thread's CPU time (steadier than wall
// time on a shared machine), copied-B/op the memory Reset wrote back when
// it compares blocks, faults/op the page faults of the thread (with pages
// dropped at Reset: about the pages the request wrote, each copied back
// by the kernel).
//
//	go test -run '^$' -bench Isolation -benchtime 2000x ./host/internal/engine/
func BenchmarkIsolation(b *testing.B) {
	ctx := context.Background()
	for _, g := range []struct{ name, example, module string }{
		{"wat", "hello-wat", "hello.wasm"}, {"c", "hello-c", "hello.wasm"}, {"rust", "hello-rust", "hello.wasm"},
		{"as", "hello-as", "hello.wasm"}, {"go", "hello-go", "hello.wasm"},
	} {
		m, err := engine.Load(ctx, engine.Options{Path: testguest.Module(b, g.example, g.module), CacheDir: testguest.CacheDir(),
			MaxMemory: 64 << 20, Snapshot: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Config: []engine.ConfigEntry{{Key: "greeting", Value: "hello, world"}}})
		if err != nil {
			b.Fatal(err)
		}
		req := &engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}}
		for _, mode := range []string{"worker", "reset", "fresh"} {
			b.Run(g.name+"/"+mode, func(b *testing.B) {
				inst, err := m.NewInstance(ctx, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { inst.Close(ctx) }()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				copied := 0
				b.ResetTimer()
				start, faults := threadCPU(), threadFaults()
				for range b.N {
					if _, err := inst.Handle(req); err != nil {
						b.Fatal(err)
					}
					switch mode {
					case "reset":
						if err := inst.Reset(); err != nil {
							b.Fatal(err)
						}
						copied += inst.ResetBytes()
					case "fresh":
						inst.Close(ctx)
						if inst, err = m.NewInstance(ctx, 1); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(copied)/float64(b.N), "copied-B/op")
				b.ReportMetric(float64(threadFaults()-faults)/float64(b.N), "faults/op")
				b.ReportMetric(float64(inst.MemoryBytes()), "memory-B")
			})
		}
		m.Close(ctx)
	}
}

func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func threadFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return ru.Minflt + ru.Majflt
}

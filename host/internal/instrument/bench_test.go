package instrument_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/host/internal/instrument"
)

// benchWAT holds the workloads of BenchmarkCost: a tight counting loop (the
// worst case: one add, compare and branch per iteration) and a recursive
// Fibonacci (the worst case for entry checks: a call per few
// instructions).
const benchWAT = `(module
  (func (export "count") (param $n i64) (result i64)
    (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))`

func wat2wasm(tb testing.TB, src string) []byte {
	tb.Helper()
	dir := tb.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := writeFile(in, src); err != nil {
		tb.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", "-o", out, in).CombinedOutput(); err != nil {
		tb.Fatalf("wat2wasm: %v: %s", err, b)
	}
	return readFile(tb, out)
}

// BenchmarkCost compares each workload compiled as is and instrumented:
//
//	go test -run '^$' -bench Cost -benchtime 5x -count 5 ./host/internal/instrument/
func BenchmarkCost(b *testing.B) {
	bin := wat2wasm(b, benchWAT)
	res, err := instrument.Instrument(bin, instrument.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, work := range []struct {
		fn  string
		arg uint64
	}{{"count", 100_000_000}, {"fib", 30}} {
		for _, v := range []struct {
			name string
			bin  []byte
		}{{"original", bin}, {"instrumented", res.Binary}} {
			b.Run(work.fn+"/"+v.name, func(b *testing.B) {
				rt := wazero.NewRuntime(ctx)
				defer rt.Close(ctx)
				_, err := rt.NewHostModuleBuilder(instrument.ImportModule).NewFunctionBuilder().
					WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) { s[0] = instrument.DefaultBudget }), nil, []api.ValueType{api.ValueTypeI32}).
					Export(instrument.ImportName).Instantiate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				m, err := rt.Instantiate(ctx, v.bin)
				if err != nil {
					b.Fatal(err)
				}
				fn := m.ExportedFunction(work.fn)
				// Thread CPU time as well as wall time: on a shared machine
				// it is the steadier figure.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ResetTimer()
				start := threadCPU()
				for range b.N {
					if _, err := fn.Call(ctx, work.arg); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

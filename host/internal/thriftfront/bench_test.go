package thriftfront_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

// nativeHandler is the thrift-go example's echo, natively.
type nativeHandler struct{}

func (nativeHandler) IsHealthy(context.Context, *baseplate.IsHealthyRequest) (bool, error) {
	return true, nil
}
func (nativeHandler) Echo(_ context.Context, m string) (string, error) { return m, nil }
func (nativeHandler) Fail(context.Context, string) (string, error)     { return "", nil }
func (nativeHandler) Pause(context.Context, int32) (string, error)     { return "paused", nil }
func (nativeHandler) Remember(context.Context, string) error           { return nil }
func (nativeHandler) Recall(context.Context) (string, error)           { return "", nil }
func (nativeHandler) Trap(context.Context) (string, error)             { return "", nil }
func (nativeHandler) Spin(context.Context) (string, error)             { return "", nil }
func (nativeHandler) Lookup(context.Context, string, string) (string, error) {
	return "", nil
}

// serveNative serves the generated Example processor with a native
// TSimpleServer on 127.0.0.1, framed binary, and returns its address.
func serveNative(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sock := thrift.NewTServerSocketFromFactoryTimeout(func(net.Addr) (net.Listener, error) { return ln, nil }, ln.Addr(), 0)
	if err := sock.Listen(); err != nil {
		b.Fatal(err)
	}
	cfg := &thrift.TConfiguration{}
	srv := thrift.NewTSimpleServer4(example.NewExampleProcessor(nativeHandler{}), sock,
		thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), cfg), thrift.NewTBinaryProtocolFactoryConf(cfg))
	thrift.ServerStopTimeout = time.Second
	go srv.Serve()
	b.Cleanup(func() { srv.Stop() })
	return ln.Addr().String()
}

// BenchmarkEcho compares the echo call of the thrift-go example through
// wasmserve with the same generated processor in a native TSimpleServer:
// one framed binary client, calls in sequence on one connection.
// BENCH_INI adds server-section lines to wasmserve's configuration, e.g.
// BENCH_INI='request_timeout = 0' to measure without per-call timeouts.
//
//	go test -run '^$' -bench Echo -benchtime 5s ./host/thriftfront
func BenchmarkEcho(b *testing.B) {
	servers := []struct {
		name string
		// addr starts the server; cpu reports the CPU time it has used
		// so far (the whole test process for the native server, client
		// included).
		addr func(b *testing.B) (string, func() time.Duration)
	}{
		{"wasmserve", func(b *testing.B) (string, func() time.Duration) {
			a, _, cmd := serveCmd(b, "drain_time = 0\n"+os.Getenv("BENCH_INI"))
			return a, func() time.Duration { return procCPU(cmd.Process.Pid) }
		}},
		{"native", func(b *testing.B) (string, func() time.Duration) {
			return serveNative(b), func() time.Duration { return procCPU(os.Getpid()) }
		}},
	}
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			addr, cpu := s.addr(b)
			cfg := &thrift.TConfiguration{ConnectTimeout: 10 * time.Second, SocketTimeout: 30 * time.Second}
			sock := thrift.NewTSocketConf(addr, cfg)
			if err := sock.Open(); err != nil {
				b.Fatal(err)
			}
			tr := thrift.NewTFramedTransportConf(sock, cfg)
			defer tr.Close()
			p := thrift.NewTBinaryProtocolConf(tr, cfg)
			c := example.NewExampleClient(thrift.NewTStandardClient(p, p))
			ctx := context.Background()
			cpu0 := cpu()
			b.ResetTimer()
			for b.Loop() {
				if got, err := c.Echo(ctx, "hello"); err != nil || got != "hello" {
					b.Fatalf("echo = %q, %v", got, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			b.ReportMetric(float64((cpu()-cpu0).Microseconds())/float64(b.N), "server-cpu-µs/call")
		})
	}
}

// procCPU returns the user and system CPU time process pid has used, from
// /proc/PID/stat (in clock ticks of 10 ms), or 0 when unreadable.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

package main_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

func healthcheck(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(testguest.Binary(t), append([]string{"healthcheck"}, args...)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestHealthcheckHTTP(t *testing.T) {
	t.Parallel()
	admin := filepath.Join(t.TempDir(), "admin.sock")
	start(t, writeINI(t, "workers = 2\nadmin.bind = unix:"+admin+"\n", ""))
	for _, probe := range []string{"readiness", "liveness", "startup"} {
		if out, code := healthcheck(t, "http", admin, "--probe", probe); code != 0 || strings.TrimSpace(out) != "OK!" {
			t.Errorf("%s: exit %d, %q", probe, code, out)
		}
	}
	if out, code := healthcheck(t, "http", filepath.Join(t.TempDir(), "nothing.sock")); code == 0 || !strings.Contains(out, "no such file") {
		t.Errorf("unreachable: exit %d, %q", code, out)
	}
	if _, code := healthcheck(t, "smtp", admin); code != 2 {
		t.Errorf("unknown protocol: exit %d, want 2 (usage)", code)
	}
}

// healthProcessor answers BaseplateServiceV2.is_healthy: healthy for every
// probe except the one in unhealthy.
type healthProcessor struct{ unhealthy int32 }

func (healthProcessor) ProcessorMap() map[string]thrift.TProcessorFunction { return nil }

func (healthProcessor) AddToProcessorMap(string, thrift.TProcessorFunction) {}

func (h healthProcessor) Process(ctx context.Context, in, out thrift.TProtocol) (bool, thrift.TException) {
	name, _, seq, err := in.ReadMessageBegin(ctx)
	if err != nil {
		return false, thrift.WrapTException(err)
	}
	var probe int32
	in.ReadStructBegin(ctx)
	for {
		_, ft, id, err := in.ReadFieldBegin(ctx)
		if err != nil || ft == thrift.STOP {
			break
		}
		if id == 1 && ft == thrift.STRUCT {
			in.ReadStructBegin(ctx)
			for {
				_, ft2, id2, err := in.ReadFieldBegin(ctx)
				if err != nil || ft2 == thrift.STOP {
					break
				}
				if id2 == 1 {
					probe, _ = in.ReadI32(ctx)
				} else {
					in.Skip(ctx, ft2)
				}
			}
			in.ReadStructEnd(ctx)
		} else {
			in.Skip(ctx, ft)
		}
	}
	in.ReadMessageEnd(ctx)
	out.WriteMessageBegin(ctx, name, thrift.REPLY, seq)
	out.WriteStructBegin(ctx, "is_healthy_result")
	out.WriteFieldBegin(ctx, "success", thrift.BOOL, 0)
	out.WriteBool(ctx, probe != h.unhealthy)
	out.WriteFieldEnd(ctx)
	out.WriteFieldStop(ctx)
	out.WriteStructEnd(ctx)
	out.WriteMessageEnd(ctx)
	return true, nil
}

func TestHealthcheckThrift(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := thrift.NewTServerSocketFromFactoryTimeout(func(net.Addr) (net.Listener, error) { return ln, nil }, ln.Addr(), 0)
	if err := sock.Listen(); err != nil {
		t.Fatal(err)
	}
	cfg := &thrift.TConfiguration{}
	srv := thrift.NewTSimpleServer4(healthProcessor{unhealthy: 1}, sock,
		thrift.NewTHeaderTransportFactoryConf(nil, cfg), thrift.NewTHeaderProtocolFactoryConf(cfg))
	go srv.Serve()
	t.Cleanup(func() { srv.Stop() })
	addr := ln.Addr().String()
	if out, code := healthcheck(t, "thrift", addr, "--probe", "liveness"); code != 0 || strings.TrimSpace(out) != "OK!" {
		t.Errorf("liveness: exit %d, %q", code, out)
	}
	if out, code := healthcheck(t, "thrift", addr, "--probe", "readiness"); code != 1 || !strings.Contains(out, "is_healthy returned false") {
		t.Errorf("unhealthy readiness: exit %d, %q", code, out)
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	if out, code := healthcheck(t, "thrift", deadAddr); code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("unreachable: exit %d, %q", code, out)
	}
}

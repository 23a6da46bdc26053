package outbound

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

// BenchmarkThriftCall is one is_healthy call through a Set (the host's
// part of a guest's outbound Thrift call) ...
func BenchmarkThriftCall(b *testing.B) {
	addr, _ := startThriftB(b)
	r, _ := NewRegistry(Options{})
	s := r.Set(Config{Thrift: []ThriftConfig{{Name: "b", Endpoint: addr, Timeout: 5 * time.Second, Size: 1, MaxAge: time.Hour, MaxRetries: 1, Protocol: "header"}}})
	defer s.Close()
	msg := messageB(b)
	req := &Request{Ctx: context.Background(), Trace: TraceFrom(1, nil)}
	b.ResetTimer()
	for range b.N {
		c, e := s.Thrift(req, "b", msg)
		if e != nil {
			b.Fatal(e)
		}
		<-c.Done()
		if _, e := c.Result(); e != nil {
			b.Fatal(e)
		}
	}
}

// ... and BenchmarkThriftNative the same call with a native THeader client.
func BenchmarkThriftNative(b *testing.B) {
	addr, _ := startThriftB(b)
	cfg := &thrift.TConfiguration{}
	sock := thrift.NewTSocketConf(addr, cfg)
	if err := sock.Open(); err != nil {
		b.Fatal(err)
	}
	t := thrift.NewTHeaderTransportConf(sock, cfg)
	p := thrift.NewTHeaderProtocolConf(t, cfg)
	c := example.NewExampleClient(thrift.NewTStandardClient(p, p))
	b.ResetTimer()
	for range b.N {
		if _, err := c.IsHealthy(context.Background(), &baseplate.IsHealthyRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}

func startThriftB(b *testing.B) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := &thrift.TConfiguration{}
	srv := thrift.NewTSimpleServer4(example.NewExampleProcessor(thriftHandler{}), &countingListener{ln: ln, n: new(atomic.Int64)},
		thrift.NewTHeaderTransportFactoryConf(nil, cfg), thrift.NewTHeaderProtocolFactoryConf(cfg))
	go srv.Serve()
	b.Cleanup(func() { srv.Stop() })
	return ln.Addr().String(), nil
}

func messageB(b *testing.B) []byte {
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTBinaryProtocolConf(buf, nil)
	ctx := context.Background()
	p.WriteMessageBegin(ctx, "is_healthy", thrift.CALL, 1)
	(&baseplate.BaseplateServiceV2IsHealthyArgs{Request: &baseplate.IsHealthyRequest{}}).Write(ctx, p)
	p.WriteMessageEnd(ctx)
	return buf.Bytes()
}

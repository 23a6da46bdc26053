package thriftfront

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi"
)

// bytesConn is a net.Conn that reads from a fixed buffer.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// FuzzRead feeds arbitrary bytes to the host's framing detection and
// message-header parsing: it must never panic, and every message it accepts
// is a call or oneway whose recorded bytes parse again.
func FuzzRead(f *testing.F) {
	ctx := context.Background()
	for _, proto := range []func(thrift.TTransport) thrift.TProtocol{
		func(t thrift.TTransport) thrift.TProtocol { return thrift.NewTBinaryProtocolConf(t, nil) },
		func(t thrift.TTransport) thrift.TProtocol { return thrift.NewTCompactProtocolConf(t, nil) },
	} {
		buf := thrift.NewTMemoryBuffer()
		p := proto(buf)
		p.WriteMessageBegin(ctx, "echo", thrift.CALL, 7)
		p.WriteStructBegin(ctx, "args")
		p.WriteFieldBegin(ctx, "message", thrift.STRING, 1)
		p.WriteString(ctx, "hello")
		p.WriteFieldEnd(ctx)
		p.WriteFieldStop(ctx)
		p.WriteStructEnd(ctx)
		p.WriteMessageEnd(ctx)
		msg := buf.Bytes()
		f.Add(msg)
		f.Add(append(binaryLen(len(msg)), msg...))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xf0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	s := New(Options{MaxFrameSize: 1 << 20, MaxMessageSize: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := s.cfg
		trans := thrift.NewTHeaderTransportConf(thrift.NewTSocketFromConnConf(&bytesConn{r: bytes.NewReader(data)}, cfg), cfg)
		rec := &recorder{TTransport: trans}
		protos := map[abi.ThriftProtocol]thrift.TProtocol{
			abi.ThriftBinary:  thrift.NewTBinaryProtocolConf(rec, cfg),
			abi.ThriftCompact: thrift.NewTCompactProtocolConf(rec, cfg),
		}
		m, err := s.read(ctx, trans, rec, protos)
		if err != nil {
			return
		}
		if m.typ != thrift.CALL && m.typ != thrift.ONEWAY {
			t.Fatalf("accepted message type %d", m.typ)
		}
		name, typ, seq, err := peekType(m.body, m.proto)
		if err != nil || name != m.name || typ != m.typ || seq != m.seqID {
			t.Fatalf("recorded message does not parse back: %q %d %d %v", name, typ, seq, err)
		}
	})
}

func binaryLen(n int) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

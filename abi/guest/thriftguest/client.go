//go:build wasip1

package thriftguest

import (
	"bytes"
	"context"
	"errors"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi/guest"
)

// Client returns a thrift.TClient that calls the Thrift client configured
// as name in the app section (name.endpoint, name.protocol …) through the
// host's connection pool, for a generated client:
//
//	backend := example.NewExampleClient(thriftguest.Client("backend"))
//	ok, err := backend.IsHealthy(ctx, &baseplate.IsHealthyRequest{})
//
// The protocol (binary or compact) follows name.protocol. The host adds
// the THeader headers (trace, Deadline-Budget, User-Agent).
func Client(name string) thrift.TClient {
	t := NewTransport(name)
	var p thrift.TProtocol
	if v, _ := guest.Config(name + ".protocol"); v == "header-compact" || v == "framed-compact" {
		p = thrift.NewTCompactProtocolConf(t, &thrift.TConfiguration{})
	} else {
		p = thrift.NewTBinaryProtocolConf(t, &thrift.TConfiguration{})
	}
	return thrift.NewTStandardClient(p, p)
}

// Transport is a thrift.TTransport that sends each flushed message through
// the host's Thrift client and reads back its reply.
type Transport struct {
	name string
	out  bytes.Buffer
	in   bytes.Reader
}

// NewTransport returns a Transport for the Thrift client name.
func NewTransport(name string) *Transport { return &Transport{name: name} }

func (t *Transport) Open() error  { return nil }
func (t *Transport) IsOpen() bool { return true }
func (t *Transport) Close() error { return nil }
func (t *Transport) Read(p []byte) (int, error) {
	n, err := t.in.Read(p)
	if n == 0 && err != nil {
		return 0, thrift.NewTTransportExceptionFromError(err)
	}
	return n, nil
}
func (t *Transport) Write(p []byte) (int, error) { return t.out.Write(p) }

// Flush sends the message written so far and waits for the reply, which
// the following reads return. A oneway call's reply is empty.
func (t *Transport) Flush(ctx context.Context) error {
	msg := t.out.Bytes()
	defer t.out.Reset()
	h, err := guest.SendThrift(t.name, msg)
	if err != nil {
		return transportError(err)
	}
	reply, err := h.Wait(ctx)
	if err != nil {
		return transportError(err)
	}
	t.in.Reset(reply)
	return nil
}

func (t *Transport) RemainingBytes() uint64 { return uint64(t.in.Len()) }

func transportError(err error) error {
	id := thrift.UNKNOWN_TRANSPORT_EXCEPTION
	switch {
	case errors.Is(err, guest.ErrTimeout):
		id = thrift.TIMED_OUT
	case errors.Is(err, guest.ErrConnect):
		id = thrift.NOT_OPEN
	}
	return thrift.NewTTransportException(id, err.Error())
}

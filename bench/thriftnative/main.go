// Command thriftnative serves the thrift-go example's Example service with
// the same generated code in a native Go TSimpleServer: the baseline for
// Thrift echo. It accepts the client types THeader detects.
package main

import (
	"context"
	"errors"
	"flag"
	"log"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

type handler struct{}

func (handler) IsHealthy(context.Context, *baseplate.IsHealthyRequest) (bool, error) {
	return true, nil
}
func (handler) Echo(_ context.Context, m string) (string, error) { return m, nil }
func (handler) Fail(_ context.Context, m string) (string, error) {
	return "", &example.EchoError{Message: m}
}
func (handler) Remember(context.Context, string) error                 { return nil }
func (handler) Recall(context.Context) (string, error)                 { return "", nil }
func (handler) Trap(context.Context) (string, error)                   { return "", errors.New("trap") }
func (handler) Spin(context.Context) (string, error)                   { return "", errors.New("spin") }
func (handler) Pause(context.Context, int32) (string, error)           { return "paused", nil }
func (handler) Lookup(context.Context, string, string) (string, error) { return "", nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	cfg := &thrift.TConfiguration{}
	sock, err := thrift.NewTServerSocket(*addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := thrift.NewTSimpleServer4(example.NewExampleProcessor(handler{}), sock,
		thrift.NewTHeaderTransportFactoryConf(nil, cfg), thrift.NewTHeaderProtocolFactoryConf(cfg))
	log.Fatal(srv.Serve())
}

//go:build wasip1

// Command thrift-go is the wasmserve Thrift example: baseplate's
// BaseplateServiceV2.is_healthy plus the Example service of example.thrift,
// served through the Thrift guest SDK.
package main

import (
	"context"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi/guest"
	"github.com/wasmserve/wasmserve/abi/guest/thriftguest"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

type handler struct{}

var (
	remembered string
	spins      uint64
)

// IsHealthy fails READINESS (and unknown probes, treated as READINESS)
// once the server is shutting down; LIVENESS and STARTUP stay healthy.
func (handler) IsHealthy(_ context.Context, req *baseplate.IsHealthyRequest) (bool, error) {
	probe := baseplate.IsHealthyProbe_READINESS
	if req != nil && req.Probe != nil {
		probe = *req.Probe
	}
	switch probe {
	case baseplate.IsHealthyProbe_LIVENESS, baseplate.IsHealthyProbe_STARTUP:
		return true, nil
	}
	return !guest.ShuttingDown(), nil
}

func (handler) Echo(_ context.Context, message string) (string, error) { return message, nil }

func (handler) Fail(_ context.Context, message string) (string, error) {
	return "", &example.EchoError{Message: message}
}

func (handler) Remember(_ context.Context, value string) error {
	remembered = value
	return nil
}

func (handler) Recall(context.Context) (string, error) { return remembered, nil }

func (handler) Trap(context.Context) (string, error) { panic("thrift-go: trap requested") }

func (handler) Spin(context.Context) (string, error) {
	for {
		spins++
	}
}

// Pause sleeps, for slow-call tests.
func (handler) Pause(_ context.Context, ms int32) (string, error) {
	time.Sleep(time.Duration(min(ms, 10000)) * time.Millisecond)
	return "paused", nil
}

// Lookup returns "<THeader header>|<app config value>" and echoes the
// header back as the reply header "Echoed-Header".
func (handler) Lookup(ctx context.Context, header, key string) (string, error) {
	h, _ := thrift.GetHeader(ctx, header)
	v, _ := guest.Config(key)
	thriftguest.SetReplyHeader(ctx, "Echoed-Header", h)
	return h + "|" + v, nil
}

func init() { thriftguest.Handle(example.NewExampleProcessor(handler{})) }

func main() {}

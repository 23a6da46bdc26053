//go:build wasip1

package guest

import (
	"context"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

//go:wasmimport wasmserve http_send
func httpSend(rec unsafe.Pointer, n uint32) int32

//go:wasmimport wasmserve thrift_send
func thriftSend(name unsafe.Pointer, nameLen uint32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport wasmserve outbound_wait
func outboundWait(h int32, timeoutMS int32) int32

//go:wasmimport wasmserve outbound_read
func outboundRead(h int32, buf unsafe.Pointer, n uint32) int32

//go:wasmimport wasmserve outbound_close
func outboundClose(h int32) int32

//go:wasmimport wasmserve outbound_error
func outboundError(buf unsafe.Pointer, n uint32) int32

// OutboundError is a failed outbound call: one of the abi.Err* codes and
// the host's message, which names the cause (refused by http.allow,
// connection refused, timeout, response too large …).
type OutboundError struct {
	Code    int32
	Message string
}

func (e *OutboundError) Error() string {
	return fmt.Sprintf("outbound call failed (%d): %s", e.Code, e.Message)
}

// Is makes errors.Is(err, guest.ErrDenied) and the like match on the code.
func (e *OutboundError) Is(target error) bool {
	t, ok := target.(*OutboundError)
	return ok && t.Message == "" && t.Code == e.Code
}

// Targets for errors.Is on an outbound call's error.
var (
	ErrDenied   error = &OutboundError{Code: abi.ErrDenied}
	ErrConnect  error = &OutboundError{Code: abi.ErrConnect}
	ErrTimeout  error = &OutboundError{Code: abi.ErrTimeout}
	ErrTooLarge error = &OutboundError{Code: abi.ErrTooLarge}
	ErrProtocol error = &OutboundError{Code: abi.ErrProtocol}
	ErrLimit    error = &OutboundError{Code: abi.ErrLimit}
)

func lastOutboundError(code int32) *OutboundError {
	var stack [512]byte
	buf := stack[:]
	for {
		n := outboundError(unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if int(n) <= len(buf) {
			return &OutboundError{Code: code, Message: string(buf[:n])}
		}
		buf = make([]byte, n)
	}
}

// Outbound is an outbound call in flight (see "Outbound calls" in
// abi/ABI.md). Package outbound wraps HTTP calls as a net/http transport;
// package thriftguest wraps Thrift calls as a thrift.TClient.
type Outbound int32

// SendHTTP starts the HTTP request in rec (abi.AppendOutboundRequest).
func SendHTTP(rec []byte) (Outbound, error) {
	if len(rec) == 0 {
		return 0, &OutboundError{Code: abi.ErrInvalid, Message: "empty request record"}
	}
	h := httpSend(unsafe.Pointer(&rec[0]), uint32(len(rec)))
	if h < 0 {
		return 0, lastOutboundError(h)
	}
	return Outbound(h), nil
}

// SendThrift sends one complete Thrift message through the Thrift client
// configured as client (client.endpoint in the app section).
func SendThrift(client string, msg []byte) (Outbound, error) {
	if len(msg) == 0 || client == "" {
		return 0, &OutboundError{Code: abi.ErrInvalid, Message: "empty client name or message"}
	}
	h := thriftSend(unsafe.Pointer(unsafe.StringData(client)), uint32(len(client)), unsafe.Pointer(&msg[0]), uint32(len(msg)))
	if h < 0 {
		return 0, lastOutboundError(h)
	}
	return Outbound(h), nil
}

// Wait waits for the call and returns its reply: a response record for
// HTTP (abi.ParseResponse), the reply message for Thrift (empty for
// oneway). Other goroutines run first, so calls started from several
// goroutines are all in flight before the instance blocks on one. A done
// ctx cancels the call.
func (h Outbound) Wait(ctx context.Context) ([]byte, error) {
	n := outboundWait(int32(h), 0)
	for i := 0; n == abi.ErrPending && i < 4; i++ {
		runtime.Gosched()
		n = outboundWait(int32(h), 0)
	}
	if n == abi.ErrPending {
		timeout := int32(-1)
		if d, ok := ctx.Deadline(); ok {
			timeout = int32(max(0, min(time.Until(d).Milliseconds()+1, 1<<30)))
		}
		n = outboundWait(int32(h), timeout)
		if n == abi.ErrPending {
			h.Close()
			return nil, ctx.Err()
		}
	}
	if n < 0 {
		return nil, lastOutboundError(n)
	}
	buf := make([]byte, n)
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	if r := outboundRead(int32(h), p, uint32(n)); r < 0 {
		return nil, lastOutboundError(r)
	}
	return buf, nil
}

// Close cancels the call if it is still running and releases the handle.
func (h Outbound) Close() { outboundClose(int32(h)) }

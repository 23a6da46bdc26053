//go:build wasip1

// Package outbound lets a wasmserve guest call other services through the
// host's clients (see "Outbound calls" in abi/ABI.md). Importing it makes
// the host the transport of net/http's DefaultTransport, so http.Get,
// http.DefaultClient and any http.Client without its own Transport work
// unchanged:
//
//	import _ "github.com/wasmserve/wasmserve/abi/guest/outbound"
//
//	resp, err := http.Get("http://backend.internal/api")
//
// The host decides what may be reached (http.allow in the app section),
// pools connections, bounds every call by the request's deadline and adds
// the request's trace headers. Calls from several goroutines run at once:
// each goroutine yields while its call is in flight, so a handler that
// starts N requests in goroutines waits about as long as the slowest.
//
// Thrift clients are in package thriftguest (thriftguest.Client).
package outbound

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

func init() { http.DefaultTransport = Transport{} }

// Error is a failed outbound call: one of the abi.Err* codes and the
// host's message (which names the cause: refused by http.allow,
// connection refused, timeout, response too large …).
type Error struct {
	Code    int32
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("outbound call failed (%d): %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrDenied) and the like work.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Targets for errors.Is.
var (
	ErrDenied   error = &Error{Code: abi.ErrDenied}
	ErrConnect  error = &Error{Code: abi.ErrConnect}
	ErrTimeout  error = &Error{Code: abi.ErrTimeout}
	ErrTooLarge error = &Error{Code: abi.ErrTooLarge}
	ErrProtocol error = &Error{Code: abi.ErrProtocol}
	ErrLimit    error = &Error{Code: abi.ErrLimit}
)

func lastError(code int32) *Error {
	var stack [512]byte
	buf := stack[:]
	for {
		n := outboundError(unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if int(n) <= len(buf) {
			return &Error{Code: code, Message: string(buf[:n])}
		}
		buf = make([]byte, n)
	}
}

// Handle is an outbound call in flight.
type Handle int32

// SendHTTP starts an HTTP request record (abi.AppendOutboundRequest).
func SendHTTP(rec []byte) (Handle, error) {
	if len(rec) == 0 {
		return 0, &Error{Code: abi.ErrInvalid, Message: "empty request record"}
	}
	h := httpSend(unsafe.Pointer(&rec[0]), uint32(len(rec)))
	if h < 0 {
		return 0, lastError(h)
	}
	return Handle(h), nil
}

// SendThrift sends one complete Thrift message through the Thrift client
// configured as client (client.endpoint in the app section).
func SendThrift(client string, msg []byte) (Handle, error) {
	if len(msg) == 0 || client == "" {
		return 0, &Error{Code: abi.ErrInvalid, Message: "empty client name or message"}
	}
	h := thriftSend(unsafe.Pointer(unsafe.StringData(client)), uint32(len(client)), unsafe.Pointer(&msg[0]), uint32(len(msg)))
	if h < 0 {
		return 0, lastError(h)
	}
	return Handle(h), nil
}

// Wait waits for the call and returns its reply: a response record for
// HTTP (abi.ParseResponse), the reply message for Thrift (empty for
// oneway). Other goroutines run while the call is in flight. A done ctx
// cancels the call.
func (h Handle) Wait(ctx context.Context) ([]byte, error) {
	n := outboundWait(int32(h), 0)
	// Let the other goroutines start their calls before blocking the
	// instance on this one.
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
		return nil, lastError(n)
	}
	buf := make([]byte, n)
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	if r := outboundRead(int32(h), p, uint32(n)); r < 0 {
		return nil, lastError(r)
	}
	return buf, nil
}

// Close cancels the call if it is still running and releases the handle.
func (h Handle) Close() { outboundClose(int32(h)) }

// Transport is an http.RoundTripper over the host's HTTP client.
type Transport struct{}

// RoundTrip sends req through the host. Redirects are the http.Client's
// business, as with any transport; each one is checked against http.allow.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	var fields []byte
	if req.Host != "" && req.Host != req.URL.Host {
		fields = abi.AppendField(fields, "Host", req.Host)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			fields = abi.AppendField(fields, k, v)
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	h, err := SendHTTP(abi.AppendOutboundRequest(nil, method, req.URL.String(), fields, body))
	if err != nil {
		return nil, err
	}
	rec, err := h.Wait(req.Context())
	if err != nil {
		return nil, err
	}
	r, err := abi.ParseResponse(rec)
	if err != nil {
		return nil, fmt.Errorf("outbound: malformed response record: %w", err)
	}
	resp := &http.Response{
		Status:        strconv.Itoa(int(r.Status)) + " " + http.StatusText(int(r.Status)),
		StatusCode:    int(r.Status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(r.Body)),
		ContentLength: int64(len(r.Body)),
		Request:       req,
	}
	_ = r.Headers.Range(func(k, v []byte) bool {
		resp.Header.Add(string(k), string(v))
		return true
	})
	resp.Header.Del("Content-Length")
	return resp, nil
}

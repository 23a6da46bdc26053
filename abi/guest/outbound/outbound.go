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
// Thrift clients are in package thriftguest (thriftguest.Client); the raw
// calls (guest.SendHTTP, guest.SendThrift) need no net/http.
package outbound

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/abi/guest"
)

func init() { http.DefaultTransport = Transport{} }

// Error is a failed outbound call (guest.OutboundError).
type Error = guest.OutboundError

// Targets for errors.Is.
var (
	ErrDenied   = guest.ErrDenied
	ErrConnect  = guest.ErrConnect
	ErrTimeout  = guest.ErrTimeout
	ErrTooLarge = guest.ErrTooLarge
	ErrProtocol = guest.ErrProtocol
	ErrLimit    = guest.ErrLimit
)

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
	h, err := guest.SendHTTP(abi.AppendOutboundRequest(nil, method, req.URL.String(), fields, body))
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

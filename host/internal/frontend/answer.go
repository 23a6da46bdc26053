package frontend

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// Answer is what a client is told about a request that did not get a
// guest response. Each front end renders it in its protocol: HTTP sends
// Status with Text as the body; Thrift sends a TApplicationException
// (INTERNAL_ERROR) carrying Detail.
type Answer struct {
	Status int    // HTTP status: 503 overloaded, 504 timeout, 500 other faults, 499 client gone
	Text   string // short text for an HTTP body
	Detail string // longer message for a Thrift exception
	Worker int    // the worker that failed, or -1
	// Fault is the guest's fault, nil when the request never reached one.
	Fault *engine.Fault
	// Unexpected is set for errors that are neither a guest fault nor
	// load, nor the client going away: the front end logs them.
	Unexpected bool
}

// StatusClientGone is the status logged (never sent) for a request whose
// client went away while it waited for a worker.
const StatusClientGone = 499

// AnswerFor maps the error of pool.Handler.Handle to the client's answer.
// ctx is the request's context: a request whose context ended while it
// waited is reported as StatusClientGone.
func AnswerFor(ctx context.Context, err error) Answer {
	var f *engine.Fault
	switch {
	case errors.Is(err, pool.ErrOverloaded):
		return Answer{Status: http.StatusServiceUnavailable, Worker: -1,
			Text:   "server at max_concurrency, retry later",
			Detail: "server overloaded: max_concurrency calls in progress, retry later"}
	case errors.As(err, &f):
		a := Answer{Status: http.StatusInternalServerError, Worker: f.Worker, Fault: f,
			Text:   "guest failed: " + f.Kind.String(),
			Detail: fmt.Sprintf("guest %s on worker %d", f.Kind, f.Worker)}
		if f.Kind == engine.Timeout {
			a.Status = http.StatusGatewayTimeout
			a.Text = "guest exceeded request_timeout"
			a.Detail = fmt.Sprintf("guest exceeded its timeout (request_timeout or Deadline-Budget) on worker %d", f.Worker)
		}
		if f.Message != "" {
			a.Detail += ": " + f.Message
		}
		a.Detail += "; the instance was replaced"
		return a
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return Answer{Status: StatusClientGone, Worker: -1, Text: "client went away", Detail: err.Error()}
	}
	return Answer{Status: http.StatusInternalServerError, Worker: -1, Unexpected: true,
		Text: "internal server error", Detail: err.Error()}
}

// Package httpfront is the HTTP front end: it reads requests with net/http,
// enforces gunicorn-style limits, hands complete requests to guest
// instances and writes their responses.
//
// A request takes an instance only once its headers and whole body have
// been read, and the instance is back in its pool before the first byte of
// the response is written, so clients that are slow to send or to read
// cannot hold a worker; write_timeout bounds how long a response may take
// to write.
package httpfront

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/frontend"
	"github.com/wasmserve/wasmserve/host/internal/listen"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// Options configure a Server. Zero limits mean unlimited.
type Options struct {
	Handler               pool.Handler
	LimitRequestLine      int   // longest request line; longer → 414
	LimitRequestFields    int   // most header fields; more → 431
	LimitRequestFieldSize int   // longest "Name: value" line; longer → 431
	MaxRequestBody        int64 // largest body; larger → 413
	Keepalive             time.Duration
	HeaderTimeout         time.Duration
	ReadTimeout           time.Duration
	// WriteTimeout bounds the writing of each response, from its first
	// byte; 0 = none. The guest call is not counted: the instance is back
	// in its pool before the response is written.
	WriteTimeout time.Duration
	// AccessLog logs one INFO record per request to AccessLogOutput
	// (os.Stderr when nil) in AccessLogFormat ("text" or "json"), through
	// a buffer written out at least every FlushInterval and at Shutdown
	// and Close.
	AccessLog       bool
	AccessLogFormat string
	AccessLogOutput io.Writer
	// Debug adds X-Wasmserve-Worker and X-Wasmserve-Generation headers;
	// the generation is the one that served the request, as the Handler
	// records it in the request context's frontend.Served.
	Debug    bool
	Logger   *slog.Logger
	Observer Observer // nil = none
}

// Observer receives per-request events, for metrics.
type Observer interface {
	// RequestStarted and RequestDone bracket every request; route is the
	// request path and status the status sent.
	RequestStarted()
	RequestDone(method string, status int, d time.Duration)
	ConnState(c net.Conn, state http.ConnState)
}

// Server serves HTTP on any number of listeners. Use it once.
type Server struct {
	opts     Options
	log      *slog.Logger
	srv      *http.Server
	stopping atomic.Bool
	bufs     sync.Pool
	conns    listen.Tracker
	lnMu     sync.Mutex
	lns      []net.Listener
	access   *accessLog // nil when the access log is off
}

// New returns a Server for opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bufs.New = func() any { return new(reqBuf) }
	if opts.AccessLog {
		out := opts.AccessLogOutput
		if out == nil {
			out = os.Stderr
		}
		s.access = newAccessLog(out, opts.AccessLogFormat)
	}
	maxHeader := 1 << 20
	if opts.LimitRequestFields > 0 && opts.LimitRequestFieldSize > 0 {
		maxHeader = opts.LimitRequestLine + (opts.LimitRequestFields+1)*(opts.LimitRequestFieldSize+2) + 4096
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: opts.HeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		IdleTimeout:       opts.Keepalive,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connState{conn: c})
	}
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		if tc, ok := c.(*listen.Conn); ok {
			switch st {
			case http.StateActive:
				tc.Busy()
			case http.StateIdle:
				tc.Idle()
			}
		}
		if opts.Observer != nil {
			opts.Observer.ConnState(c, st)
		}
	}
	if opts.Keepalive == 0 {
		s.srv.SetKeepAlivesEnabled(false)
	}
	return s
}

// Serve accepts connections on ln until Shutdown or Close, or until ln's
// Accept fails. It returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	s.lns = append(s.lns, ln)
	s.lnMu.Unlock()
	err := s.srv.Serve(frontend.Backoff(listen.TrackListener(ln, &s.conns), "http", s.log))
	if s.stopping.Load() && errors.Is(err, net.ErrClosed) {
		return http.ErrServerClosed
	}
	return err
}

// SetShuttingDown makes every response from now on carry Connection: close.
func (s *Server) SetShuttingDown() { s.stopping.Store(true) }

// Shutdown closes the listeners (which graceful shutdown has normally
// drained already) and idle connections, then waits for active requests to
// finish, closing each connection after its response, until none is left
// or ctx ends. A request begun (even partly received) holds shutdown; an
// idle keep-alive connection does not, nor does one that has sent nothing
// for listen.SilentGrace.
//
// It does not use http.Server.Shutdown, which drops a request read after
// it is called: connections accepted from the backlog just before would
// lose theirs.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.lnMu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.lnMu.Unlock()
	err := s.conns.Wait(ctx)
	if s.access != nil {
		s.access.close()
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.conns.CloseAll()
	if s.access != nil {
		s.access.close()
	}
	return err
}

// Active returns the number of connections with a request in progress: at
// least one byte of it has been read and its response is not yet fully
// written.
func (s *Server) Active() int { return s.conns.Active() }

// reqBuf is the per-request state reused across requests.
type reqBuf struct {
	body    bytes.Buffer
	headers []byte
	req     abi.RequestInfo
	trace   string
	span    string
	rw      countingWriter
}

// maxKeptBody is the largest body buffer kept for the next request; a
// larger one is dropped after its request, so one large upload does not
// stay resident.
const maxKeptBody = 1 << 20

// initialBodyGrow caps the buffer reserved for a body before any of it
// arrives: the buffer then grows as bytes are read, so an announced
// Content-Length alone reserves no more than this.
const initialBodyGrow = 64 << 10

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if o := s.opts.Observer; o != nil {
		o.RequestStarted()
	}
	buf := s.bufs.Get().(*reqBuf)
	buf.rw = countingWriter{ResponseWriter: w}
	worker := s.serve(w, r, buf)
	d := time.Since(start)
	rw := &buf.rw
	if o := s.opts.Observer; o != nil {
		o.RequestDone(r.Method, rw.status, d)
	}
	if s.access != nil {
		s.access.record(start.Add(d), r.Method, r.URL.Path, rw.status, rw.n, d, worker, r.RemoteAddr, buf.trace, buf.span)
	}
	if buf.body.Cap() > maxKeptBody {
		buf.body = bytes.Buffer{}
	}
	buf.req, buf.trace, buf.span = abi.RequestInfo{}, "", ""
	buf.rw = countingWriter{}
	s.bufs.Put(buf)
}

// serve answers r and returns the worker that ran the guest (0 if none).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, buf *reqBuf) int {
	rw := &buf.rw
	if s.stopping.Load() {
		w.Header().Set("Connection", "close")
	}
	if len(r.TransferEncoding) > 0 {
		// net/http drops a Content-Length sent with Transfer-Encoding
		// before the handler sees it, so a request that had both cannot be
		// told apart: every chunked request's connection is closed after
		// its response (RFC 9112, section 6.3).
		w.Header().Set("Connection", "close")
	}
	if msg, status := s.checkLimits(r); status != 0 {
		s.fail(r, rw, msg, status)
		return 0
	}
	buf.trace, buf.span = traceIDs(r.Header)
	buf.body.Reset()
	if r.ContentLength != 0 {
		s.writeDeadline(r, w, time.Now()) // covers a 100 Continue sent when the body is read
	}
	if err := s.readBody(r, &buf.body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(r, rw, "request body exceeds max_request_body", http.StatusRequestEntityTooLarge)
			return 0
		}
		s.log.Debug("read request body", "remote", r.RemoteAddr, "error", err)
		s.fail(r, rw, "cannot read request body", http.StatusBadRequest)
		return 0
	}
	buf.headers = buf.headers[:0]
	if r.Host != "" {
		buf.headers = abi.AppendField(buf.headers, "Host", r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			buf.headers = abi.AppendField(buf.headers, k, v)
		}
	}
	buf.req = abi.RequestInfo{
		Kind:    abi.KindHTTP,
		Method:  r.Method,
		Path:    r.URL.EscapedPath(),
		Query:   r.URL.RawQuery,
		Headers: buf.headers,
		Body:    buf.body.Bytes(),
		Remote:  r.RemoteAddr,
	}
	// The instance is back in its pool before a byte is written.
	ctx := r.Context()
	var served *frontend.Served
	if s.opts.Debug {
		ctx, served = frontend.WithServed(ctx)
	}
	resp, err := s.opts.Handler.Handle(ctx, &buf.req, buf.trace)
	if err == nil {
		worker := resp.Worker
		s.writeResponse(r, rw, served, resp)
		resp.Release()
		return worker
	}
	var f *engine.Fault
	if r.Context().Err() == nil {
		s.writeDeadline(r, w, time.Now())
	}
	switch {
	case errors.Is(err, pool.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		http.Error(rw, "server at max_concurrency, retry later", http.StatusServiceUnavailable)
	case errors.As(err, &f):
		if f.Kind == engine.Timeout {
			http.Error(rw, "guest exceeded request_timeout", http.StatusGatewayTimeout)
		} else {
			http.Error(rw, "guest failed: "+f.Kind.String(), http.StatusInternalServerError)
		}
		return f.Worker
	case r.Context().Err() != nil:
		rw.status = 499 // client went away while waiting; nothing to send
	default:
		s.log.Error("handle request", "error", err)
		http.Error(rw, "internal server error", http.StatusInternalServerError)
	}
	return 0
}

// fail answers a request the front end refuses and closes its connection.
func (s *Server) fail(r *http.Request, w *countingWriter, msg string, status int) {
	w.Header().Set("Connection", "close")
	s.writeDeadline(r, w.ResponseWriter, time.Now())
	http.Error(w, msg, status)
}

// connKey is the context key of a connection's *connState.
type connKey struct{}

// connState is the front end's state of one connection, used by one
// request at a time.
type connState struct {
	conn     net.Conn
	deadline time.Time // write deadline set on conn; zero = none
}

// writeDeadline bounds the writes of the response about to be written, so
// a client that does not read cannot hold the connection's goroutine and
// buffers for longer than write_timeout. The deadline is set on the
// connection only when the one already set leaves less than 90 % of
// write_timeout: a busy keep-alive connection pays for one every few
// seconds, not one per request.
func (s *Server) writeDeadline(r *http.Request, w http.ResponseWriter, now time.Time) {
	wt := s.opts.WriteTimeout
	if wt <= 0 {
		return
	}
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs == nil { // not from a connection of Serve (a test calling ServeHTTP)
		_ = http.NewResponseController(w).SetWriteDeadline(now.Add(wt))
		return
	}
	if cs.deadline.Sub(now) >= wt-wt/10 {
		return
	}
	cs.deadline = now.Add(wt)
	_ = cs.conn.SetWriteDeadline(cs.deadline)
}

func (s *Server) writeResponse(r *http.Request, w *countingWriter, served *frontend.Served, resp *pool.Response) {
	// The engine refuses statuses outside 200–999 (a 1xx would be sent as
	// an informational response) as bad_response, so status is final here.
	status := int(resp.Status)
	h := w.Header()
	_ = resp.Headers.Range(func(k, v []byte) bool {
		key := headerKey(k)
		if http.CanonicalHeaderKey(key) == "Content-Length" {
			return true
		}
		h[key] = append(h[key], headerValue(v))
		return true
	})
	if len(resp.Body) >= 2048 { // net/http sets it for smaller bodies itself
		h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	}
	if s.opts.Debug {
		h.Set("X-Wasmserve-Worker", strconv.Itoa(resp.Worker))
		if served != nil {
			h.Set("X-Wasmserve-Generation", strconv.FormatInt(served.Generation, 10))
		}
	}
	if s.stopping.Load() { // shutdown began while the guest ran
		h.Set("Connection", "close")
	}
	s.writeDeadline(r, w.ResponseWriter, time.Now())
	w.WriteHeader(status)
	w.Write(resp.Body)
}

// headerKey returns k as a string, without allocating for the header
// names guests send most.
func headerKey(k []byte) string {
	switch string(k) {
	case "Content-Type":
		return "Content-Type"
	case "Cache-Control":
		return "Cache-Control"
	case "Location":
		return "Location"
	case "Set-Cookie":
		return "Set-Cookie"
	case "Content-Encoding":
		return "Content-Encoding"
	}
	return string(k)
}

// headerValue returns v as a string, without allocating for a few
// common content types.
func headerValue(v []byte) string {
	switch string(v) {
	case "text/plain; charset=utf-8":
		return "text/plain; charset=utf-8"
	case "application/json":
		return "application/json"
	case "text/html; charset=utf-8":
		return "text/html; charset=utf-8"
	}
	return string(v)
}

func (s *Server) checkLimits(r *http.Request) (string, int) {
	if l := s.opts.LimitRequestLine; l > 0 && len(r.Method)+len(r.RequestURI)+len(r.Proto)+2 > l {
		return "request line exceeds limit_request_line", http.StatusRequestURITooLong
	}
	fields := 0
	for k, vs := range r.Header {
		fields += len(vs)
		if l := s.opts.LimitRequestFieldSize; l > 0 {
			for _, v := range vs {
				if len(k)+2+len(v) > l {
					return "header field " + k + " exceeds limit_request_field_size", http.StatusRequestHeaderFieldsTooLarge
				}
			}
		}
	}
	if r.Host != "" {
		fields++
		if l := s.opts.LimitRequestFieldSize; l > 0 && len("Host")+2+len(r.Host) > l {
			return "header field Host exceeds limit_request_field_size", http.StatusRequestHeaderFieldsTooLarge
		}
	}
	if l := s.opts.LimitRequestFields; l > 0 && fields > l {
		return "request has more than limit_request_fields header fields", http.StatusRequestHeaderFieldsTooLarge
	}
	return "", 0
}

func (s *Server) readBody(r *http.Request, dst *bytes.Buffer) error {
	max := s.opts.MaxRequestBody
	if max > 0 && r.ContentLength > max {
		return &http.MaxBytesError{Limit: max}
	}
	if r.ContentLength == 0 {
		return nil
	}
	var body io.Reader = r.Body
	if max > 0 {
		body = http.MaxBytesReader(nil, r.Body, max)
	}
	if r.ContentLength > 0 {
		// Reserve at most initialBodyGrow up front; the buffer grows as
		// the bytes arrive, never to what the client merely announced.
		dst.Grow(int(min(r.ContentLength, initialBodyGrow)))
	}
	_, err := dst.ReadFrom(body)
	return err
}

// traceIDs returns the request's trace and span ids: X-Trace and X-Span
// (baseplate), else the trace-id and parent-id of a W3C traceparent
// (version-traceid-parentid-flags).
func traceIDs(h http.Header) (trace, span string) {
	if v := h.Get("X-Trace"); v != "" {
		return v, h.Get("X-Span")
	}
	if v := h.Get("Traceparent"); v != "" {
		_, rest, ok := strings.Cut(v, "-")
		if !ok {
			return "", ""
		}
		trace, rest, _ = strings.Cut(rest, "-")
		span, _, _ = strings.Cut(rest, "-")
	}
	return trace, span
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

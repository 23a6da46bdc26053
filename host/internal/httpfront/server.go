// Package httpfront is the HTTP front end: it reads requests with net/http,
// enforces gunicorn-style limits, hands complete requests to guest
// instances and writes their responses.
//
// A request takes an instance only once its headers and whole body have
// been read, so slow clients cannot hold a worker.
package httpfront

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
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
	AccessLog             bool
	// Debug adds X-Wasmserve-Worker and X-Wasmserve-Generation headers.
	Debug    bool
	Logger   *slog.Logger
	Observer Observer // nil = none
	// Generation reports the generation serving now, for Debug headers.
	Generation func() int64
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
}

// New returns a Server for opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bufs.New = func() any { return new(reqBuf) }
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
	err := s.srv.Serve(listen.TrackListener(ln, &s.conns))
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
	return s.conns.Wait(ctx)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.conns.CloseAll()
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
	rw      countingWriter
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if o := s.opts.Observer; o != nil {
		o.RequestStarted()
	}
	buf := s.bufs.Get().(*reqBuf)
	defer s.bufs.Put(buf)
	buf.rw = countingWriter{ResponseWriter: w}
	rw := &buf.rw
	worker := 0
	trace, span := traceIDs(r.Header)
	defer func() {
		d := time.Since(start)
		if o := s.opts.Observer; o != nil {
			o.RequestDone(r.Method, rw.status, d)
		}
		if s.opts.AccessLog {
			args := []any{"method", r.Method, "path", r.URL.Path, "status", rw.status,
				"bytes", rw.n, "duration", d, "worker", worker, "remote", r.RemoteAddr}
			if trace != "" {
				args = append(args, "trace", trace)
			}
			if span != "" {
				args = append(args, "span", span)
			}
			s.log.Info("request", args...)
		}
	}()
	if s.stopping.Load() {
		w.Header().Set("Connection", "close")
	}
	if msg, status := s.checkLimits(r); status != 0 {
		w.Header().Set("Connection", "close")
		http.Error(rw, msg, status)
		return
	}
	buf.body.Reset()
	if err := s.readBody(r, &buf.body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set("Connection", "close")
			http.Error(rw, "request body exceeds max_request_body", http.StatusRequestEntityTooLarge)
			return
		}
		s.log.Debug("read request body", "remote", r.RemoteAddr, "error", err)
		w.Header().Set("Connection", "close")
		http.Error(rw, "cannot read request body", http.StatusBadRequest)
		return
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
	path := r.URL.EscapedPath()
	req := abi.RequestInfo{
		Kind:    abi.KindHTTP,
		Method:  r.Method,
		Path:    path,
		Query:   r.URL.RawQuery,
		Headers: buf.headers,
		Body:    buf.body.Bytes(),
		Remote:  r.RemoteAddr,
	}
	err := s.opts.Handler.Handle(r.Context(), &req, "", trace, func(wk int, resp abi.Response) {
		worker = wk
		s.writeResponse(rw, wk, resp)
	})
	if err == nil {
		return
	}
	var f *engine.Fault
	switch {
	case errors.Is(err, pool.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		http.Error(rw, "server at max_concurrency, retry later", http.StatusServiceUnavailable)
	case errors.As(err, &f):
		worker = f.Worker
		if f.Kind == engine.Timeout {
			http.Error(rw, "guest exceeded request_timeout", http.StatusGatewayTimeout)
		} else {
			http.Error(rw, "guest failed: "+f.Kind.String(), http.StatusInternalServerError)
		}
	case r.Context().Err() != nil:
		rw.status = 499 // client went away while waiting; nothing to send
	default:
		s.log.Error("handle request", "error", err)
		http.Error(rw, "internal server error", http.StatusInternalServerError)
	}
}

func (s *Server) writeResponse(w *countingWriter, worker int, resp abi.Response) {
	status := int(resp.Status)
	if status < 100 || status > 999 {
		s.log.Error("guest returned an invalid status", "status", status, "worker", worker)
		http.Error(w, "guest returned an invalid status", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	_ = resp.Headers.Range(func(k, v []byte) bool {
		key := string(k)
		if http.CanonicalHeaderKey(key) == "Content-Length" {
			return true
		}
		h[key] = append(h[key], string(v))
		return true
	})
	if len(resp.Body) >= 2048 { // net/http sets it for smaller bodies itself
		h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	}
	if s.opts.Debug {
		h.Set("X-Wasmserve-Worker", strconv.Itoa(worker))
		if s.opts.Generation != nil {
			h.Set("X-Wasmserve-Generation", strconv.FormatInt(s.opts.Generation(), 10))
		}
	}
	if s.stopping.Load() { // shutdown began while the guest ran
		h.Set("Connection", "close")
	}
	w.WriteHeader(status)
	w.Write(resp.Body)
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
		dst.Grow(int(r.ContentLength))
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
		parts := strings.Split(v, "-")
		if len(parts) >= 2 {
			trace = parts[1]
		}
		if len(parts) >= 3 {
			span = parts[2]
		}
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

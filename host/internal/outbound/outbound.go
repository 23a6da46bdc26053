// Package outbound runs the calls guests make to other services: HTTP
// requests through an allow-listed client whose dialer filters addresses
// after DNS resolution, and Thrift calls through pools of framed or THeader
// connections. Each call is bounded by the smaller of its client's timeout
// and what remains of the inbound request's deadline, carries the inbound
// request's trace (baseplate's headers and W3C traceparent) and is counted
// under baseplate's metric names.
//
// A Registry lives for the whole process and owns the clients: one HTTP
// transport and one pool per Thrift client, shared by every instance and
// kept across reloads while their configuration does not change. Each
// generation takes a Set from it and closes the Set when it is done; a
// client no Set uses any more is closed.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmserve/wasmserve/abi"
)

// Defaults of the app section's client keys.
const (
	DefaultMaxResponseBody = 10 << 20
	DefaultMaxOutbound     = 64
	DefaultHTTPPoolMaxSize = 10
	DefaultHTTPTimeout     = 10 * time.Second
	DefaultThriftSize      = 10
	DefaultThriftMaxAge    = time.Minute
	DefaultThriftTimeout   = time.Second
	DefaultThriftRetries   = 3
	DefaultThriftProtocol  = "header"
)

// Config is the outbound part of an app section.
type Config struct {
	HTTP            HTTPConfig
	Thrift          []ThriftConfig // sorted by name
	MaxResponseBody int64          // max_response_body: largest reply, bytes
	MaxOutbound     int            // max_outbound: handles one request may hold at once
}

// HTTPConfig is the http.* keys.
type HTTPConfig struct {
	Allow       []string      // http.allow: scheme://host[:port] patterns, * for a label or port
	PoolMaxSize int           // http.pool_maxsize: idle connections kept per host
	MaxRetries  int           // http.max_retries: extra connect attempts (DNS/connect failures only)
	Timeout     time.Duration // http.timeout: per request, from connect to the last body byte
}

// ThriftConfig is one Thrift client, the NAME.* keys.
type ThriftConfig struct {
	Name       string
	Endpoint   string        // NAME.endpoint: host:port or a unix socket path
	Size       int           // NAME.size: most connections open at once
	MaxAge     time.Duration // NAME.max_age: a connection older than this is closed instead of reused
	Timeout    time.Duration // NAME.timeout: connect and call
	MaxRetries int           // NAME.max_retries: connect attempts
	Protocol   string        // NAME.protocol: header, header-compact, framed or framed-compact
}

// Error is a failed outbound call: an abi error code and a message for the
// guest.
type Error struct {
	Code int32
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code int32, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Options configure a Registry.
type Options struct {
	// Registerer receives the client metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Buckets are the latency histograms' bucket bounds, in seconds.
	Buckets []float64
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Service is the User-Agent THeader header sent with Thrift calls.
	Service string
	// Deny lists listener addresses guests must never reach (the admin
	// listener): an unspecified host denies the port on every local
	// address.
	Deny []string
	// Resolver resolves host names; nil means net.DefaultResolver. Tests
	// set it to make a name resolve to a chosen address.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// Registry owns the process's outbound clients.
type Registry struct {
	opts    Options
	log     *slog.Logger
	metrics *clientMetrics
	deny    denyList

	mu     sync.Mutex
	http   map[string]*httpClient   // by config key
	thrift map[string]*thriftClient // by name and config
}

// NewRegistry returns an empty Registry whose metrics are registered with
// opts.Registerer.
func NewRegistry(opts Options) (*Registry, error) {
	r := &Registry{opts: opts, log: opts.Logger, http: map[string]*httpClient{}, thrift: map[string]*thriftClient{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.opts.Service == "" {
		r.opts.Service = "wasmserve"
	}
	var err error
	if r.deny, err = newDenyList(opts.Deny); err != nil {
		return nil, err
	}
	r.metrics = newClientMetrics(r, opts.Buckets)
	if opts.Registerer != nil {
		if err := r.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("register client metrics: %w", err)
		}
	}
	return r, nil
}

// PoolStat is one Thrift client pool's size and the connections in use.
type PoolStat struct {
	Name        string
	Size, InUse int
}

// Pools returns the open Thrift client pools, for the statsd runtime
// gauges clients.NAME.pool.size and clients.NAME.pool.in_use.
func (r *Registry) Pools() []PoolStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PoolStat
	for _, c := range r.thrift {
		out = append(out, PoolStat{Name: c.cfg.Name, Size: c.cfg.Size, InUse: int(c.inUse.Load())})
	}
	return out
}

// Set returns the clients of cfg, reusing those of earlier sets whose
// configuration is unchanged. Close the Set when its generation is done.
func (r *Registry) Set(cfg Config) *Set {
	if cfg.MaxResponseBody <= 0 {
		cfg.MaxResponseBody = DefaultMaxResponseBody
	}
	if cfg.MaxOutbound <= 0 {
		cfg.MaxOutbound = DefaultMaxOutbound
	}
	s := &Set{reg: r, cfg: cfg, thrift: map[string]*thriftClient{}}
	s.done, s.cancel = context.WithCancel(context.Background())
	r.mu.Lock()
	defer r.mu.Unlock()
	hk := fmt.Sprintf("%#v %d", cfg.HTTP, cfg.MaxResponseBody)
	h := r.http[hk]
	if h == nil {
		h = newHTTPClient(r, cfg.HTTP, hk)
		r.http[hk] = h
	}
	h.refs++
	s.http = h
	for _, tc := range cfg.Thrift {
		k := fmt.Sprintf("%#v", tc)
		c := r.thrift[k]
		if c == nil {
			c = newThriftClient(r, tc, k)
			r.thrift[k] = c
			r.metrics.poolMax.WithLabelValues(tc.Name).Set(float64(tc.Size))
		}
		c.refs++
		s.thrift[tc.Name] = c
	}
	return s
}

// release drops one reference to each client of s and closes those left
// without one.
func (r *Registry) release(s *Set) {
	r.mu.Lock()
	var closeHTTP *httpClient
	var closeThrift []*thriftClient
	if s.http.refs--; s.http.refs == 0 {
		delete(r.http, s.http.key)
		closeHTTP = s.http
	}
	for _, c := range s.thrift {
		if c.refs--; c.refs == 0 {
			delete(r.thrift, c.key)
			closeThrift = append(closeThrift, c)
		}
	}
	r.mu.Unlock()
	if closeHTTP != nil {
		closeHTTP.close()
	}
	for _, c := range closeThrift {
		c.close()
		// Another Set may still have a client of that name.
		r.mu.Lock()
		used := false
		for _, o := range r.thrift {
			used = used || o.cfg.Name == c.cfg.Name
		}
		r.mu.Unlock()
		if !used {
			r.metrics.poolMax.DeleteLabelValues(c.cfg.Name)
			r.metrics.poolActive.DeleteLabelValues(c.cfg.Name)
		}
	}
}

// Set is the clients one generation uses. Its methods are safe for
// concurrent use.
type Set struct {
	reg    *Registry
	cfg    Config
	http   *httpClient
	thrift map[string]*thriftClient

	wg      sync.WaitGroup // calls running
	closeMu sync.Mutex
	closed  bool
	// done ends every call still running when the set closes.
	done   context.Context
	cancel context.CancelFunc
}

// MaxOutbound is the number of handles one request may hold at once.
func (s *Set) MaxOutbound() int { return s.cfg.MaxOutbound }

// Close cancels the calls still running (their requests were abandoned:
// a generation closes once its requests are done, or after its close
// timeout), waits for them to return, then releases the clients. It is
// safe to call more than once.
func (s *Set) Close() {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.reg.release(s)
}

// Request is what a call needs of the inbound request it serves.
type Request struct {
	// Ctx ends when the inbound request ends; the calls it started are
	// then cancelled.
	Ctx context.Context
	// Deadline is the inbound request's deadline; zero means none.
	Deadline time.Time
	// Trace is the inbound request's trace context.
	Trace Trace
}

// Call is one outbound call in progress.
type Call struct {
	done   chan struct{}
	cancel context.CancelFunc
	reply  []byte
	err    *Error
}

// Done is closed when the call has finished.
func (c *Call) Done() <-chan struct{} { return c.done }

// Result is the call's reply, or its error; valid once Done is closed.
func (c *Call) Result() ([]byte, *Error) { return c.reply, c.err }

// Cancel stops the call if it is still running.
func (c *Call) Cancel() { c.cancel() }

func (s *Set) start(req *Request, timeout time.Duration, run func(ctx context.Context) ([]byte, *Error)) (*Call, *Error) {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil, errorf(abi.ErrCanceled, "server shutting down: outbound clients closed")
	}
	s.wg.Add(1)
	s.closeMu.Unlock()
	parent := req.Ctx
	if parent == nil {
		parent = context.Background()
	}
	deadline := time.Now().Add(timeout)
	if !req.Deadline.IsZero() && req.Deadline.Before(deadline) {
		deadline = req.Deadline
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	c := &Call{done: make(chan struct{}), cancel: cancel}
	stop := context.AfterFunc(s.done, cancel)
	go func() {
		defer s.wg.Done()
		defer stop()
		defer cancel()
		c.reply, c.err = run(ctx)
		if c.err == nil && ctx.Err() != nil {
			c.reply, c.err = nil, ctxError(ctx, "call")
		}
		close(c.done)
	}()
	return c, nil
}

// ctxError is the error of a call whose context ended.
func ctxError(ctx context.Context, what string) *Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return errorf(abi.ErrTimeout, "%s: timed out (the client's timeout or the request's deadline)", what)
	}
	return errorf(abi.ErrCanceled, "%s: cancelled: the request ended", what)
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

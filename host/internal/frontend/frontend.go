// Package frontend is the core the protocol front ends share: the list of
// listeners a front end serves, the tracking of its connections for
// graceful shutdown, an accept loop that backs off on temporary errors
// instead of returning, and the mapping from a failed guest call to what
// the client is told.
//
// A protocol front end (HTTP, Thrift) embeds a Core, serves each listener
// through Core.Listener (or Core.Serve), and implements only its protocol.
package frontend

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/listen"
)

// Accept back-off bounds, as net/http's: the first retry waits minBackoff,
// each further one twice as long, up to maxBackoff.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// WarnEvery is the least time between two WARN lines about accept errors;
// the errors in between are counted and reported with the next line.
const WarnEvery = 5 * time.Second

// Core holds what every front end needs for its lifecycle. Its zero value
// is not usable: create one with New. Its methods are safe for concurrent
// use.
type Core struct {
	// Conns tracks every accepted connection; Shutdown waits on it.
	Conns    listen.Tracker
	stopping atomic.Bool

	mu     sync.Mutex
	lns    []*Listener
	closed bool // CloseListeners was called: listeners added later are closed at once

	warn *warner
}

// warner logs accept errors at WARN, at most once per WarnEvery, with
// the number of errors since its last line.
type warner struct {
	log        *slog.Logger
	protocol   string
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New returns a Core that logs accept errors to log, naming protocol
// ("http", "thrift").
func New(protocol string, log *slog.Logger) *Core {
	if log == nil {
		log = slog.Default()
	}
	return &Core{warn: &warner{log: log, protocol: protocol}}
}

// Listener wraps ln for the front end: every connection it accepts is
// tracked by c.Conns, and temporary accept errors (EMFILE, ENFILE,
// ENOBUFS, ENOMEM, ECONNABORTED, timeouts) are retried with back-off and
// logged at WARN, rate-limited, rather than returned. Accept returns an
// error only once the listener is closed (net.ErrClosed) or fails for
// good. The listener is added to c's list, which Close closes.
func (c *Core) Listener(ln net.Listener) *Listener {
	l := &Listener{Listener: ln, track: func(conn net.Conn) net.Conn { return c.Conns.Track(conn) }, warn: c.warn, done: make(chan struct{})}
	c.mu.Lock()
	c.lns = append(c.lns, l)
	closed := c.closed
	c.mu.Unlock()
	if closed { // Serve raced with Shutdown or Close: accept nothing
		l.Close()
	}
	return l
}

// Serve accepts connections on ln through c.Listener and runs serve for
// each on its own goroutine. It returns nil once ln is closed, and
// otherwise the error that stopped accepting.
func (c *Core) Serve(ln net.Listener, serve func(*listen.Conn)) error {
	l := c.Listener(ln)
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go serve(conn.(*listen.Conn))
	}
}

// SetStopping marks the start of graceful shutdown.
func (c *Core) SetStopping() { c.stopping.Store(true) }

// Stopping reports whether graceful shutdown has begun.
func (c *Core) Stopping() bool { return c.stopping.Load() }

// CloseListeners closes every listener added with Listener, and any added
// after it; closing one twice is not an error.
func (c *Core) CloseListeners() {
	c.mu.Lock()
	lns := c.lns
	c.closed = true
	c.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
}

// Shutdown marks c as stopping, closes its listeners, and waits until no
// connection is left (closing each as it becomes idle) or ctx ends.
func (c *Core) Shutdown(ctx context.Context) error {
	c.SetStopping()
	c.CloseListeners()
	return c.Conns.Wait(ctx)
}

// Close closes every listener and every connection at once.
func (c *Core) Close() {
	c.SetStopping()
	c.CloseListeners()
	c.Conns.CloseAll()
}

// Backoff wraps ln so that temporary accept errors are retried with
// back-off and logged at WARN, rate-limited, naming protocol, as
// Core.Listener does, for a front end that tracks its connections itself
// (e.g. behind net/http, whose own retry logs nothing above DEBUG).
func Backoff(ln net.Listener, protocol string, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{Listener: ln, warn: &warner{log: log, protocol: protocol}, done: make(chan struct{})}
}

// Listener is a listener served by a front end; see Core.Listener and
// Backoff.
type Listener struct {
	net.Listener
	track func(net.Conn) net.Conn // nil: connections are returned as accepted
	warn  *warner
	once  sync.Once
	done  chan struct{}
}

// Accept waits for the next connection, retrying temporary errors with
// back-off; from Core.Listener it returns a *listen.Conn.
func (l *Listener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		conn, err := l.Listener.Accept()
		if err == nil {
			if l.track != nil {
				return l.track(conn), nil
			}
			return conn, nil
		}
		if !Temporary(err) {
			return nil, err
		}
		select {
		case <-l.done:
			return nil, net.ErrClosed
		default:
		}
		if delay == 0 {
			delay = minBackoff
		} else {
			delay = min(2*delay, maxBackoff)
		}
		l.warn.accept(l.Addr(), err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a back-off wait in Accept.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// accept logs a temporary accept error.
func (w *warner) accept(addr net.Addr, err error, delay time.Duration) {
	w.mu.Lock()
	now := time.Now()
	if !w.last.IsZero() && now.Sub(w.last) < WarnEvery {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	n := w.suppressed
	w.last, w.suppressed = now, 0
	w.mu.Unlock()
	w.log.Warn("accept failed; retrying (raise the open-file limit, ulimit -n, if this is EMFILE)",
		"protocol", w.protocol, "address", addr.String(), "error", err,
		"retry_in", delay, "errors_not_logged", n)
}

// Temporary reports whether an accept error is one to retry after a
// pause: the process or the system is out of descriptors or buffers, a
// connection was aborted before it was accepted, or a timeout.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

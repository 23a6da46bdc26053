package listen

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listener wraps a listening socket so that graceful shutdown can stop it
// the way bjoern does: first accept every connection already queued in the
// kernel's listen backlog, then close the socket so that new connects are
// refused. The front end's own Accept loop receives the queued connections
// and serves them like any other, so the same Listener works for an
// http.Server (Serve(ln)) and for a Thrift accept loop.
//
// The contract, for the server that calls Accept in a loop:
//
//   - Before Drain, Accept is the wrapped listener's Accept.
//   - Drain wakes an Accept blocked in the poller. From then on Accept
//     returns the connections still queued, without waiting, and once the
//     backlog is empty it closes the socket and returns an error wrapping
//     net.ErrClosed, which http.Server.Serve returns as is; the loop then
//     stops. Every later Accept returns such an error too.
//   - Drain returns once the socket is closed. It does not wait for the
//     handed-over connections to be served: that is the front end's
//     Shutdown.
//
// Close closes the socket at once (queued connections are then reset by the
// kernel) and may be called any number of times.
//
// A Listener is safe for concurrent use; several goroutines may call
// Accept.
type Listener struct {
	net.Listener
	raw syscall.RawConn // nil when the socket exposes no file descriptor

	draining  atomic.Bool
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed once the underlying socket is closed
	queued    atomic.Int64  // connections taken from the backlog while draining
}

// Drainable wraps ln, usually a listener returned by Open. The Listener
// owns ln from now on: closing the Listener closes ln. When ln exposes no
// file descriptor (it is neither a socket listener nor a wrapper with an
// Unwrap() net.Listener method leading to one), Drain cannot see its
// backlog and simply closes it.
func Drainable(ln net.Listener) *Listener {
	l := &Listener{Listener: ln, closed: make(chan struct{})}
	if raw, err := rawListener(ln); err == nil {
		l.raw = raw
	}
	return l
}

type deadliner interface{ SetDeadline(time.Time) error }

// Accept waits for and returns the next connection. After Drain has begun,
// it returns the connections still queued in the backlog without waiting,
// then closes the socket and returns an error that wraps net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	if !l.draining.Load() {
		c, err := l.Listener.Accept()
		if err == nil || !l.draining.Load() {
			return c, err
		}
		// Drain interrupted a blocked Accept with a deadline: fall through.
	}
	select {
	case <-l.closed:
		return nil, fmt.Errorf("listen: %s: %w", l.Addr(), net.ErrClosed)
	default:
	}
	c, err := l.acceptQueued()
	if c != nil {
		l.queued.Add(1)
		return c, nil
	}
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("listen: %s: drain backlog: %w (%w)", l.Addr(), err, net.ErrClosed)
	}
	return nil, fmt.Errorf("listen: %s: %w", l.Addr(), net.ErrClosed)
}

// acceptQueued accepts one connection if one is queued, without waiting.
// It returns nil, nil when the backlog is empty.
func (l *Listener) acceptQueued() (net.Conn, error) {
	if l.raw == nil {
		return nil, nil
	}
	return acceptNow(l.raw)
}

// acceptNow accepts one connection queued on the listening socket raw
// without waiting. It returns nil, nil when none is queued.
func acceptNow(raw syscall.RawConn) (net.Conn, error) {
	var (
		nfd  = -1
		aerr error
	)
	err := raw.Control(func(fd uintptr) {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr == unix.EAGAIN || aerr == unix.EWOULDBLOCK {
		return nil, nil
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	f := os.NewFile(uintptr(nfd), "queued connection")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrap queued connection: %w", err)
	}
	return c, nil
}

// DrainBacklog accepts every connection already queued in ln's listen
// backlog, without waiting for new ones, and passes each to handoff, in
// the order the kernel queued them. It returns when the backlog is empty,
// or with the first error; connections accepted before an error have been
// handed off. It neither closes ln nor changes its deadline: the caller
// closes ln afterwards, so that later connects are refused (bjoern's
// graceful shutdown, steps 1 and 2).
//
// ln must be a socket listener (*net.TCPListener, *net.UnixListener, or a
// wrapper such as *Listener whose Unwrap method leads to one).
//
// # Notes
//
//   - The caller must have stopped its own Accept loop first: a loop still
//     running would take some of the queued connections itself. A server
//     whose Accept loop should itself receive the queued connections (an
//     http.Server, a Thrift accept loop) wraps its listener with Drainable
//     and calls Listener.Drain instead.
//   - A connection that completes its handshake while DrainBacklog runs is
//     taken too; one that arrives after it returned stays queued until ln
//     is closed, and is then reset by the kernel.
//   - Waiting for a deadline in "now" would not do: Go's Accept reports a
//     past deadline before it tries accept(2). DrainBacklog calls accept4(2)
//     on the non-blocking socket until it reports EAGAIN.
func DrainBacklog(ln net.Listener, handoff func(net.Conn)) error {
	raw, err := rawListener(ln)
	if err != nil {
		return fmt.Errorf("listen: drain backlog of %s: %w", ln.Addr(), err)
	}
	for {
		c, err := acceptNow(raw)
		if err != nil {
			return fmt.Errorf("listen: drain backlog of %s: %w", ln.Addr(), err)
		}
		if c == nil {
			return nil
		}
		handoff(c)
	}
}

// rawListener returns the socket under ln, unwrapping wrappers that have an
// Unwrap() net.Listener method.
func rawListener(ln net.Listener) (syscall.RawConn, error) {
	for {
		if sc, ok := ln.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		u, ok := ln.(interface{ Unwrap() net.Listener })
		if !ok {
			return nil, fmt.Errorf("%T has no file descriptor", ln)
		}
		ln = u.Unwrap()
	}
}

// Drain makes the serving loop accept every connection already queued and
// then close the socket; it returns once the socket is closed, with the
// number of connections taken from the backlog. If ctx ends first, Drain
// closes the socket itself (connections still queued are then reset by the
// kernel) and returns ctx's error. A Listener whose serving loop has
// stopped, or never started, therefore needs a ctx that ends; or use
// DrainBacklog, which does not rely on a serving loop.
//
// Drain does not wait for the accepted connections to be served: that is
// the front end's Shutdown. Calling Drain again, or after Close, returns at
// once.
func (l *Listener) Drain(ctx context.Context) (int, error) {
	if !l.draining.Swap(true) {
		if d, ok := l.Listener.(deadliner); ok {
			// Wake an Accept blocked in the poller; it sees draining and
			// switches to taking queued connections.
			d.SetDeadline(time.Unix(1, 0))
		} else {
			l.Close()
		}
	}
	select {
	case <-l.closed:
		return int(l.queued.Load()), nil
	case <-ctx.Done():
		l.Close()
		return int(l.queued.Load()), fmt.Errorf("listen: %s: drain: %w", l.Addr(), ctx.Err())
	}
}

// Draining reports whether Drain has been called.
func (l *Listener) Draining() bool { return l.draining.Load() }

// Close closes the socket. It is idempotent: later calls return the first
// call's result, so that a front end's Shutdown may close a listener Drain
// already closed without reporting an error.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.Listener.Close()
		close(l.closed)
	})
	return l.closeErr
}

// Unwrap returns the wrapped listener.
func (l *Listener) Unwrap() net.Listener { return l.Listener }

var _ net.Listener = (*Listener)(nil)

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
// kernel's listen backlog, then close the socket so new connects are
// refused. It works the same for every protocol front end because the
// front end's own Accept loop takes the queued connections and serves them
// like any other.
//
// A Listener is safe for concurrent use. Accept is meant to be called by one
// serving loop at a time.
type Listener struct {
	net.Listener
	raw syscall.RawConn // nil when the socket exposes no file descriptor

	draining  atomic.Bool
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed once the underlying socket is closed
	queued    atomic.Int64  // connections taken from the backlog while draining
}

// Drainable wraps ln. The Listener owns ln from now on: closing the
// Listener closes ln.
func Drainable(ln net.Listener) *Listener {
	l := &Listener{Listener: ln, closed: make(chan struct{})}
	if sc, ok := ln.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			l.raw = raw
		}
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
	var (
		nfd  = -1
		aerr error
	)
	err := l.raw.Control(func(fd uintptr) {
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

// Drain makes the serving loop accept every connection already queued and
// then close the socket; it returns once the socket is closed, with the
// number of connections taken from the backlog. If ctx ends first, Drain
// closes the socket itself (connections still queued are then reset by the
// kernel) and returns ctx's error.
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

package listen

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SilentGrace is how long, during shutdown, a connection that has sent
// nothing at all is kept before it is closed: long enough for a client that
// has just connected to send the request it is about to write.
const SilentGrace = time.Second

// Tracker follows a front end's connections so that graceful shutdown
// treats every protocol alike. A connection is busy from the first byte of
// a request until the front end marks it idle again (its response
// written); idle connections, and connections that have sent nothing for
// SilentGrace, do not hold shutdown.
//
// The front end wraps every accepted connection with Track and calls Idle
// on it after each response. A Tracker is safe for concurrent use.
type Tracker struct {
	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// Conn is a connection followed by a Tracker. Closing it stops the
// tracking.
type Conn struct {
	net.Conn
	t        *Tracker
	reads    atomic.Uint64 // bytes read so far
	idleMark atomic.Uint64 // reads at the last Idle
	busy     atomic.Bool   // a request is being handled
	start    time.Time
	once     sync.Once
}

// Track wraps c and follows it until it is closed.
func (t *Tracker) Track(c net.Conn) *Conn {
	tc := &Conn{Conn: c, t: t, start: time.Now()}
	t.mu.Lock()
	if t.conns == nil {
		t.conns = make(map[*Conn]struct{})
	}
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc
}

// Read reads from the connection, noting that a request has begun when
// bytes arrive.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(uint64(n))
	}
	return n, err
}

// Close closes the connection and forgets it.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

// Busy marks a request as being handled: its bytes have been read and its
// response is not yet written.
func (c *Conn) Busy() { c.busy.Store(true) }

// Idle marks the connection as between requests: the last response is
// written and no byte of a next request has been read.
func (c *Conn) Idle() {
	c.idleMark.Store(c.reads.Load())
	c.busy.Store(false)
}

// active reports whether a request is in progress on c: being handled, or
// some of it read since the connection was last idle.
func (c *Conn) active() bool {
	return c.busy.Load() || c.reads.Load() != c.idleMark.Load()
}

// pending reports whether bytes the front end has not read yet wait in the
// kernel's receive buffer.
func (c *Conn) pending() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	return n > 0
}

// Active returns the number of connections with a request in progress.
func (t *Tracker) Active() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for c := range t.conns {
		if c.active() {
			n++
		}
	}
	return n
}

// Len returns the number of open connections.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// CloseIdle closes every connection that does not hold shutdown: idle
// between requests, or silent (nothing read, nothing pending) for
// SilentGrace. It returns the number of connections left open.
func (t *Tracker) CloseIdle() int {
	t.mu.Lock()
	var idle []*Conn
	for c := range t.conns {
		if c.active() || c.pending() {
			continue
		}
		if c.reads.Load() == 0 && time.Since(c.start) < SilentGrace {
			continue
		}
		idle = append(idle, c)
	}
	left := len(t.conns) - len(idle)
	t.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return left
}

// CloseAll closes every connection at once.
func (t *Tracker) CloseAll() {
	t.mu.Lock()
	all := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		all = append(all, c)
	}
	t.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// Wait closes idle connections, now and as they become idle, until none is
// left (it returns nil) or ctx ends (it returns ctx's error). The caller
// must already have stopped keep-alive, so that busy connections close
// after their response.
func (t *Tracker) Wait(ctx context.Context) error {
	interval := time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if t.CloseIdle() == 0 {
			return nil
		}
		timer.Reset(interval)
		interval = min(2*interval, 50*time.Millisecond)
	}
}

// TrackListener wraps ln so that every connection it accepts is tracked
// by t.
func TrackListener(ln net.Listener, t *Tracker) net.Listener {
	return &trackListener{Listener: ln, t: t}
}

type trackListener struct {
	net.Listener
	t *Tracker
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.t.Track(c), nil
}

// CloseWrite shuts down the writing side when the connection supports it
// (TCP and UNIX do), so that net/http can close a connection gracefully.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

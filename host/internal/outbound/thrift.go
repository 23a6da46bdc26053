package outbound

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi"
)

// thriftClient is one configured Thrift client: a pool of at most Size
// connections to its endpoint.
type thriftClient struct {
	reg     *Registry
	cfg     ThriftConfig
	key     string
	refs    int // guarded by reg.mu
	header  bool
	compact bool
	slots   chan struct{} // one token per connection that may be open
	inUse   atomic.Int64

	mu     sync.Mutex
	idle   []*tconn
	closed bool
}

type tconn struct {
	conn    net.Conn
	created time.Time
	r       *bufio.Reader            // framed
	ht      *thrift.THeaderTransport // THeader
}

func newThriftClient(r *Registry, cfg ThriftConfig, key string) *thriftClient {
	if cfg.Size <= 0 {
		cfg.Size = DefaultThriftSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultThriftTimeout
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 1
	}
	if cfg.Protocol == "" {
		cfg.Protocol = DefaultThriftProtocol
	}
	c := &thriftClient{reg: r, cfg: cfg, key: key, slots: make(chan struct{}, cfg.Size)}
	c.header = strings.HasPrefix(cfg.Protocol, "header")
	c.compact = strings.HasSuffix(cfg.Protocol, "compact")
	return c
}

func (c *thriftClient) close() {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, tc := range idle {
		tc.conn.Close()
	}
}

// get returns a pooled connection younger than max_age, or a new one.
// The caller holds a slot.
func (c *thriftClient) get(ctx context.Context, limit int64) (*tconn, *Error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		tc := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if time.Since(tc.created) < c.cfg.MaxAge || c.cfg.MaxAge <= 0 {
			c.mu.Unlock()
			return tc, nil
		}
		tc.conn.Close()
	}
	c.mu.Unlock()
	network, addr := "tcp", c.cfg.Endpoint
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:") {
		network, addr = "unix", strings.TrimPrefix(addr, "unix:")
	}
	var d net.Dialer
	var err error
	for attempt := 0; attempt < c.cfg.MaxRetries; attempt++ {
		var conn net.Conn
		if conn, err = d.DialContext(ctx, network, addr); err == nil {
			tc := &tconn{conn: conn, created: time.Now()}
			if c.header {
				id := thrift.THeaderProtocolBinary
				if c.compact {
					id = thrift.THeaderProtocolCompact
				}
				frame := int32(min(limit+1024, int64(thrift.THeaderMaxFrameSize)))
				// Buffered, so that a call's frame leaves in one write.
				tc.ht = thrift.NewTHeaderTransportConf(thrift.NewTBufferedTransport(thrift.NewTSocketFromConnConf(conn, nil), 4096),
					&thrift.TConfiguration{THeaderProtocolID: &id, MaxFrameSize: frame, MaxMessageSize: frame})
			} else {
				tc.r = bufio.NewReader(conn)
			}
			c.metricsActive(1)
			return tc, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx, "thrift client "+c.cfg.Name+": connect to "+c.cfg.Endpoint)
	}
	return nil, errorf(abi.ErrConnect, "thrift client %s: connect to %s (%d attempts, NAME.max_retries): %v", c.cfg.Name, c.cfg.Endpoint, c.cfg.MaxRetries, err)
}

func (c *thriftClient) metricsActive(d float64) {
	c.reg.metrics.poolActive.WithLabelValues(c.cfg.Name).Add(d)
}

// put returns a healthy connection to the pool, or closes it.
func (c *thriftClient) put(tc *tconn, ok bool) {
	c.mu.Lock()
	if ok && !c.closed && (c.cfg.MaxAge <= 0 || time.Since(tc.created) < c.cfg.MaxAge) {
		c.idle = append(c.idle, tc)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	tc.conn.Close()
	c.metricsActive(-1)
}

// Thrift sends msg, one complete Thrift message, through the client named
// client; msg is copied.
func (s *Set) Thrift(req *Request, client string, msg []byte) (*Call, *Error) {
	c := s.thrift[client]
	if c == nil {
		return nil, errorf(abi.ErrNotFound, "no Thrift client %q: set %s.endpoint in the app section", client, client)
	}
	h, err := peekMessage(msg)
	if err != nil {
		return nil, errorf(abi.ErrInvalid, "thrift client %s: the message does not parse: %v", client, err)
	}
	if h.compact != c.compact {
		want := "binary"
		if c.compact {
			want = "compact"
		}
		return nil, errorf(abi.ErrInvalid, "thrift client %s: the message is not in the %s protocol that %s.protocol = %s sends", client, want, client, c.cfg.Protocol)
	}
	if h.typ != abi.ThriftCall && h.typ != abi.ThriftOneway {
		return nil, errorf(abi.ErrInvalid, "thrift client %s: message type %d is neither a call nor oneway", client, h.typ)
	}
	msg = append([]byte(nil), msg...)
	m := s.reg.metrics.thrift(client, h.name)
	return s.start(req, c.cfg.Timeout, func(ctx context.Context) ([]byte, *Error) {
		start := time.Now()
		out, e := c.call(ctx, req, msg, h, s.cfg.MaxResponseBody)
		m.observe(out, e, time.Since(start))
		return out, e
	})
}

func (c *thriftClient) call(ctx context.Context, req *Request, msg []byte, h msgHeader, max int64) ([]byte, *Error) {
	what := "thrift client " + c.cfg.Name + ": " + h.name
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError(ctx, what+": waiting for a connection (NAME.size)")
	}
	c.inUse.Add(1)
	defer func() {
		c.inUse.Add(-1)
		<-c.slots
	}()
	tc, e := c.get(ctx, max)
	if e != nil {
		return nil, e
	}
	deadline, _ := ctx.Deadline()
	tc.conn.SetDeadline(deadline)
	// A request that ends cuts the call short.
	stop := context.AfterFunc(ctx, func() { tc.conn.SetDeadline(time.Unix(1, 0)) })
	reply, err := c.exchange(ctx, tc, req, msg, h, max, deadline)
	if !stop() && err != nil {
		err = ctxError(ctx, "call")
	}
	if err != nil {
		c.put(tc, false)
		if err.Msg == "" {
			err.Msg = what
		} else {
			err.Msg = what + ": " + err.Msg
		}
		return nil, err
	}
	c.put(tc, true)
	return reply, nil
}

func (c *thriftClient) exchange(ctx context.Context, tc *tconn, req *Request, msg []byte, h msgHeader, limit int64, deadline time.Time) ([]byte, *Error) {
	if tc.ht != nil {
		tc.ht.ClearWriteHeaders()
		for _, kv := range req.Trace.thriftHeaders() {
			tc.ht.SetWriteHeader(kv[0], kv[1])
		}
		tc.ht.SetWriteHeader("User-Agent", c.reg.opts.Service)
		if !deadline.IsZero() {
			ms := max(int64((time.Until(deadline)+time.Millisecond-1)/time.Millisecond), 1)
			tc.ht.SetWriteHeader("Deadline-Budget", strconv.FormatInt(ms, 10))
		}
		if _, err := tc.ht.Write(msg); err != nil {
			return nil, ioError(ctx, "send", err)
		}
		if err := tc.ht.Flush(ctx); err != nil {
			return nil, ioError(ctx, "send", err)
		}
	} else {
		frame := make([]byte, 4, 4+len(msg))
		binary.BigEndian.PutUint32(frame, uint32(len(msg)))
		if _, err := tc.conn.Write(append(frame, msg...)); err != nil {
			return nil, ioError(ctx, "send", err)
		}
	}
	if h.typ == abi.ThriftOneway {
		return []byte{}, nil
	}
	var reply []byte
	if tc.ht != nil {
		if err := tc.ht.ReadFrame(ctx); err != nil {
			var pe thrift.TProtocolException
			if errors.As(err, &pe) && pe.TypeId() == thrift.SIZE_LIMIT {
				return nil, errorf(abi.ErrTooLarge, "reply frame exceeds max_response_body (%d bytes)", limit)
			}
			return nil, ioError(ctx, "read reply", err)
		}
		n := tc.ht.RemainingBytes()
		if n == thrift.UnknownRemainingBytes || n > uint64(limit) {
			return nil, errorf(abi.ErrProtocol, "reply frame with a transform (compression) or larger than max_response_body")
		}
		reply = make([]byte, n)
		if _, err := io.ReadFull(tc.ht, reply); err != nil {
			return nil, ioError(ctx, "read reply", err)
		}
	} else {
		var size [4]byte
		if _, err := io.ReadFull(tc.r, size[:]); err != nil {
			return nil, ioError(ctx, "read reply", err)
		}
		n := binary.BigEndian.Uint32(size[:])
		if int64(n) > limit {
			return nil, errorf(abi.ErrTooLarge, "reply frame of %d bytes exceeds max_response_body (%d bytes), or the peer does not speak framed Thrift", n, limit)
		}
		reply = make([]byte, n)
		if _, err := io.ReadFull(tc.r, reply); err != nil {
			return nil, ioError(ctx, "read reply", err)
		}
	}
	rh, err := peekMessage(reply)
	switch {
	case err != nil:
		return nil, errorf(abi.ErrProtocol, "reply is not a Thrift message: %v", err)
	case rh.typ != abi.ThriftReply && rh.typ != abi.ThriftException:
		return nil, errorf(abi.ErrProtocol, "reply has message type %d, want reply or exception", rh.typ)
	case rh.seqID != h.seqID:
		return nil, errorf(abi.ErrProtocol, "reply has sequence id %d, want %d", rh.seqID, h.seqID)
	}
	return reply, nil
}

// ioError classifies an error reading or writing a connection.
func ioError(ctx context.Context, what string, err error) *Error {
	switch {
	case ctx.Err() != nil:
		return ctxError(ctx, what)
	case isTimeout(err):
		return errorf(abi.ErrTimeout, "%s: timed out", what)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(abi.ErrProtocol, "%s: the peer closed the connection", what)
	}
	return errorf(abi.ErrProtocol, "%s: %v", what, err)
}

// msgHeader is the start of a Thrift message.
type msgHeader struct {
	name    string
	typ     uint32
	seqID   int32
	compact bool
}

// peekMessage parses a message header in the strict binary, old binary
// or compact protocol.
func peekMessage(b []byte) (msgHeader, error) {
	var h msgHeader
	short := errors.New("too short for a message header")
	if len(b) < 4 {
		return h, short
	}
	switch {
	case b[0] == 0x80 && b[1] == 0x01:
		h.typ = uint32(b[3] & 7)
		if len(b) < 8 {
			return h, short
		}
		n := binary.BigEndian.Uint32(b[4:])
		if uint64(len(b)) < 12+uint64(n) {
			return h, short
		}
		h.name = string(b[8 : 8+n])
		h.seqID = int32(binary.BigEndian.Uint32(b[8+n:]))
	case b[0] == 0x82 && b[1]&0x1f == 1:
		h.compact = true
		h.typ = uint32(b[1] >> 5)
		seq, k := binary.Uvarint(b[2:])
		if k <= 0 {
			return h, short
		}
		n, k2 := binary.Uvarint(b[2+k:])
		if k2 <= 0 || uint64(len(b)) < uint64(2+k+k2)+n {
			return h, short
		}
		h.seqID = int32(uint32(seq))
		h.name = string(b[2+k+k2 : 2+k+k2+int(n)])
	default:
		n := binary.BigEndian.Uint32(b)
		if n == 0 || n >= 1<<16 || uint64(len(b)) < 4+uint64(n)+5 {
			return h, fmt.Errorf("unknown protocol (first bytes % x)", b[:4])
		}
		h.name = string(b[4 : 4+n])
		h.typ = uint32(b[4+n])
		h.seqID = int32(binary.BigEndian.Uint32(b[5+n:]))
	}
	if h.typ < abi.ThriftCall || h.typ > abi.ThriftOneway {
		return h, fmt.Errorf("bad message type %d", h.typ)
	}
	return h, nil
}

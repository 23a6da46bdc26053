// Package thriftfront is the Thrift front end: the host owns each
// connection and its framing, detects the client type (unframed or framed
// binary or compact, or THeader with either protocol inside), reads one
// whole message, hands its bytes to a guest instance and writes the reply
// back in the client's own framing.
//
// A call takes an instance only once its whole message has been read, so
// slow clients cannot hold a worker. Connections are never refused for
// load: a call beyond max_concurrency is answered at once with a
// TApplicationException (INTERNAL_ERROR, "server overloaded"), and the
// connection stays usable.
package thriftfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/frontend"
	"github.com/wasmserve/wasmserve/host/internal/listen"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// Options configure a Server.
type Options struct {
	Handler        pool.Handler
	MaxFrameSize   int64 // largest frame; larger closes the connection
	MaxMessageSize int64 // largest message, after zlib inflation
	// Keepalive is how long a connection may wait between calls, from
	// its last reply to the first byte of its next call; 0 = no limit.
	Keepalive time.Duration
	// ReadTimeout is how long a call may take to arrive, from its first
	// byte to its last; 0 = no limit.
	ReadTimeout time.Duration
	// WriteTimeout is how long writing one reply may take; 0 = no limit.
	WriteTimeout time.Duration
	// AccessLog logs one INFO line per call.
	AccessLog bool
	Logger    *slog.Logger
	Observer  Observer // nil = none
}

// retainLimit is the largest buffer a connection keeps between calls;
// a larger one, grown for one big message, is dropped after it.
const retainLimit = 64 << 10

// Observer receives per-call events, for metrics.
type Observer interface {
	ConnOpened()
	ConnClosed()
	RequestStarted()
	RequestDone(method string, success bool, exceptionType string, d time.Duration)
}

// Server serves Thrift on any number of listeners. Use it once.
type Server struct {
	opts Options
	log  *slog.Logger
	cfg  *thrift.TConfiguration
	core *frontend.Core
}

// New returns a Server for opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.core = frontend.New("thrift", s.log)
	s.cfg = &thrift.TConfiguration{
		MaxFrameSize:   int32(min(opts.MaxFrameSize, 1<<31-1)),
		MaxMessageSize: int32(min(opts.MaxMessageSize, 1<<31-1)),
	}
	return s
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("thriftfront: server closed")

// Serve accepts connections on ln until Shutdown or Close, or until ln's
// Accept fails for good, and serves each on its own goroutine. Temporary
// accept errors (out of file descriptors) are retried with back-off and
// logged. It returns ErrServerClosed once ln is closed.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.core.Serve(ln, s.serveConn); err != nil {
		return err
	}
	return ErrServerClosed
}

// SetShuttingDown makes every connection close after its next reply.
func (s *Server) SetShuttingDown() { s.core.SetStopping() }

// Shutdown closes the listeners, closes idle connections and waits for
// connections with a call in progress to finish, until ctx ends. A
// connection in the middle of a call's bytes holds it for at most
// ReadTimeout.
func (s *Server) Shutdown(ctx context.Context) error { return s.core.Shutdown(ctx) }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.core.Close()
	return nil
}

// Active returns the number of connections with a call in progress.
func (s *Server) Active() int { return s.core.Conns.Active() }

// recorder is a transport that keeps every byte read through it, up to
// limit bytes per message: an unframed message has no length to check in
// advance, so this is what bounds the memory one message can take.
type recorder struct {
	thrift.TTransport
	buf   bytes.Buffer
	limit int
}

// errMessageTooLarge is returned by a recorder whose message grew past
// max_message_size.
var errMessageTooLarge = errors.New("message exceeds max_message_size")

func (r *recorder) Read(p []byte) (int, error) {
	if r.limit > 0 && len(p) > r.limit-r.buf.Len()+1 {
		p = p[:max(r.limit-r.buf.Len()+1, 1)]
	}
	n, err := r.TTransport.Read(p)
	r.buf.Write(p[:n])
	if r.limit > 0 && r.buf.Len() > r.limit {
		return n, errMessageTooLarge
	}
	return n, err
}

// timedConn counts the bytes read from a connection and owns its
// deadlines: Read waits at most keepalive for the first byte of a call and
// readTimeout from that byte to the call's end; Write is bounded by the
// write deadline the reply writer sets. The thrift library's own deadline
// calls (it clears them on every read) are ignored.
type timedConn struct {
	net.Conn
	n           int64
	keepalive   time.Duration
	readTimeout time.Duration
	inCall      bool // a byte of the current call has been read
}

func (c *timedConn) Read(p []byte) (int, error) {
	if !c.inCall && c.keepalive > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.keepalive))
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.inCall {
		c.inCall = true
		var d time.Time
		if c.readTimeout > 0 {
			d = time.Now().Add(c.readTimeout)
		}
		c.Conn.SetReadDeadline(d)
	}
	c.n += int64(n)
	return n, err
}

// endCall marks the end of a call's bytes: the next read waits for a new
// call, under keepalive.
func (c *timedConn) endCall() {
	c.inCall = false
	c.Conn.SetReadDeadline(time.Time{})
}

func (c *timedConn) SetDeadline(time.Time) error      { return nil }
func (c *timedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *timedConn) SetWriteDeadline(time.Time) error { return nil }

// replyWriter buffers what is written to a connection until Flush, so a
// reply goes out in one write: THeaderTransport writes a frame's length and
// its payload separately.
type replyWriter struct {
	thrift.TTransport
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration // write_timeout for one reply; 0 = none
}

func (r *replyWriter) Write(p []byte) (int, error) { return r.w.Write(p) }

func (r *replyWriter) Flush(ctx context.Context) error {
	if r.timeout > 0 {
		r.conn.SetWriteDeadline(time.Now().Add(r.timeout))
	}
	if err := r.w.Flush(); err != nil {
		return thrift.NewTTransportExceptionFromError(err)
	}
	return r.TTransport.Flush(ctx)
}

// message is one call read from a connection.
type message struct {
	name  string
	typ   thrift.TMessageType
	seqID int32
	proto abi.ThriftProtocol
	body  []byte
}

func (s *Server) serveConn(c *listen.Conn) {
	if o := s.opts.Observer; o != nil {
		o.ConnOpened()
		defer o.ConnClosed()
	}
	defer c.Close()
	remote := c.RemoteAddr().String()
	cc := &timedConn{Conn: c, keepalive: s.opts.Keepalive, readTimeout: s.opts.ReadTimeout}
	sock := thrift.NewTSocketFromConnConf(cc, s.cfg)
	trans := thrift.NewTHeaderTransportConf(&replyWriter{TTransport: sock, w: bufio.NewWriter(sock), conn: c, timeout: s.opts.WriteTimeout}, s.cfg)
	rec := &recorder{TTransport: trans, limit: int(s.cfg.GetMaxMessageSize())}
	protos := map[abi.ThriftProtocol]thrift.TProtocol{
		abi.ThriftBinary:  thrift.NewTBinaryProtocolConf(rec, s.cfg),
		abi.ThriftCompact: thrift.NewTCompactProtocolConf(rec, s.cfg),
	}
	ctx := context.Background()
	for {
		before := cc.n
		msg, err := s.read(ctx, trans, rec, protos)
		if err != nil {
			if errors.Is(err, io.EOF) && cc.n != before {
				err = errors.New("connection closed in the middle of a message (truncated)")
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if cc.n == before {
					s.log.Debug("thrift: closing idle connection", "remote", remote, "keepalive", s.opts.Keepalive)
					return
				}
				err = fmt.Errorf("call not received whole within read_timeout (%s)", s.opts.ReadTimeout)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !s.core.Stopping() {
				s.log.Warn("thrift: closing connection", "remote", remote, "reason", err)
			}
			return
		}
		cc.endCall()
		if rec.buf.Cap() > retainLimit {
			rec.buf = bytes.Buffer{}
		}
		c.Busy()
		err = s.call(ctx, trans, msg, remote)
		c.Idle()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Warn("thrift: closing connection", "remote", remote,
					"reason", fmt.Sprintf("reply not written within write_timeout (%s): the client does not read", s.opts.WriteTimeout))
			} else {
				s.log.Debug("thrift: closing connection: write reply", "remote", remote, "error", err)
			}
			return
		}
		if s.core.Stopping() {
			return
		}
	}
}

// read reads the next whole message and reports its protocol and header.
func (s *Server) read(ctx context.Context, trans *thrift.THeaderTransport, rec *recorder, protos map[abi.ThriftProtocol]thrift.TProtocol) (*message, error) {
	if err := trans.ReadFrame(ctx); err != nil {
		return nil, s.describe(err, true)
	}
	m := &message{proto: abi.ThriftBinary}
	if trans.Protocol() == thrift.THeaderProtocolCompact {
		m.proto = abi.ThriftCompact
	}
	p := protos[m.proto]
	rec.buf.Reset()
	var err error
	if m.name, m.typ, m.seqID, err = p.ReadMessageBegin(ctx); err != nil {
		return nil, s.describe(err, false)
	}
	if m.typ != thrift.CALL && m.typ != thrift.ONEWAY {
		return nil, fmt.Errorf("message %q has type %d, want call or oneway", m.name, m.typ)
	}
	if err := p.Skip(ctx, thrift.STRUCT); err != nil {
		return nil, s.describe(err, false)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		return nil, s.describe(err, false)
	}
	if rec.buf.Cap() > retainLimit {
		// The buffer goes with the message rather than stay with the
		// connection; serveConn starts a new one.
		m.body = rec.buf.Bytes()
	} else {
		m.body = bytes.Clone(rec.buf.Bytes())
	}
	return m, nil
}

// describe turns a read error into the reason logged when the connection
// is closed; io.EOF means the client closed it between messages. frame
// says whether the error came from reading the frame (its length and,
// for THeader, its headers) rather than the message inside it.
func (s *Server) describe(err error, frame bool) error {
	var te thrift.TTransportException
	if errors.As(err, &te) && errors.Is(te.Err(), io.EOF) {
		return io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed in the middle of a message (truncated)")
	}
	if errors.Is(err, errMessageTooLarge) {
		return fmt.Errorf("message exceeds max_message_size (%d bytes, counted after zlib inflation)", s.cfg.GetMaxMessageSize())
	}
	var pe thrift.TProtocolException
	if errors.As(err, &pe) && pe.TypeId() == thrift.SIZE_LIMIT {
		if frame {
			return fmt.Errorf("%w: larger than max_frame_size (%d bytes), negative, or not Thrift at all", err, s.cfg.GetMaxFrameSize())
		}
		return fmt.Errorf("%w: message exceeds max_message_size (%d bytes, counted after zlib inflation)", err, s.cfg.GetMaxMessageSize())
	}
	return err
}

// call runs one message through a guest and writes the reply. The guest's
// reply is copied out before the instance goes back to the pool, so a
// client that does not read holds no worker, only its connection, for
// write_timeout. It returns the error of writing the reply, after which
// the connection is unusable.
func (s *Server) call(ctx context.Context, trans *thrift.THeaderTransport, m *message, remote string) error {
	start := time.Now()
	if o := s.opts.Observer; o != nil {
		o.RequestStarted()
	}
	headers := trans.GetReadHeaders()
	var fields []byte
	for k, v := range headers {
		fields = abi.AppendField(fields, k, v)
	}
	if b, ok := header(headers, "Deadline-Budget"); ok {
		if ms, err := strconv.ParseInt(b, 10, 64); err == nil && ms > 0 {
			ctx = pool.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		}
	}
	trace, _ := header(headers, "Trace")
	oneway := m.typ == thrift.ONEWAY
	req := abi.RequestInfo{
		Kind: abi.KindThrift, Method: m.name, Headers: fields, Body: m.body, Remote: remote,
		ThriftProtocol: m.proto, ThriftType: uint32(m.typ), ThriftSeqID: m.seqID,
	}
	var reply []byte
	var replyHeaders [][2]string
	status := uint32(0)
	worker := -1
	resp, err := s.opts.Handler.Handle(ctx, &req, trace)
	if err == nil {
		worker = resp.Worker
		status = resp.Status
		reply = append(reply, resp.Body...)
		_ = resp.Headers.Range(func(k, v []byte) bool {
			replyHeaders = append(replyHeaders, [2]string{string(k), string(v)})
			return true
		})
		resp.Release()
	}
	// result names the call's outcome in the access log: ok, exception (the
	// guest answered with one), or the failure answered for it.
	success, excType, result := err == nil && (status == 0 || status == 200), "", "ok"
	if success && len(reply) > 0 {
		if _, typ, _, perr := peekType(reply, m.proto); perr == nil && typ == thrift.EXCEPTION {
			success, excType, result = false, "TApplicationException", "exception"
		}
	}
	defer func() {
		d := time.Since(start)
		if o := s.opts.Observer; o != nil {
			o.RequestDone(m.name, success, excType, d)
		}
		if s.opts.AccessLog {
			args := []any{"method", m.name, "seqid", m.seqID, "status", result, "duration", d,
				"worker", worker, "remote", remote}
			if oneway {
				args = append(args, "oneway", true)
			}
			if trace != "" {
				args = append(args, "trace", trace)
			}
			s.log.Info("thrift call", args...)
		}
	}()
	var exc thrift.TApplicationException
	switch {
	case err != nil:
		a := frontend.AnswerFor(ctx, err)
		if a.Worker >= 0 {
			worker = a.Worker
		}
		result = "error"
		if a.Fault != nil {
			result = a.Fault.Kind.String()
		} else if errors.Is(err, pool.ErrOverloaded) {
			result = "overloaded"
		}
		if a.Unexpected {
			s.log.Error("thrift: handle call", "method", m.name, "error", err)
		}
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, m.name+": "+a.Detail)
	case status != 0 && status != 200:
		result = "error"
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, m.name+": "+string(reply))
	}
	if oneway {
		if err != nil {
			s.log.Warn("thrift: oneway call failed", "method", m.name, "remote", remote, "error", err)
		}
		return nil
	}
	if exc != nil {
		excType = "TApplicationException"
		success = false
		reply = s.exception(ctx, m, exc)
		replyHeaders = nil
	}
	trans.ClearWriteHeaders()
	for _, h := range replyHeaders {
		trans.SetWriteHeader(h[0], h[1])
	}
	if _, err := trans.Write(reply); err != nil {
		return err
	}
	return trans.Flush(ctx)
}

// exception encodes exc as the reply to m in m's protocol.
func (s *Server) exception(ctx context.Context, m *message, exc thrift.TApplicationException) []byte {
	buf := thrift.NewTMemoryBuffer()
	var p thrift.TProtocol = thrift.NewTBinaryProtocolConf(buf, s.cfg)
	if m.proto == abi.ThriftCompact {
		p = thrift.NewTCompactProtocolConf(buf, s.cfg)
	}
	p.WriteMessageBegin(ctx, m.name, thrift.EXCEPTION, m.seqID)
	exc.Write(ctx, p)
	p.WriteMessageEnd(ctx)
	p.Flush(ctx)
	return buf.Bytes()
}

// peekType reads the message header of an encoded message.
func peekType(b []byte, proto abi.ThriftProtocol) (string, thrift.TMessageType, int32, error) {
	buf := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	var p thrift.TProtocol = thrift.NewTBinaryProtocolConf(buf, nil)
	if proto == abi.ThriftCompact {
		p = thrift.NewTCompactProtocolConf(buf, nil)
	}
	return p.ReadMessageBegin(context.Background())
}

func header(h thrift.THeaderMap, key string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/listen"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// Options configure a Server.
type Options struct {
	Handler        pool.Handler
	MaxFrameSize   int64 // largest frame; larger closes the connection
	MaxMessageSize int64 // largest message
	Logger         *slog.Logger
	Observer       Observer // nil = none
}

// Observer receives per-call events, for metrics.
type Observer interface {
	ConnOpened()
	ConnClosed()
	RequestStarted()
	RequestDone(method string, success bool, exceptionType string, d time.Duration)
}

// Server serves Thrift on any number of listeners. Use it once.
type Server struct {
	opts     Options
	log      *slog.Logger
	cfg      *thrift.TConfiguration
	conns    listen.Tracker
	stopping atomic.Bool
	mu       sync.Mutex
	lns      []net.Listener
}

// New returns a Server for opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.cfg = &thrift.TConfiguration{
		MaxFrameSize:   int32(min(opts.MaxFrameSize, 1<<31-1)),
		MaxMessageSize: int32(min(opts.MaxMessageSize, 1<<31-1)),
	}
	return s
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("thriftfront: server closed")

// Serve accepts connections on ln until Shutdown or Close, or until ln's
// Accept fails, and serves each on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	tl := listen.TrackListener(ln, &s.conns)
	for {
		c, err := tl.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.serveConn(c.(*listen.Conn))
	}
}

// SetShuttingDown makes every connection close after its next reply.
func (s *Server) SetShuttingDown() { s.stopping.Store(true) }

// Shutdown closes the listeners, closes idle connections and waits for
// connections with a call in progress to finish, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.closeListeners()
	return s.conns.Wait(ctx)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.stopping.Store(true)
	s.closeListeners()
	s.conns.CloseAll()
	return nil
}

// Active returns the number of connections with a call in progress.
func (s *Server) Active() int { return s.conns.Active() }

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.lns {
		ln.Close()
	}
}

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

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// replyWriter buffers what is written to a connection until Flush, so a
// reply goes out in one write: THeaderTransport writes a frame's length and
// its payload separately.
type replyWriter struct {
	thrift.TTransport
	w *bufio.Writer
}

func (r *replyWriter) Write(p []byte) (int, error) { return r.w.Write(p) }

func (r *replyWriter) Flush(ctx context.Context) error {
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
	cc := &countingConn{Conn: c}
	sock := thrift.NewTSocketFromConnConf(cc, s.cfg)
	trans := thrift.NewTHeaderTransportConf(&replyWriter{TTransport: sock, w: bufio.NewWriter(sock)}, s.cfg)
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
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !s.stopping.Load() {
				s.log.Warn("thrift: closing connection", "remote", remote, "reason", err)
			}
			return
		}
		c.Busy()
		s.call(ctx, trans, msg, remote)
		c.Idle()
		if s.stopping.Load() {
			return
		}
	}
}

// read reads the next whole message and reports its protocol and header.
func (s *Server) read(ctx context.Context, trans *thrift.THeaderTransport, rec *recorder, protos map[abi.ThriftProtocol]thrift.TProtocol) (*message, error) {
	if err := trans.ReadFrame(ctx); err != nil {
		return nil, s.describe(err)
	}
	m := &message{proto: abi.ThriftBinary}
	if trans.Protocol() == thrift.THeaderProtocolCompact {
		m.proto = abi.ThriftCompact
	}
	p := protos[m.proto]
	rec.buf.Reset()
	var err error
	if m.name, m.typ, m.seqID, err = p.ReadMessageBegin(ctx); err != nil {
		return nil, s.describe(err)
	}
	if m.typ != thrift.CALL && m.typ != thrift.ONEWAY {
		return nil, fmt.Errorf("message %q has type %d, want call or oneway", m.name, m.typ)
	}
	if err := p.Skip(ctx, thrift.STRUCT); err != nil {
		return nil, s.describe(err)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		return nil, s.describe(err)
	}
	m.body = bytes.Clone(rec.buf.Bytes())
	return m, nil
}

// describe turns a read error into the reason logged when the connection
// is closed; io.EOF means the client closed it between messages.
func (s *Server) describe(err error) error {
	var te thrift.TTransportException
	if errors.As(err, &te) && errors.Is(te.Err(), io.EOF) {
		return io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed in the middle of a message (truncated)")
	}
	if errors.Is(err, errMessageTooLarge) {
		return fmt.Errorf("message exceeds max_message_size (%d bytes)", s.cfg.GetMaxMessageSize())
	}
	var pe thrift.TProtocolException
	if errors.As(err, &pe) && pe.TypeId() == thrift.SIZE_LIMIT {
		if strings.Contains(pe.Error(), "frame") {
			return fmt.Errorf("%w: larger than max_frame_size (%d bytes), negative, or not Thrift at all", err, s.cfg.GetMaxFrameSize())
		}
		return fmt.Errorf("%w: message exceeds max_message_size (%d bytes)", err, s.cfg.GetMaxMessageSize())
	}
	return err
}

// call runs one message through a guest and writes the reply.
func (s *Server) call(ctx context.Context, trans *thrift.THeaderTransport, m *message, remote string) {
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
	resp, err := s.opts.Handler.Handle(ctx, &req, trace)
	if err == nil {
		status = resp.Status
		reply = append(reply, resp.Body...)
		_ = resp.Headers.Range(func(k, v []byte) bool {
			replyHeaders = append(replyHeaders, [2]string{string(k), string(v)})
			return true
		})
		resp.Release()
	}
	success, excType := err == nil && (status == 0 || status == 200), ""
	if success && len(reply) > 0 {
		if _, typ, _, perr := peekType(reply, m.proto); perr == nil && typ == thrift.EXCEPTION {
			success, excType = false, "TApplicationException"
		}
	}
	defer func() {
		if o := s.opts.Observer; o != nil {
			o.RequestDone(m.name, success, excType, time.Since(start))
		}
	}()
	if oneway {
		if err != nil {
			s.log.Warn("thrift: oneway call failed", "method", m.name, "remote", remote, "error", err)
		}
		return
	}
	var exc thrift.TApplicationException
	var f *engine.Fault
	switch {
	case errors.Is(err, pool.ErrOverloaded):
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, "server overloaded: max_concurrency calls in progress, retry later")
	case errors.As(err, &f):
		msg := fmt.Sprintf("%s: guest %s on worker %d", m.name, f.Kind, f.Worker)
		if f.Kind == engine.Timeout {
			msg = fmt.Sprintf("%s: guest exceeded its timeout (request_timeout or Deadline-Budget) on worker %d", m.name, f.Worker)
		}
		if f.Message != "" {
			msg += ": " + f.Message
		}
		msg += "; the instance was replaced"
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, msg)
	case err != nil:
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, m.name+": "+err.Error())
	case status != 0 && status != 200:
		exc = thrift.NewTApplicationException(thrift.INTERNAL_ERROR, m.name+": "+string(reply))
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
	if _, err := trans.Write(reply); err == nil {
		err = trans.Flush(ctx)
		if err != nil {
			s.log.Debug("thrift: write reply", "remote", remote, "error", err)
		}
	}
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

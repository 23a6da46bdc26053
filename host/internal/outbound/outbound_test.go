package outbound

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

// upstream is a real HTTP server on 127.0.0.1 counting the connections
// it accepts.
type upstream struct {
	url   string
	addr  string
	conns atomic.Int64
	srv   *http.Server
}

func startUpstream(t *testing.T, h http.Handler) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
	u.srv = &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func newSet(t *testing.T, opts Options, cfg Config) (*Registry, *Set) {
	t.Helper()
	r, err := NewRegistry(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Set(cfg)
	t.Cleanup(s.Close)
	return r, s
}

func request(ctx context.Context, d time.Duration) *Request {
	r := &Request{Ctx: ctx, Trace: TraceFrom(abi.KindHTTP, nil)}
	if d > 0 {
		r.Deadline = time.Now().Add(d)
	}
	return r
}

// get runs one GET through s and waits for it.
func get(t *testing.T, s *Set, req *Request, u string) (abi.Response, *Error) {
	t.Helper()
	c, e := s.HTTP(req, abi.AppendOutboundRequest(nil, "GET", u, nil, nil))
	if e != nil {
		return abi.Response{}, e
	}
	<-c.Done()
	rec, e := c.Result()
	if e != nil {
		return abi.Response{}, e
	}
	resp, err := abi.ParseResponse(rec)
	if err != nil {
		t.Fatal(err)
	}
	return resp, nil
}

func wantCode(t *testing.T, e *Error, code int32, substrs ...string) {
	t.Helper()
	if e == nil {
		t.Fatalf("call succeeded, want error %d", code)
	}
	if e.Code != code {
		t.Fatalf("error %d (%s), want %d", e.Code, e.Msg, code)
	}
	for _, s := range substrs {
		if !strings.Contains(e.Msg, s) {
			t.Errorf("message %q does not contain %q", e.Msg, s)
		}
	}
}

func TestAllowPatterns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, url string
		want         bool
	}{
		{"http://api.example.com", "http://api.example.com/x", true},
		{"http://api.example.com", "http://api.example.com:8080/x", false},
		{"http://api.example.com", "https://api.example.com/x", false},
		{"http://api.example.com:*", "http://api.example.com:8080/x", true},
		{"https://*.example.com", "https://a.b.example.com/", true},
		{"https://*.example.com", "https://example.com/", false},
		{"http://api.*.com", "http://api.foo.com/", true},
		{"http://api.*.com", "http://api.a.foo.com/", false},
		{"http://*", "http://anything.at.all/", true},
		{"http://*", "http://10.0.0.1/", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081/", false},
		{"http://[::1]:8080", "http://[::1]:8080/", true},
		{"http://example.com", "http://93.184.216.34/", false},
	}
	for _, c := range cases {
		a, err := newAllowList([]string{c.pattern})
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		u, _ := url.Parse(c.url)
		if got := a.allows(u); got != c.want {
			t.Errorf("%s allows %s = %t, want %t", c.pattern, c.url, got, c.want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://x/path", "http://a*b.com", "http://x:99999", "http://"} {
		if _, err := newAllowList([]string{bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

// resolver answers the names it has with fixed addresses, and asks the
// system for the others.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

func TestHTTPDenied(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	// other is allowed by names only, never as its literal address.
	other := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	_, port, _ := net.SplitHostPort(other.addr)
	admin := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "# HELP admin") }))
	_, adminPort, _ := net.SplitHostPort(admin.addr)
	res := resolver{
		"rebind.test":   {netip.MustParseAddr("127.0.0.1")},
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
	}
	_, s := newSet(t, Options{Resolver: res, Deny: []string{admin.addr}}, Config{HTTP: HTTPConfig{Allow: []string{
		up.url, "http://localhost:" + port, "http://rebind.test:" + port, "http://metadata.test", admin.url,
	}}})
	req := request(context.Background(), 5*time.Second)

	if resp, e := get(t, s, req, up.url+"/"); e != nil || string(resp.Body) != "reached" {
		t.Fatalf("allowed literal address: %v %q", e, resp.Body)
	}
	// Deny by default: the message names the URL and the key.
	_, e := get(t, s, req, "http://127.0.0.2:"+port+"/x")
	wantCode(t, e, abi.ErrDenied, "http://127.0.0.2:"+port+"/x", "http.allow")
	// Allowed names that resolve to loopback or link-local addresses.
	_, e = get(t, s, req, "http://localhost:"+port+"/")
	wantCode(t, e, abi.ErrDenied, "loopback")
	_, e = get(t, s, req, "http://rebind.test:"+port+"/")
	wantCode(t, e, abi.ErrDenied, "rebind.test resolves to 127.0.0.1:"+port, "loopback")
	_, e = get(t, s, req, "http://metadata.test/latest/meta-data")
	wantCode(t, e, abi.ErrDenied, "link-local")
	// The admin listener, even listed literally.
	_, e = get(t, s, req, admin.url+"/metrics")
	wantCode(t, e, abi.ErrDenied, "admin listener")
	if n := admin.conns.Load() + other.conns.Load(); n != 0 {
		t.Errorf("admin listener got %d connections", n)
	}
	// An admin listener on every interface: its port on a loopback address.
	_, s2 := newSet(t, Options{Deny: []string{":" + adminPort}}, Config{HTTP: HTTPConfig{Allow: []string{admin.url}}})
	_, e = get(t, s2, req, admin.url+"/metrics")
	wantCode(t, e, abi.ErrDenied, "admin listener")
}

func TestHTTPFanOutPoolAndTrace(t *testing.T) {
	t.Parallel()
	var seen sync.Map
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		case "/trace":
			seen.Store("trace", r.Header.Clone())
		}
		io.WriteString(w, "ok")
	}))
	_, s := newSet(t, Options{}, Config{HTTP: HTTPConfig{Allow: []string{up.url}, PoolMaxSize: 20}})
	req := request(context.Background(), 30*time.Second)

	// N calls to a 200 ms upstream, all started before any is waited on.
	const n = 16
	start := time.Now()
	var calls []*Call
	for range n {
		c, e := s.HTTP(req, abi.AppendOutboundRequest(nil, "GET", up.url+"/slow", nil, nil))
		if e != nil {
			t.Fatal(e)
		}
		calls = append(calls, c)
	}
	for _, c := range calls {
		<-c.Done()
		if _, e := c.Result(); e != nil {
			t.Fatal(e)
		}
	}
	if d := time.Since(start); d > n*200*time.Millisecond/2 {
		t.Errorf("%d parallel calls to a 200 ms upstream took %s: not parallel", n, d)
	}
	// Pool reuse: sequential calls share the open connections.
	before := up.conns.Load()
	for range 50 {
		if _, e := get(t, s, req, up.url+"/"); e != nil {
			t.Fatal(e)
		}
	}
	if opened := up.conns.Load() - before; opened > 2 {
		t.Errorf("50 sequential calls opened %d connections", opened)
	}
	// Trace headers: the inbound request's trace, a new span, its parent.
	in := abi.AppendField(nil, "X-Trace", "12345")
	in = abi.AppendField(in, "X-Span", "678")
	in = abi.AppendField(in, "X-Sampled", "1")
	treq := &Request{Ctx: context.Background(), Trace: TraceFrom(abi.KindHTTP, in)}
	if _, e := get(t, s, treq, up.url+"/trace"); e != nil {
		t.Fatal(e)
	}
	v, _ := seen.Load("trace")
	h := v.(http.Header)
	if h.Get("X-Trace") != "12345" || h.Get("X-Parent") != "678" || h.Get("X-Sampled") != "1" || h.Get("X-Span") == "" || h.Get("X-Span") == "678" {
		t.Errorf("trace headers = %v", h)
	}
	if tp := h.Get("Traceparent"); tp != "00-"+fmt.Sprintf("%032x", 12345)+"-"+fmt.Sprintf("%016x", mustUint(h.Get("X-Span")))+"-01" {
		t.Errorf("traceparent = %q", tp)
	}
}

func mustUint(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func TestHTTPFaults(t *testing.T) {
	t.Parallel()
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/reset":
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		case "/huge":
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			chunk := make([]byte, 64<<10)
			for i := 0; i < (1<<30)/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/huge-chunked":
			chunk := make([]byte, 64<<10)
			for i := 0; i < (1<<30)/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}))
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downURL := "http://" + down.Addr().String()
	down.Close()
	r, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Set(Config{MaxResponseBody: 1 << 20, HTTP: HTTPConfig{Allow: []string{up.url, downURL}, Timeout: 300 * time.Millisecond}})

	req := request(context.Background(), 0)
	_, e := get(t, s, req, downURL+"/")
	wantCode(t, e, abi.ErrConnect, "connect", "refused")
	_, e = get(t, s, req, up.url+"/slow")
	wantCode(t, e, abi.ErrTimeout, "timed out")
	_, e = get(t, s, req, up.url+"/reset")
	wantCode(t, e, abi.ErrProtocol, "reading the response body")
	start := time.Now()
	_, e = get(t, s, req, up.url+"/huge")
	wantCode(t, e, abi.ErrTooLarge, "max_response_body")
	_, e = get(t, s, request(context.Background(), 10*time.Second), up.url+"/huge-chunked")
	wantCode(t, e, abi.ErrTooLarge, "max_response_body")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing 1 GB responses took %s", d)
	}
	// The request's deadline is shorter than http.timeout.
	_, e = get(t, s, request(context.Background(), 50*time.Millisecond), up.url+"/slow")
	wantCode(t, e, abi.ErrTimeout)
	// A request that ends cancels its calls.
	ctx, cancel := context.WithCancel(context.Background())
	c, e := s.HTTP(request(ctx, 0), abi.AppendOutboundRequest(nil, "GET", up.url+"/slow", nil, nil))
	if e != nil {
		t.Fatal(e)
	}
	cancel()
	<-c.Done()
	_, e = c.Result()
	wantCode(t, e, abi.ErrCanceled)

	close(release)
	s.Close()
	up.srv.Close()
	// Nothing left running: the goroutines of the calls and the transport.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// thriftHandler is the example service, answering lookup with a THeader
// header it received.
type thriftHandler struct{ remembered chan string }

func (thriftHandler) IsHealthy(context.Context, *baseplate.IsHealthyRequest) (bool, error) {
	return true, nil
}

func (thriftHandler) Echo(_ context.Context, m string) (string, error) { return m, nil }
func (thriftHandler) Fail(_ context.Context, m string) (string, error) {
	return "", &example.EchoError{Message: m}
}
func (h thriftHandler) Remember(_ context.Context, v string) error { h.remembered <- v; return nil }
func (thriftHandler) Recall(context.Context) (string, error)       { return "", nil }
func (thriftHandler) Trap(context.Context) (string, error)         { return "", errors.New("trap") }
func (thriftHandler) Spin(context.Context) (string, error)         { return "", nil }
func (thriftHandler) Pause(_ context.Context, ms int32) (string, error) {
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return "paused", nil
}
func (thriftHandler) Lookup(ctx context.Context, header, _ string) (string, error) {
	v, _ := thrift.GetHeader(ctx, header)
	return v, nil
}

// startThrift serves the example service (THeader or framed, binary) on
// 127.0.0.1 and returns its address and a count of accepted connections.
func startThrift(t *testing.T, h thriftHandler) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &thrift.TConfiguration{}
	var conns atomic.Int64
	srv := thrift.NewTSimpleServer4(example.NewExampleProcessor(h), &countingListener{ln: ln, n: &conns},
		thrift.NewTHeaderTransportFactoryConf(nil, cfg), thrift.NewTHeaderProtocolFactoryConf(cfg))
	go srv.Serve()
	t.Cleanup(func() { srv.Stop() })
	return ln.Addr().String(), &conns
}

// countingListener is a thrift.TServerTransport over a net.Listener.
type countingListener struct {
	ln net.Listener
	n  *atomic.Int64
}

func (l *countingListener) Listen() error { return nil }
func (l *countingListener) Accept() (thrift.TTransport, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	l.n.Add(1)
	return thrift.NewTSocketFromConnConf(c, nil), nil
}
func (l *countingListener) Close() error     { return l.ln.Close() }
func (l *countingListener) Interrupt() error { return l.ln.Close() }

// message encodes a call of method with args in the binary protocol.
func message(t *testing.T, method string, typ thrift.TMessageType, seq int32, args thrift.TStruct) []byte {
	t.Helper()
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTBinaryProtocolConf(buf, nil)
	ctx := context.Background()
	if err := p.WriteMessageBegin(ctx, method, typ, seq); err != nil {
		t.Fatal(err)
	}
	if err := args.Write(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.WriteMessageEnd(ctx)
	return buf.Bytes()
}

// lookup calls lookup(header) through s and returns the result.
func lookup(t *testing.T, s *Set, req *Request, client, header string) (string, *Error) {
	t.Helper()
	c, e := s.Thrift(req, client, message(t, "lookup", thrift.CALL, 7, &example.ExampleLookupArgs{Header: header}))
	if e != nil {
		return "", e
	}
	<-c.Done()
	reply, e := c.Result()
	if e != nil {
		return "", e
	}
	p := thrift.NewTBinaryProtocolConf(&thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(reply)}, nil)
	ctx := context.Background()
	name, typ, seq, err := p.ReadMessageBegin(ctx)
	if err != nil || name != "lookup" || typ != thrift.REPLY || seq != 7 {
		t.Fatalf("reply %q %v %d: %v", name, typ, seq, err)
	}
	var res example.ExampleLookupResult
	if err := res.Read(ctx, p); err != nil {
		t.Fatal(err)
	}
	return res.GetSuccess(), nil
}

func TestThriftCalls(t *testing.T) {
	t.Parallel()
	h := thriftHandler{remembered: make(chan string, 1)}
	addr, conns := startThrift(t, h)
	reg := prometheus.NewRegistry()
	_, s := newSet(t, Options{Registerer: reg, Service: "gateway"}, Config{Thrift: []ThriftConfig{
		{Name: "backend", Endpoint: addr, Timeout: 5 * time.Second, Size: 4, MaxAge: time.Minute, MaxRetries: 3, Protocol: "header"},
		{Name: "framed", Endpoint: addr, Timeout: 5 * time.Second, Size: 4, MaxAge: time.Minute, MaxRetries: 3, Protocol: "framed"},
	}})
	in := abi.AppendField(nil, "Trace", "4242")
	in = abi.AppendField(in, "Span", "17")
	req := &Request{Ctx: context.Background(), Trace: TraceFrom(abi.KindThrift, in), Deadline: time.Now().Add(800 * time.Millisecond)}

	// Deadline-Budget: the inbound deadline (800 ms) is smaller than the
	// client's timeout (5 s).
	v, e := lookup(t, s, req, "backend", "Deadline-Budget")
	if e != nil {
		t.Fatal(e)
	}
	if ms, err := strconv.Atoi(v); err != nil || ms <= 0 || ms > 800 {
		t.Errorf("Deadline-Budget = %q, want 1..800", v)
	}
	for header, want := range map[string]string{"Trace": "4242", "Parent": "17", "User-Agent": "gateway"} {
		if v, e := lookup(t, s, req, "backend", header); e != nil || v != want {
			t.Errorf("%s = %q (%v), want %q", header, v, e, want)
		}
	}
	// Without an inbound deadline the client's timeout is the budget.
	v, _ = lookup(t, s, &Request{Ctx: context.Background()}, "backend", "Deadline-Budget")
	if ms, _ := strconv.Atoi(v); ms <= 800 || ms > 5000 {
		t.Errorf("Deadline-Budget without an inbound deadline = %q, want 801..5000", v)
	}
	// Framed: no headers, same answers.
	if v, e := lookup(t, s, req, "framed", "Trace"); e != nil || v != "" {
		t.Errorf("framed lookup = %q, %v", v, e)
	}
	// Oneway: no reply; the server gets the call.
	c, e := s.Thrift(req, "backend", message(t, "remember", thrift.ONEWAY, 8, &example.ExampleRememberArgs{Value: "v1"}))
	if e != nil {
		t.Fatal(e)
	}
	<-c.Done()
	if reply, e := c.Result(); e != nil || len(reply) != 0 {
		t.Fatalf("oneway: %q, %v", reply, e)
	}
	if got := <-h.remembered; got != "v1" {
		t.Errorf("remembered %q", got)
	}
	// Pool reuse.
	before := conns.Load()
	for range 40 {
		if _, e := lookup(t, s, req, "backend", "Trace"); e != nil {
			t.Fatal(e)
		}
	}
	if opened := conns.Load() - before; opened > 1 {
		t.Errorf("40 sequential calls opened %d connections", opened)
	}
	// Errors before anything is sent.
	_, e = s.Thrift(req, "nosuch", message(t, "lookup", thrift.CALL, 1, &example.ExampleLookupArgs{}))
	wantCode(t, e, abi.ErrNotFound, `"nosuch"`, "nosuch.endpoint")
	_, e = s.Thrift(req, "backend", []byte("garbage that is no thrift"))
	wantCode(t, e, abi.ErrInvalid, "does not parse")
	// Metrics.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := counterSum(fams, "thrift_client_requests_total", map[string]string{"thrift_method": "lookup", "thrift_client_name": "backend", "thrift_success": "true"}); n < 40 {
		t.Errorf("thrift_client_requests_total{lookup,backend,true} = %v", n)
	}
	if n := gaugeValue(fams, "thrift_client_pool_max_size", map[string]string{"thrift_pool": "backend"}); n != 4 {
		t.Errorf("thrift_client_pool_max_size{backend} = %v", n)
	}
	if n := gaugeValue(fams, "thrift_client_pool_active_connections", map[string]string{"thrift_pool": "backend"}); n < 1 {
		t.Errorf("thrift_client_pool_active_connections{backend} = %v", n)
	}
}

// garbageServer answers every frame it reads with reply(frame).
func garbageServer(t *testing.T, reply func() []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				var size [4]byte
				if _, err := io.ReadFull(r, size[:]); err != nil {
					return
				}
				io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(size[:])))
				c.Write(reply())
			}()
		}
	}()
	return ln.Addr().String()
}

func TestThriftFaults(t *testing.T) {
	t.Parallel()
	before := runtime.NumGoroutine()
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	garbage := garbageServer(t, func() []byte { return frame([]byte("\x00\x00\x00\x05hello world, not thrift")) })
	huge := garbageServer(t, func() []byte { return binary.BigEndian.AppendUint32(nil, 1<<30) })
	cut := garbageServer(t, func() []byte { return binary.BigEndian.AppendUint32(nil, 100)[:4] })
	silent := garbageServer(t, func() []byte { time.Sleep(2 * time.Second); return nil })
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	client := func(name, addr string) ThriftConfig {
		return ThriftConfig{Name: name, Endpoint: addr, Timeout: 300 * time.Millisecond, Size: 2, MaxAge: time.Minute, MaxRetries: 2, Protocol: "framed"}
	}
	r, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Set(Config{MaxResponseBody: 1 << 20, Thrift: []ThriftConfig{
		client("garbage", garbage), client("huge", huge), client("cut", cut), client("silent", silent), client("down", downAddr),
	}})
	req := &Request{Ctx: context.Background()}
	for _, c := range []struct {
		client string
		code   int32
		msg    string
	}{
		{"garbage", abi.ErrProtocol, "not a Thrift message"},
		{"huge", abi.ErrTooLarge, "max_response_body"},
		{"cut", abi.ErrProtocol, "closed the connection"},
		{"silent", abi.ErrTimeout, "timed out"},
		{"down", abi.ErrConnect, "2 attempts"},
	} {
		_, e := lookup(t, s, req, c.client, "x")
		wantCode(t, e, c.code, c.msg, "thrift client "+c.client)
	}
	s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+6 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+6 { // the garbage servers' accept loops
		t.Errorf("%d goroutines before, %d after", before, n)
	}
}

func TestSetCloseCancelsCalls(t *testing.T) {
	t.Parallel()
	reached := make(chan struct{}, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-r.Context().Done()
	}))
	r, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Set(Config{HTTP: HTTPConfig{Allow: []string{up.url}, Timeout: time.Hour}})
	c, e := s.HTTP(request(context.Background(), 0), abi.AppendOutboundRequest(nil, "GET", up.url+"/", nil, nil))
	if e != nil {
		t.Fatal(e)
	}
	<-reached
	s.Close() // returns once the call, cancelled, has
	select {
	case <-c.Done():
	default:
		t.Fatal("Close returned with a call still running")
	}
	_, e = c.Result()
	wantCode(t, e, abi.ErrCanceled)
	if _, e := s.HTTP(request(context.Background(), 0), abi.AppendOutboundRequest(nil, "GET", up.url+"/", nil, nil)); e == nil {
		t.Error("a closed set started a call")
	}
}

func TestThriftMaxAge(t *testing.T) {
	t.Parallel()
	addr, conns := startThrift(t, thriftHandler{})
	_, s := newSet(t, Options{}, Config{Thrift: []ThriftConfig{
		{Name: "b", Endpoint: addr, Timeout: 5 * time.Second, Size: 1, MaxAge: time.Nanosecond, MaxRetries: 1, Protocol: "header"},
	}})
	for range 3 {
		if _, e := lookup(t, s, &Request{Ctx: context.Background()}, "b", "x"); e != nil {
			t.Fatal(e)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 calls with max_age 1ns opened %d connections, want 3 (none reused)", n)
	}
}

func TestPeekMessage(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"binary", "compact"} {
		buf := thrift.NewTMemoryBuffer()
		var p thrift.TProtocol = thrift.NewTBinaryProtocolConf(buf, nil)
		if proto == "compact" {
			p = thrift.NewTCompactProtocolConf(buf, nil)
		}
		p.WriteMessageBegin(context.Background(), "is_healthy", thrift.ONEWAY, 300)
		p.WriteStructBegin(context.Background(), "x")
		p.WriteFieldStop(context.Background())
		p.Flush(context.Background())
		h, err := peekMessage(buf.Bytes())
		if err != nil || h.name != "is_healthy" || h.typ != abi.ThriftOneway || h.seqID != 300 || h.compact != (proto == "compact") {
			t.Errorf("%s: %+v, %v", proto, h, err)
		}
	}
}

func TestRegistryShares(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{HTTP: HTTPConfig{Allow: []string{"http://a"}}, Thrift: []ThriftConfig{{Name: "b", Endpoint: "127.0.0.1:1"}}}
	s1 := r.Set(cfg)
	s2 := r.Set(cfg)
	if s1.http != s2.http || s1.thrift["b"] != s2.thrift["b"] {
		t.Error("unchanged config: clients not shared between sets")
	}
	cfg.Thrift[0].Size = 3
	s3 := r.Set(cfg)
	if s3.thrift["b"] == s1.thrift["b"] || s3.http != s1.http {
		t.Error("changed Thrift config: the pool is shared, or the unchanged HTTP client is not")
	}
	s1.Close()
	s2.Close()
	if len(r.Pools()) != 1 {
		t.Errorf("pools after closing two sets: %+v", r.Pools())
	}
	s3.Close()
	if len(r.Pools()) != 0 || len(r.http) != 0 {
		t.Errorf("clients left after closing every set: %+v", r.Pools())
	}
}

func counterSum(fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	sum := 0.0
	for _, m := range metricsOf(fams, name, labels) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

func gaugeValue(fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range metricsOf(fams, name, labels) {
		return m.GetGauge().GetValue()
	}
	return -1
}

func metricsOf(fams []*dto.MetricFamily, name string, labels map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out
}

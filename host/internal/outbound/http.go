package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wasmserve/wasmserve/abi"
)

// httpClient is one transport with its allow list, shared by the sets
// whose http.* keys and max_response_body are equal.
type httpClient struct {
	reg    *Registry
	cfg    HTTPConfig
	key    string
	refs   int // guarded by reg.mu
	allow  allowList
	tr     *http.Transport
	dialer net.Dialer
}

func newHTTPClient(r *Registry, cfg HTTPConfig, key string) *httpClient {
	if cfg.PoolMaxSize <= 0 {
		cfg.PoolMaxSize = DefaultHTTPPoolMaxSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultHTTPTimeout
	}
	c := &httpClient{reg: r, cfg: cfg, key: key, dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	// The config loader validated the patterns.
	c.allow, _ = newAllowList(cfg.Allow)
	c.tr = &http.Transport{
		DialContext:           c.dial,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.PoolMaxSize,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	return c
}

func (c *httpClient) close() { c.tr.CloseIdleConnections() }

// deniedError is a dial refused by address filtering.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

// resolveError is a failed name resolution.
type resolveError struct {
	host string
	err  error
}

func (e *resolveError) Error() string { return "resolve " + e.host + ": " + e.err.Error() }
func (e *resolveError) Unwrap() error { return e.err }

// dial resolves addr, drops the addresses filtering refuses and connects
// to the first of the others that answers, trying again up to
// http.max_retries times when none does.
func (c *httpClient) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portS)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		var res interface {
			LookupNetIP(context.Context, string, string) ([]netip.Addr, error)
		} = net.DefaultResolver
		if c.reg.opts.Resolver != nil {
			res = c.reg.opts.Resolver
		}
		if ips, err = res.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, &resolveError{host, err}
		}
	}
	var ok []netip.AddrPort
	var why string
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		if r := c.refusal(ap); r != "" {
			why = fmt.Sprintf("%s resolves to %s, which is refused: %s", host, ap, r)
			continue
		}
		ok = append(ok, ap)
	}
	if len(ok) == 0 {
		if why == "" {
			why = fmt.Sprintf("%s resolves to no address", host)
		}
		return nil, &deniedError{why}
	}
	var last error
	for attempt := 0; attempt <= c.cfg.MaxRetries; attempt++ {
		for _, ap := range ok {
			conn, err := c.dialer.DialContext(ctx, network, ap.String())
			if err == nil {
				return conn, nil
			}
			last = err
			if ctx.Err() != nil {
				return nil, err
			}
		}
	}
	return nil, last
}

// HTTP starts the request encoded in rec (abi.AppendOutboundRequest); rec
// is copied.
func (s *Set) HTTP(req *Request, rec []byte) (*Call, *Error) {
	r, err := abi.ParseOutboundRequest(rec)
	if err != nil {
		return nil, errorf(abi.ErrInvalid, "malformed outbound HTTP request record: %v", err)
	}
	method := strings.ToUpper(string(r.Method))
	if method == "" {
		method = http.MethodGet
	}
	u, perr := url.Parse(string(r.URL))
	if perr != nil {
		return nil, errorf(abi.ErrInvalid, "bad URL %q: %v", r.URL, perr)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errorf(abi.ErrInvalid, "URL %q is not an absolute http:// or https:// URL", r.URL)
	}
	if u.User != nil {
		return nil, errorf(abi.ErrInvalid, "URL %q carries a user name or password: send an Authorization header instead", redact(u))
	}
	c := s.http
	if !c.allow.allows(u) {
		return nil, errorf(abi.ErrDenied, "outbound request to %s refused: %s://%s is not in http.allow (add it to http.allow in the app section)", u.Redacted(), u.Scheme, u.Host)
	}
	hreq := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	_ = r.Headers.Range(func(k, v []byte) bool {
		name := http.CanonicalHeaderKey(string(k))
		switch name {
		case "Host":
			hreq.Host = string(v)
		case "Content-Length", "Connection", "Transfer-Encoding", "Te", "Upgrade", "Keep-Alive", "Proxy-Connection":
		default:
			hreq.Header.Add(name, string(v))
		}
		return true
	})
	req.Trace.addHTTP(hreq.Header)
	if len(r.Body) > 0 {
		body := bytes.Clone(r.Body)
		hreq.Body = io.NopCloser(bytes.NewReader(body))
		hreq.ContentLength = int64(len(body))
		hreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	m := s.reg.metrics.http(method)
	return s.start(req, c.cfg.Timeout, func(ctx context.Context) ([]byte, *Error) {
		m.active.Inc()
		start := time.Now()
		out, code, e := c.do(ctx, hreq.WithContext(ctx), s.cfg.MaxResponseBody)
		m.active.Dec()
		m.observe(code, time.Since(start))
		return out, e
	})
}

// do runs one request and returns the response record.
func (c *httpClient) do(ctx context.Context, req *http.Request, max int64) ([]byte, int, *Error) {
	what := req.Method + " " + req.URL.Redacted()
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, 0, httpError(ctx, what, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > max {
		return nil, resp.StatusCode, errorf(abi.ErrTooLarge, "%s: response body of %d bytes exceeds max_response_body (%d bytes)", what, resp.ContentLength, max)
	}
	var fields []byte
	for k, vs := range resp.Header {
		for _, v := range vs {
			fields = abi.AppendField(fields, k, v)
		}
	}
	rec := abi.AppendResponseHeader(make([]byte, 0, abi.ResponseHeaderSize+len(fields)+int(bodyCap(resp.ContentLength))), uint32(resp.StatusCode), fields)
	buf := bytes.NewBuffer(rec)
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, resp.StatusCode, httpError(ctx, what+": reading the response body", err)
	}
	if n > max {
		return nil, resp.StatusCode, errorf(abi.ErrTooLarge, "%s: response body exceeds max_response_body (%d bytes)", what, max)
	}
	return buf.Bytes(), resp.StatusCode, nil
}

// bodyCap is the buffer to start a response body with: its announced
// length up to 1 MiB (a larger one grows as it arrives), at least 512.
func bodyCap(contentLength int64) int64 {
	if contentLength > 512 && contentLength < 1<<20 {
		return contentLength
	}
	return 512
}

// httpError classifies a transport error.
func httpError(ctx context.Context, what string, err error) *Error {
	var de *deniedError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var re *resolveError
	switch {
	case errors.As(err, &de):
		return errorf(abi.ErrDenied, "%s refused: %s", what, de.msg)
	case ctx.Err() != nil:
		return ctxError(ctx, what)
	case isTimeout(err):
		return errorf(abi.ErrTimeout, "%s: %v", what, err)
	case errors.As(err, &dnsErr):
		return errorf(abi.ErrConnect, "%s: DNS: %v", what, dnsErr)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return errorf(abi.ErrConnect, "%s: connect: %v", what, opErr.Err)
	case errors.As(err, &re):
		return errorf(abi.ErrConnect, "%s: %v", what, re)
	}
	return errorf(abi.ErrProtocol, "%s: %v", what, err)
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

package guest

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// netServer serves request records with a net/http handler. An instance
// serves one request at a time, so one netServer reuses its http.Request,
// URL, header maps and buffers for every request.
//
// The request's strings are the handler's to keep, so they cannot alias
// the record, which the next request overwrites. A string equal to the
// one the previous request had in the same place (a client's Host,
// User-Agent, Accept, its address...) is that string again; any other is
// copied into an arena. A request like the previous one thus allocates
// nothing in the SDK: allocation, and the garbage collections it brings,
// are costly in wasm.
type netServer struct {
	h      http.Handler
	req    http.Request
	url    url.URL
	header http.Header
	keys   []string // each header's name, by position
	values []string // each header's (first) value, by position
	names  []string // the distinct names in header, in order
	body   netReqBody
	w      netWriter
	fields []byte
	// The previous request's strings.
	method, uri, path, query, remote, host string
	// arena holds copied strings. Bytes below len(arena) are never written
	// again: the strings handed to the handler stay valid (and immutable)
	// after it returns, and a full arena is replaced, not reused.
	arena []byte
}

// arenaSize is the capacity of a new string arena: a typical request's
// new strings take a few hundred bytes, so one arena serves many requests.
const arenaSize = 8 << 10

func newNetServer(h http.Handler) *netServer {
	return &netServer{
		h:      h,
		header: make(http.Header),
		keys:   make([]string, 0, 16),
		values: make([]string, 0, 16),
		names:  make([]string, 0, 16),
		w:      netWriter{header: make(http.Header)},
	}
}

// str returns b as a string: old if they are equal, else a copy of b held
// in the arena.
func (s *netServer) str(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	if len(b) == 0 {
		return ""
	}
	if cap(s.arena)-len(s.arena) < len(b) {
		s.arena = make([]byte, 0, max(arenaSize, len(b)))
	}
	n := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[n], len(b))
}

// serve is the RawHandler of HandleHTTP: it builds the *http.Request for
// r, calls the handler and appends the response record to out.
func (s *netServer) serve(r *abi.Request, out []byte) []byte {
	req := s.request(r)
	w := &s.w
	clear(w.header)
	w.status, w.body = 0, w.body[:0]
	s.h.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	fields := s.fields[:0]
	for name, values := range w.header {
		for _, v := range values {
			fields = abi.AppendField(fields, name, v)
		}
	}
	s.fields = fields
	out = abi.AppendResponseHeader(out, uint32(w.status), fields)
	return append(out, w.body...)
}

// request builds the *http.Request for a request record, as a net/http
// server would. The Body reads the record itself.
func (s *netServer) request(r *abi.Request) *http.Request {
	// RequestURI is the path and query as sent; Path and RawQuery are its
	// parts.
	s.path, s.query = s.str(s.path, r.Path), s.str(s.query, r.Query)
	if s.query == "" {
		s.uri = s.path
	} else if len(s.uri) != len(s.path)+1+len(s.query) || s.uri[:len(s.path)] != s.path || s.uri[len(s.path)+1:] != s.query {
		s.uri = s.path + "?" + s.query
	}
	u := &s.url
	*u = url.URL{Path: s.path, RawQuery: s.query}
	if strings.IndexByte(s.path, '%') >= 0 {
		if p, err := url.PathUnescape(s.path); err == nil {
			u.Path, u.RawPath = p, s.path
		}
	}
	s.method = s.methodString(r.Method)
	s.remote = s.str(s.remote, r.Remote)
	s.host = s.headers(r.Headers)
	req := &s.req
	*req = http.Request{
		Method:     s.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     s.header,
		Host:       s.host,
		RequestURI: s.uri,
		RemoteAddr: s.remote,
	}
	if len(r.Body) > 0 {
		req.ContentLength = int64(len(r.Body))
		s.body.Reset(r.Body)
		req.Body = &s.body
	} else {
		req.Body = http.NoBody
	}
	return req
}

// headers fills s.header from a request's field list and returns its Host.
//
// The map is not cleared between requests: a client usually sends the same
// names in the same order, and clearing and refilling a map is costly in
// wasm. The entry for the header at position i is the one-value slice
// s.values[i:i+1:i+1]; when the map already holds exactly that slice for
// the name (the previous request had the name at the same position, and
// the handler did not replace it), storing the new value in s.values[i]
// updates the entry without a map assignment. Names left from an earlier
// request, or added by a handler, are deleted at the end.
func (s *netServer) headers(f abi.Fields) (host string) {
	h := s.header
	old := s.values
	keys, vals := s.keys[:0], s.values[:0]
	names := s.names[:0]
	// The record was validated by abi.ParseRequest: walk its field list
	// directly rather than through a callback.
	for len(f) >= 8 {
		nl := binary.LittleEndian.Uint32(f)
		vl := binary.LittleEndian.Uint32(f[4:])
		k, v := f[8:8+nl], f[8+nl:8+nl+vl]
		f = f[8+nl+vl:]
		i := len(vals)
		var name, value string
		if i < len(old) {
			name, value = s.keys[i], old[i]
		}
		name = s.headerName(name, k)
		if name == "Host" {
			host = s.str(s.host, v)
			continue
		}
		keys = append(keys, name)
		vals = append(vals, s.str(value, v))
		vs, ok := h[name]
		switch {
		case ok && len(vs) == 1 && cap(vs) == 1 && &vs[0] == &vals[i]:
			names = append(names, name)
		case ok && slices.Contains(names, name):
			h[name] = append(vs, vals[i])
		default:
			h[name] = vals[i : i+1 : i+1]
			names = append(names, name)
		}
	}
	if len(h) != len(names) {
		for k := range h {
			if !slices.Contains(names, k) {
				delete(h, k)
			}
		}
	}
	s.keys, s.values, s.names = keys, vals, names
	return host
}

// methodString returns the request method, a constant for the common ones.
func (s *netServer) methodString(b []byte) string {
	switch string(b) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	}
	return s.str(s.method, b)
}

// headerName returns the canonical form of a request header name, old if
// it is that. The host sends canonical names (abi/ABI.md), so a name is
// canonicalised only when it is not, and the common ones are constants.
func (s *netServer) headerName(old string, b []byte) string {
	switch string(b) {
	case "Host":
		return "Host"
	case "User-Agent":
		return "User-Agent"
	case "Accept":
		return "Accept"
	case "Accept-Encoding":
		return "Accept-Encoding"
	case "Accept-Language":
		return "Accept-Language"
	case "Content-Type":
		return "Content-Type"
	case "Cookie":
		return "Cookie"
	case "Authorization":
		return "Authorization"
	case "X-Forwarded-For":
		return "X-Forwarded-For"
	case "Traceparent":
		return "Traceparent"
	case old:
		return old
	}
	return textproto.CanonicalMIMEHeaderKey(s.str("", b))
}

// netReqBody is the request's Body: the body as the record holds it.
type netReqBody struct{ bytes.Reader }

func (*netReqBody) Close() error { return nil }

// netWriter is the http.ResponseWriter of HandleHTTP.
type netWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *netWriter) Header() http.Header { return w.header }

func (w *netWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// WriteString implements io.StringWriter, so io.WriteString does not
// convert s to a byte slice.
func (w *netWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.body = append(w.body, s...)
	return len(s), nil
}

// WriteHeader sets the status of the response. As in net/http, an
// informational status other than 101 does not end the header (the host
// sends no informational responses, so it is dropped); a status the host
// does not accept (outside 200–999, 101 included) fails the request as
// bad_response.
func (w *netWriter) WriteHeader(status int) {
	if w.status != 0 || (status >= 100 && status < 200 && status != http.StatusSwitchingProtocols) {
		return
	}
	w.status = status
}

// Flush implements http.Flusher; the response is sent when the handler
// returns.
func (w *netWriter) Flush() {}

package guest

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// netServer serves request records with a net/http handler. An instance
// serves one request at a time, so one netServer reuses its http.Request,
// URL, header maps and buffers for every request: serving allocates
// nothing of its own beyond, now and then, a new string arena.
type netServer struct {
	h      http.Handler
	req    http.Request
	url    url.URL
	header http.Header
	values []string // the first value of each header, by position
	names  []string // the names in header, in order
	body   netReqBody
	w      netWriter
	fields []byte
	// arena holds the request's strings. Bytes below len(arena) are never
	// written again: the strings handed to the handler stay valid (and
	// immutable) after it returns, and a full arena is replaced, not
	// reused.
	arena []byte
	// recCopy is the arena's copy of the current record's strings, which
	// start at address recBase in the record.
	recCopy string
	recBase uintptr
}

// arenaSize is the capacity of a new string arena: a typical request's
// strings take a few hundred bytes, so one arena serves many requests.
const arenaSize = 8 << 10

func newNetServer(h http.Handler) *netServer {
	return &netServer{
		h:      h,
		header: make(http.Header),
		values: make([]string, 0, 16),
		names:  make([]string, 0, 16),
		w:      netWriter{header: make(http.Header)},
	}
}

// reserve makes room for n more bytes in the arena.
func (s *netServer) reserve(n int) {
	if cap(s.arena)-len(s.arena) < n {
		s.arena = make([]byte, 0, max(arenaSize, n))
	}
}

// str returns a copy of b as a string held in the arena.
func (s *netServer) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s.reserve(len(b))
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
// server would. Its strings are copies held in the arena; the Body reads
// the record itself, which the next request overwrites.
func (s *netServer) request(r *abi.Request) *http.Request {
	s.copyRecord(r)
	// RequestURI is the path and query as sent; Path and RawQuery are its
	// parts.
	path, query := s.sub(r.Path), s.sub(r.Query)
	uri := path
	if query != "" {
		s.reserve(len(path) + 1 + len(query))
		n := len(s.arena)
		s.arena = append(s.arena, path...)
		s.arena = append(s.arena, '?')
		s.arena = append(s.arena, query...)
		uri = unsafe.String(&s.arena[n], len(s.arena)-n)
	}
	u := &s.url
	*u = url.URL{Path: path, RawQuery: query}
	if bytes.IndexByte(r.Path, '%') >= 0 {
		if p, err := url.PathUnescape(path); err == nil {
			u.Path, u.RawPath = p, path
		}
	}
	req := &s.req
	*req = http.Request{
		Method:     s.method(r.Method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     s.header,
		RequestURI: uri,
		RemoteAddr: s.str(r.Remote),
	}
	req.Host = s.headers(r.Headers)
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
	vals := s.values[:0]
	names := s.names[:0]
	// The record was validated by abi.ParseRequest: walk its field list
	// directly rather than through a callback.
	for len(f) >= 8 {
		nl := binary.LittleEndian.Uint32(f)
		vl := binary.LittleEndian.Uint32(f[4:])
		k, v := f[8:8+nl], f[8+nl:8+nl+vl]
		f = f[8+nl+vl:]
		name := s.headerName(k)
		if name == "Host" {
			host = s.sub(v)
			continue
		}
		i := len(vals)
		vals = append(vals, s.sub(v))
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
	s.values, s.names = vals, names
	return host
}

// copyRecord copies the part of the record holding the method, path,
// query and headers into the arena in one piece (the host writes them
// together, before the body); sub then returns its strings without
// copying each.
func (s *netServer) copyRecord(r *abi.Request) {
	var lo unsafe.Pointer
	var loAddr, hiAddr uintptr
	for _, b := range [...][]byte{r.Method, r.Path, r.Query, r.Headers} {
		if len(b) == 0 {
			continue
		}
		p := unsafe.Pointer(unsafe.SliceData(b))
		a := uintptr(p)
		if lo == nil || a < loAddr {
			lo, loAddr = p, a
		}
		hiAddr = max(hiAddr, a+uintptr(len(b)))
	}
	s.recBase, s.recCopy = loAddr, ""
	if lo != nil {
		s.recCopy = s.str(unsafe.Slice((*byte)(lo), hiAddr-loAddr))
	}
}

// sub returns the copy of b, a part of the record passed to copyRecord.
func (s *netServer) sub(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	off := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - s.recBase
	return s.recCopy[off : off+uintptr(len(b))]
}

// method returns the request method, a constant for the common ones.
func (s *netServer) method(b []byte) string {
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
	return s.sub(b)
}

// headerName returns the canonical form of a request header name. The
// host sends canonical names (abi/ABI.md), so a name is canonicalised only
// when it is not, and the common ones are constants rather than copies.
func (s *netServer) headerName(b []byte) string {
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
	}
	return textproto.CanonicalMIMEHeaderKey(s.sub(b))
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

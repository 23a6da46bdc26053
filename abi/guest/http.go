//go:build wasip1

package guest

import (
	"net/textproto"
	"net/url"
	"strings"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// Header is an ordered list of header fields with the method names of
// net/http's Header. Names are compared case-insensitively; Set and Add
// store them in canonical form. The zero value is an empty list.
type Header struct {
	f []field
}

type field struct{ name, value string }

// Get returns the first value of key, or "".
func (h *Header) Get(key string) string {
	for _, f := range h.f {
		if strings.EqualFold(f.name, key) {
			return f.value
		}
	}
	return ""
}

// Values returns every value of key, in order.
func (h *Header) Values(key string) []string {
	var out []string
	for _, f := range h.f {
		if strings.EqualFold(f.name, key) {
			out = append(out, f.value)
		}
	}
	return out
}

// Set replaces every value of key with value.
func (h *Header) Set(key, value string) {
	h.Del(key)
	h.Add(key, value)
}

// Add appends a value for key.
func (h *Header) Add(key, value string) {
	h.f = append(h.f, field{textproto.CanonicalMIMEHeaderKey(key), value})
}

// Del removes every value of key.
func (h *Header) Del(key string) {
	out := h.f[:0]
	for _, f := range h.f {
		if !strings.EqualFold(f.name, key) {
			out = append(out, f)
		}
	}
	clear(h.f[len(out):])
	h.f = out
}

// Range calls fn for each field in order until fn returns false.
func (h *Header) Range(fn func(name, value string) bool) {
	for _, f := range h.f {
		if !fn(f.name, f.value) {
			return
		}
	}
}

// Len is the number of fields.
func (h *Header) Len() int { return len(h.f) }

func (h *Header) reset() {
	clear(h.f)
	h.f = h.f[:0]
}

// Request is an HTTP request as the host passed it; the body is complete.
//
// A Request, its strings, its Header and its Body alias a buffer that the
// next request reuses: they are valid only until the handler returns. Copy
// (strings.Clone, bytes.Clone) anything kept longer.
type Request struct {
	Method     string
	Path       string // escaped path as sent, without the query
	RawQuery   string // query without '?'
	Header     Header
	Body       []byte
	RemoteAddr string
}

// Query parses RawQuery as net/url does.
func (r *Request) Query() url.Values {
	v, _ := url.ParseQuery(r.RawQuery)
	return v
}

// ResponseWriter builds the response, with the method set of net/http's
// ResponseWriter. The response is buffered and sent when the handler
// returns; the host sets Content-Length.
type ResponseWriter interface {
	Header() *Header
	Write([]byte) (int, error)
	WriteHeader(status int)
}

// Handler responds to an HTTP request.
type Handler interface {
	ServeHTTP(ResponseWriter, *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ResponseWriter, *Request)

// ServeHTTP calls f(w, r).
func (f HandlerFunc) ServeHTTP(w ResponseWriter, r *Request) { f(w, r) }

type response struct {
	header Header
	status int
	body   []byte
	fields []byte
}

func (w *response) Header() *Header { return &w.header }

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *response) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

var (
	httpReq  Request
	httpResp response
)

// view returns b as a string without copying; it aliases b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Handle registers h as the module's HTTP handler. Call it from an init
// function. Serving a request allocates nothing in the SDK itself.
func Handle(h Handler) {
	RegisterRaw(abi.KindHTTP, func(r *abi.Request, out []byte) []byte {
		req := &httpReq
		req.Method = view(r.Method)
		req.Path = view(r.Path)
		req.RawQuery = view(r.Query)
		req.RemoteAddr = view(r.Remote)
		req.Body = r.Body
		req.Header.reset()
		_ = r.Headers.Range(func(k, v []byte) bool {
			req.Header.f = append(req.Header.f, field{view(k), view(v)})
			return true
		})
		w := &httpResp
		w.header.reset()
		w.status, w.body, w.fields = 0, w.body[:0], w.fields[:0]
		h.ServeHTTP(w, req)
		if w.status == 0 {
			w.status = 200
		}
		for _, f := range w.header.f {
			w.fields = abi.AppendField(w.fields, f.name, f.value)
		}
		out = abi.AppendResponseHeader(out, uint32(w.status), w.fields)
		return append(out, w.body...)
	})
}

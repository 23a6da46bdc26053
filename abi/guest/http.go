//go:build wasip1

package guest

import (
	"net/textproto"
	"net/url"

	"github.com/wasmserve/wasmserve/abi"
)

// Header is a multi-valued header map keyed by canonical names, with the
// methods of net/http's Header.
type Header map[string][]string

// Get returns the first value for key.
func (h Header) Get(key string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value for key.
func (h Header) Values(key string) []string { return h[textproto.CanonicalMIMEHeaderKey(key)] }

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[textproto.CanonicalMIMEHeaderKey(key)] = []string{value} }

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	k := textproto.CanonicalMIMEHeaderKey(key)
	h[k] = append(h[k], value)
}

// Del removes key.
func (h Header) Del(key string) { delete(h, textproto.CanonicalMIMEHeaderKey(key)) }

// Request is an HTTP request as the host passed it. The body is complete.
// A Request and its Body are valid only until the handler returns.
type Request struct {
	Method     string
	Path       string // escaped path as sent, without the query
	RawQuery   string // query without '?'
	Header     Header
	Body       []byte
	RemoteAddr string
}

// ResponseWriter builds the response, with the method set of net/http's
// ResponseWriter. The response is buffered and sent when the handler
// returns; the host sets Content-Length.
type ResponseWriter interface {
	Header() Header
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

func (w *response) Header() Header { return w.header }

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
	httpResp = response{header: Header{}}
)

// Handle registers h as the module's HTTP handler. Call it from an init
// function.
func Handle(h Handler) {
	RegisterRaw(abi.KindHTTP, func(r *abi.Request, out []byte) []byte {
		req := &httpReq
		req.Method = string(r.Method)
		req.Path = string(r.Path)
		req.RawQuery = string(r.Query)
		req.RemoteAddr = string(r.Remote)
		req.Body = r.Body
		if req.Header == nil {
			req.Header = Header{}
		}
		clear(req.Header)
		_ = r.Headers.Range(func(k, v []byte) bool {
			key := string(k)
			req.Header[key] = append(req.Header[key], string(v))
			return true
		})
		w := &httpResp
		clear(w.header)
		w.status, w.body, w.fields = 0, w.body[:0], w.fields[:0]
		h.ServeHTTP(w, req)
		if w.status == 0 {
			w.status = 200
		}
		for k, vs := range w.header {
			for _, v := range vs {
				w.fields = abi.AppendField(w.fields, k, v)
			}
		}
		out = abi.AppendResponseHeader(out, uint32(w.status), w.fields)
		return append(out, w.body...)
	})
}

// Query parses RawQuery as net/url does.
func (r *Request) Query() url.Values {
	v, _ := url.ParseQuery(r.RawQuery)
	return v
}

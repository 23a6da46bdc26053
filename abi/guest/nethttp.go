//go:build wasip1

package guest

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// HandleHTTP registers a net/http handler as the module's HTTP handler:
// an http.ServeMux with method and path patterns, middleware, or any
// handler written for net/http runs unchanged. Call it from an init
// function, instead of Handle.
//
// Each request becomes an *http.Request as a net/http server would build
// it: Method, URL (Path, RawPath, RawQuery), RequestURI, Proto HTTP/1.1,
// Host (not in Header), Header, ContentLength, Body (complete, already
// read by the host) and RemoteAddr. Its strings are the handler's to keep:
// they are copied from the request record, once per request. The
// *http.Request, its URL, Header and Body, and the ResponseWriter and its
// Header are reused by the next request, as a net/http server reuses its
// buffers: a handler must not keep them after it returns.
//
// The http.ResponseWriter buffers the response; the host sends it when the
// handler returns and sets Content-Length itself. WriteHeader with an
// informational status (1xx but 101) is ignored, as the host sends none; Flush
// (http.Flusher) does nothing. There are no deadlines or hijacking, and the
// request's context is never cancelled.
//
// HandleHTTP costs more per request than Handle (an http.Request, its
// header map and a copy of the record); see BenchmarkGoSDK in the host's
// engine tests. Handle remains the faster path for a hot handler.
func HandleHTTP(h http.Handler) {
	RegisterRaw(abi.KindHTTP, func(r *abi.Request, out []byte) []byte {
		req := newHTTPRequest(r)
		w := &netResp
		clear(w.header)
		w.status, w.body = 0, w.body[:0]
		h.ServeHTTP(w, req)
		if w.status == 0 {
			w.status = http.StatusOK
		}
		fields := netFields[:0]
		for name, values := range w.header {
			for _, v := range values {
				fields = abi.AppendField(fields, name, v)
			}
		}
		netFields = fields
		out = abi.AppendResponseHeader(out, uint32(w.status), fields)
		return append(out, w.body...)
	})
}

var (
	netReq    http.Request
	netURL    url.URL
	netHeader = make(http.Header, 16)
	netValues []string
	netBody   netReqBody
	netResp   = netWriter{header: make(http.Header, 8)}
	netFields []byte
)

// newHTTPRequest builds an *http.Request from a request record. Its
// strings are sub-strings of one copy of the record.
func newHTTPRequest(r *abi.Request) *http.Request {
	base := unsafe.Pointer(unsafe.SliceData(curRecord))
	rec := string(curRecord)
	sub := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(base)
		return rec[off : off+uintptr(len(b))]
	}
	path, query := sub(r.Path), sub(r.Query)
	u := &netURL
	*u = url.URL{RawQuery: query}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path = p
		if p != path {
			u.RawPath = path
		}
	} else {
		u.Path = path
	}
	uri := path
	if query != "" {
		uri = path + "?" + query
	}
	clear(netHeader)
	clear(netValues)
	netValues = netValues[:0]
	req := &netReq
	*req = http.Request{
		Method:     sub(r.Method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     netHeader,
		RequestURI: uri,
		RemoteAddr: sub(r.Remote),
	}
	_ = r.Headers.Range(func(k, v []byte) bool {
		name := textproto.CanonicalMIMEHeaderKey(sub(k))
		if name == "Host" {
			req.Host = sub(v)
			return true
		}
		if vs, ok := req.Header[name]; ok {
			req.Header[name] = append(vs, sub(v))
			return true
		}
		// One backing array holds the first value of every name.
		netValues = append(netValues, sub(v))
		req.Header[name] = netValues[len(netValues)-1 : len(netValues) : len(netValues)]
		return true
	})
	if len(r.Body) > 0 {
		req.ContentLength = int64(len(r.Body))
		netBody.Reset(sub(r.Body))
		req.Body = &netBody
	} else {
		req.Body = http.NoBody
	}
	return req
}

type netReqBody struct{ strings.Reader }

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

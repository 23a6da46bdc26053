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
// they are copied from the request record, once per request.
//
// The http.ResponseWriter buffers the response; the host sends it when the
// handler returns and sets Content-Length itself. WriteHeader with an
// informational status (1xx) is ignored, as the host sends none; Flush
// (http.Flusher) does nothing. There are no deadlines or hijacking, and the
// request's context is never cancelled.
//
// HandleHTTP costs more per request than Handle (an http.Request, its
// header map and a copy of the record); see BenchmarkGoSDK in the host's
// engine tests. Handle remains the faster path for a hot handler.
func HandleHTTP(h http.Handler) {
	RegisterRaw(abi.KindHTTP, func(r *abi.Request, out []byte) []byte {
		req := newHTTPRequest(r)
		w := &netWriter{header: make(http.Header, 4), body: netBody[:0]}
		h.ServeHTTP(w, req)
		netBody = w.body
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

var netBody, netFields []byte

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
	u := &url.URL{RawQuery: query}
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
	req := &http.Request{
		Method:     sub(r.Method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 8),
		RequestURI: uri,
		RemoteAddr: sub(r.Remote),
	}
	_ = r.Headers.Range(func(k, v []byte) bool {
		name := textproto.CanonicalMIMEHeaderKey(sub(k))
		if name == "Host" {
			req.Host = sub(v)
			return true
		}
		req.Header[name] = append(req.Header[name], sub(v))
		return true
	})
	if len(r.Body) > 0 {
		req.ContentLength = int64(len(r.Body))
		req.Body = &netReqBody{Reader: strings.NewReader(sub(r.Body))}
	} else {
		req.Body = http.NoBody
	}
	return req
}

type netReqBody struct{ *strings.Reader }

func (netReqBody) Close() error { return nil }

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

func (w *netWriter) WriteHeader(status int) {
	if w.status != 0 || (status >= 100 && status < 200) {
		return
	}
	w.status = status
}

// Flush implements http.Flusher; the response is sent when the handler
// returns.
func (w *netWriter) Flush() {}

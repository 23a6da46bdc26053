//go:build wasip1

package guest

import (
	"net/http"

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
// they are copied from the request record, except that a string equal to
// the one the previous request had in the same place is that string
// again. The *http.Request, its URL, Header (a map updated in place) and
// Body (which reads the record), and the ResponseWriter and its Header are
// reused by the next request, as a net/http server reuses its buffers: a
// handler must not keep them after it returns.
//
// The http.ResponseWriter buffers the response; the host sends it when the
// handler returns and sets Content-Length itself. WriteHeader with an
// informational status (1xx but 101) is ignored, as the host sends none; Flush
// (http.Flusher) does nothing. There are no deadlines or hijacking, and the
// request's context is never cancelled.
//
// Serving a request like the previous one allocates nothing in the SDK.
// HandleHTTP still costs more per request than Handle (net/http's header
// maps, filled for the request and the response, are slow in wasm); see
// BenchmarkGoSDK in the host's engine tests. Handle remains the faster path
// for a hot handler.
func HandleHTTP(h http.Handler) {
	RegisterRaw(abi.KindHTTP, newNetServer(h).serve)
}

// Package admin is the handler of the admin listener: Prometheus metrics,
// health checks in baseplate's HTTP form and, when enabled, pprof. It is
// served on its own listener, apart from the app's.
package admin

import (
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health probes, as in baseplate.thrift's IsHealthyProbe.
const (
	Readiness = 1
	Liveness  = 2
	Startup   = 3
)

// Options configure New.
type Options struct {
	// Gatherer is served at /metrics; nil serves 404 there.
	Gatherer prometheus.Gatherer
	// Ready answers the readiness probe; nil means always ready.
	Ready func() bool
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
}

// New returns the admin handler:
//
//   - GET /metrics: the Prometheus text exposition of opts.Gatherer.
//   - GET /health?type=N: 200 when the probe N is healthy, 503 when not.
//     Readiness (1, and any unknown or missing type, as baseplate does)
//     fails once opts.Ready reports false; liveness (2) and startup (3)
//     succeed while the process serves.
//   - /debug/pprof/…: the net/http/pprof handlers, only with opts.Pprof.
func New(opts Options) http.Handler {
	mux := http.NewServeMux()
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		probe, _ := strconv.Atoi(r.URL.Query().Get("type"))
		healthy := true
		if probe != Liveness && probe != Startup && opts.Ready != nil {
			healthy = opts.Ready()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"healthy":false}` + "\n"))
			return
		}
		w.Write([]byte(`{"healthy":true}` + "\n"))
	})
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

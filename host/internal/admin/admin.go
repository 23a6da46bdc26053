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

	"github.com/wasmserve/wasmserve/host/internal/buildinfo"
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
//   - GET /: the list of these endpoints, as plain text.
//   - GET /metrics: the Prometheus text exposition of opts.Gatherer, and
//     wasmserve_build_info{version, abi, go} = 1.
//   - GET /health?type=N: 200 when the probe N is healthy, 503 when not.
//     Readiness (1, and any unknown or missing type, as baseplate does)
//     fails once opts.Ready reports false; liveness (2) and startup (3)
//     succeed while the process serves.
//   - /debug/pprof/…: the net/http/pprof handlers, only with opts.Pprof.
func New(opts Options) http.Handler {
	mux := http.NewServeMux()
	index := "wasmserve admin listener\n\n"
	if opts.Gatherer != nil {
		g := prometheus.Gatherers{opts.Gatherer, buildInfo()}
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
		index += "/metrics          Prometheus metrics\n"
	}
	index += "/health?type=N    health probe (baseplate): 1 readiness, 2 liveness, 3 startup; 200 healthy, 503 not\n"
	if opts.Pprof {
		index += "/debug/pprof/     Go profiles (admin.pprof)\n"
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(index))
	})
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

// buildInfo is a registry holding wasmserve_build_info, whose labels say
// which wasmserve, host ABI and Go release are running.
func buildInfo() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wasmserve_build_info",
		Help: "Always 1; the labels name the wasmserve version, the host ABI version and the Go release.",
		ConstLabels: prometheus.Labels{
			"version": buildinfo.Version(),
			"abi":     buildinfo.ABI(),
			"go":      buildinfo.Go(),
		},
	})
	g.Set(1)
	reg.MustRegister(g)
	return reg
}

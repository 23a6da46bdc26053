package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/admin"
	"github.com/wasmserve/wasmserve/host/internal/listen"
	"github.com/wasmserve/wasmserve/host/internal/metrics"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// StatsdIntervalEnv, when set to a duration (e.g. "200ms"), replaces the
// statsd reporter's 10-second interval. It is for tests only.
const StatsdIntervalEnv = "WASMSERVE_TEST_STATSD_INTERVAL"

// metricsEnabled reports whether the config asks for any metric sink:
// an admin listener, a statsd endpoint or the blocked-worker reporter.
// Without one, no observer is installed and requests pay nothing.
func (s *Server) metricsEnabled() bool {
	sc := s.cfg.Server
	return !sc.Admin.Bind.IsZero() || sc.Metrics.Endpoint != "" || sc.Monitoring.BlockedWorker > 0
}

// setupMetrics creates the metric sinks the config asks for and sets the
// observers the pool and front ends report to.
func (s *Server) setupMetrics() error {
	if !s.metricsEnabled() {
		return nil
	}
	sc := s.cfg.Server
	limit := sc.Metrics.GuestLimit
	if limit == 0 {
		limit = -1 // metrics.guest_limit = 0 refuses every guest metric
	}
	m := metrics.New(metrics.Options{
		Logger:        s.log,
		GuestLimit:    limit,
		BlockedWorker: sc.Monitoring.BlockedWorker,
		Pool: func() *pool.Pool {
			if s.gens == nil {
				return nil
			}
			return s.gens.Current().pool
		},
		Generation: func() int64 {
			if s.gens == nil {
				return 0
			}
			return s.gens.Current().n
		},
	})
	s.metrics = m
	s.metricSink = m.GuestMetric
	s.poolObserver = m.PoolObserver()
	if s.cfg.Server.Factory == "http" {
		s.httpObserver = m.HTTPObserver()
	}
	return nil
}

// observeCompile records a module compilation.
func (s *Server) observeCompile(d time.Duration, cacheHit bool) {
	if s.metrics != nil {
		s.metrics.CompiledModule(d, cacheHit)
	}
}

// reloadSucceeded counts a reload that swapped in a new generation.
func (s *Server) reloadSucceeded() {
	if s.metrics != nil {
		s.metrics.ReloadSucceeded()
	}
}

// reloadFailed counts a reload that left the old generation serving.
func (s *Server) reloadFailed() {
	if s.metrics != nil {
		s.metrics.ReloadFailed()
	}
}

// startAdmin starts the admin listener when admin.bind is set and the
// statsd reporter when metrics.endpoint is set, and returns the function
// that stops both.
func (s *Server) startAdmin() (stop func(), err error) {
	if s.metrics == nil {
		return func() {}, nil
	}
	sc := s.cfg.Server
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if sc.Metrics.Endpoint != "" {
		interval := metrics.DefaultStatsdInterval
		if v := os.Getenv(StatsdIntervalEnv); v != "" {
			if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
				return nil, fmt.Errorf("%s=%q: not a positive duration", StatsdIntervalEnv, v)
			}
		}
		st, err := s.metrics.StartStatsd(metrics.StatsdOptions{
			Address:     sc.Metrics.Endpoint,
			Namespace:   sc.Metrics.Namespace,
			Concurrency: sc.Monitoring.Concurrency,
			GCStats:     sc.Monitoring.GCStats,
			GCTiming:    sc.Monitoring.GCTiming,
			Interval:    interval,
		})
		if err != nil {
			return nil, fmt.Errorf("metrics.endpoint: %w", err)
		}
		stops = append(stops, func() { st.Close() })
		s.log.Info("statsd reporter started", "endpoint", sc.Metrics.Endpoint,
			"namespace", sc.Metrics.Namespace, "interval", interval)
	}
	if !sc.Admin.Bind.IsZero() {
		ln, err := openAdmin(sc.Admin.Bind.Network, sc.Admin.Bind.Address)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("admin.bind %s: %w", sc.Admin.Bind, err)
		}
		srv := &http.Server{
			Handler: admin.New(admin.Options{
				Gatherer: s.metrics.Registry(),
				Ready:    func() bool { return !s.shutting.Load() },
				Pprof:    sc.Admin.Pprof,
			}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin listener", "error", err)
			}
		}()
		stops = append(stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if srv.Shutdown(ctx) != nil {
				srv.Close()
			}
			<-done
		})
		s.log.Info("admin listening", "address", ln.Addr().String(), "network", ln.Addr().Network(),
			"pprof", sc.Admin.Pprof)
	}
	return stopAll, nil
}

// openAdmin binds the admin listener with host/listen, ignoring inherited
// sockets: those belong to the app's listener.
func openAdmin(network, address string) (net.Listener, error) {
	env := listen.Env{
		Getenv:   func(string) string { return "" },
		Unsetenv: func(string) error { return nil },
		Getpid:   os.Getpid,
		File:     func(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) },
	}
	lns, _, err := listen.Open(listen.Spec{Network: network, Address: address, Backlog: 128}, env)
	if err != nil {
		return nil, err
	}
	for _, ln := range lns[1:] {
		ln.Close()
	}
	return lns[0], nil
}

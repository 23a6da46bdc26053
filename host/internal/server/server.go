// Package server assembles wasmserve from its parts: it loads the module
// into a pool of workers, opens the listeners, runs the protocol front end
// and drives the process lifecycle (signals, drain, supervisor protocols).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/httpfront"
	"github.com/wasmserve/wasmserve/host/internal/metrics"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/host/internal/supervise"
)

// Options configure a Server beyond its config file.
type Options struct {
	Debug  bool // debug headers and DEBUG logging
	Reload bool // watch the module and config files
	// Bind is the --bind override; reloads re-read the file with it.
	Bind   string
	Logger *slog.Logger // nil = slog.Default()
}

// Frontend is a protocol front end: HTTP or Thrift. The lifecycle (Run)
// drives every front end through the same graceful shutdown.
type Frontend interface {
	// Serve accepts connections on ln until ln's Accept fails (after
	// Shutdown, Close, or once a draining listen.Listener has handed over
	// its backlog and closed) and serves each one. Run calls Serve once
	// per listener, concurrently.
	Serve(ln net.Listener) error
	// SetShuttingDown marks the start of graceful shutdown: responses
	// written from now on close their connections (HTTP Connection:
	// close); accepting and serving otherwise continue.
	SetShuttingDown()
	// Shutdown closes the listeners (already drained and closed by Run;
	// closing them again must not be an error), closes idle connections
	// at once (keep-alive connections between requests and, as soon as
	// possible, connections that sent nothing), keeps closing connections
	// as they become idle, and waits for active ones to finish. It returns
	// nil when no connection is left, or ctx's error when ctx ends first.
	Shutdown(ctx context.Context) error
	// Close closes every listener and connection at once.
	Close() error
	// Active returns the number of requests in progress: begun and whose
	// response is not yet written. Run logs it as the count of requests
	// abandoned when stop_timeout expires.
	Active() int
}

var (
	_ Frontend           = (*httpfront.Server)(nil)
	_ httpfront.Observer = (*metrics.HTTPObserver)(nil)
	_ pool.Observer      = metrics.PoolObserver{}
)

// Server is one wasmserve process.
type Server struct {
	cfg          *config.Config
	opts         Options
	log          *slog.Logger
	gens         *generations
	front        Frontend
	shutting     atomic.Bool
	metricSink   func(kind int32, name string, v float64) int32
	poolObserver pool.Observer
	httpObserver httpfront.Observer
	metrics      *metrics.Metrics // nil when no metric sink is configured
	cfgMu        sync.Mutex       // guards cfg.App, which reloads replace
	// reloadSem serialises reloads: a reload holds its one slot. Shutdown
	// takes it too, so that no reload is building while it closes.
	reloadSem chan struct{}
	// reloadReq carries requested reloads to the reload goroutine; one
	// pending request absorbs later ones.
	reloadReq chan string
	// stopReloads cancels the reload goroutine and a build in progress;
	// Run sets it.
	stopReloads func()
	// notify reports state to systemd (READY=1, STOPPING=1, RELOADING=1,
	// WATCHDOG=1); nil, and then silent, when NOTIFY_SOCKET is unset. Run
	// sets it before serving.
	notify *supervise.Notifier
	// reloadHook, when set, is called with true before a reload and false
	// after it (sd_notify RELOADING=1 / READY=1).
	reloadHook func(starting bool)
	// outbound owns the guests' outbound clients.
	outbound *outbound.Registry
}

// New loads cfg's module and starts its workers. Any error is fatal: the
// caller exits before binding.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger,
		reloadSem: make(chan struct{}, 1), reloadReq: make(chan string, 1)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.setupMetrics(); err != nil {
		return nil, err
	}
	if err := s.setupOutbound(); err != nil {
		return nil, err
	}
	p, err := s.buildGeneration(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	s.gens = newGenerations(s.log, &generation{n: 1, pool: p}, cfg.Server.StopTimeout)
	switch cfg.Server.Factory {
	case "http":
		s.front = s.newHTTP()
	case "thrift":
		s.front = s.newThrift()
	default:
		p.Close(ctx)
		return nil, fmt.Errorf("server factory %q is not supported", cfg.Server.Factory)
	}
	return s, nil
}

func (s *Server) newHTTP() Frontend {
	sc := s.cfg.Server
	return httpfront.New(httpfront.Options{
		Handler:               s.gens,
		LimitRequestLine:      sc.LimitRequestLine,
		LimitRequestFields:    sc.LimitRequestFields,
		LimitRequestFieldSize: sc.LimitRequestFieldSize,
		MaxRequestBody:        sc.MaxRequestBody,
		Keepalive:             sc.Keepalive,
		HeaderTimeout:         sc.HeaderTimeout,
		ReadTimeout:           sc.ReadTimeout,
		WriteTimeout:          sc.WriteTimeout,
		AccessLog:             sc.AccessLog,
		AccessLogFormat:       sc.Log.Format,
		Debug:                 s.opts.Debug,
		Logger:                s.log,
		Observer:              s.httpObserver,
	})
}

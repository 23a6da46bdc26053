// Package server assembles wasmserve from its parts: it loads the module
// into a pool of workers, opens the listeners, runs the protocol front end
// and drives the process lifecycle (signals, drain, supervisor protocols).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wasmserve/wasmserve/host/config"
	"github.com/wasmserve/wasmserve/host/httpfront"
	"github.com/wasmserve/wasmserve/host/listen"
	"github.com/wasmserve/wasmserve/host/pool"
)

// Options configure a Server beyond its config file.
type Options struct {
	Debug  bool         // debug headers and DEBUG logging
	Reload bool         // watch the module and config files
	Logger *slog.Logger // nil = slog.Default()
}

// Frontend is a protocol front end: HTTP or Thrift.
type Frontend interface {
	// Serve accepts connections on ln until Shutdown or Close.
	Serve(ln net.Listener) error
	// SetShuttingDown marks the start of graceful shutdown: connections
	// are not kept alive from now on.
	SetShuttingDown()
	// Shutdown stops accepting, closes idle connections and waits for
	// active ones until ctx ends.
	Shutdown(ctx context.Context) error
	// Close closes every listener and connection at once.
	Close() error
}

// Server is one wasmserve process.
type Server struct {
	cfg          *config.Config
	opts         Options
	log          *slog.Logger
	current      *pool.Current
	front        Frontend
	gen          atomic.Int64
	shutting     atomic.Bool
	metricSink   func(kind int32, name string, v float64) int32
	poolObserver pool.Observer
	reloadMu     sync.Mutex
}

// New loads cfg's module and starts its workers. Any error is fatal: the
// caller exits before binding.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.gen.Store(1)
	p, err := s.buildGeneration(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	s.current = pool.NewCurrent(p)
	switch cfg.Server.Factory {
	case "http":
		s.front = s.newHTTP()
	default:
		p.Close(ctx)
		return nil, fmt.Errorf("server factory %q is not supported", cfg.Server.Factory)
	}
	return s, nil
}

func (s *Server) newHTTP() Frontend {
	sc := s.cfg.Server
	return httpfront.New(httpfront.Options{
		Handler:               s.current,
		LimitRequestLine:      sc.LimitRequestLine,
		LimitRequestFields:    sc.LimitRequestFields,
		LimitRequestFieldSize: sc.LimitRequestFieldSize,
		MaxRequestBody:        sc.MaxRequestBody,
		Keepalive:             sc.Keepalive,
		HeaderTimeout:         sc.HeaderTimeout,
		ReadTimeout:           sc.ReadTimeout,
		AccessLog:             sc.AccessLog,
		Debug:                 s.opts.Debug,
		Logger:                s.log,
		Generation:            s.gen.Load,
	})
}

// Pool returns the pool serving now.
func (s *Server) Pool() *pool.Pool { return s.current.Load() }

// ShuttingDown reports whether graceful shutdown has begun.
func (s *Server) ShuttingDown() bool { return s.shutting.Load() }

// Run opens the listeners and serves until a stop signal; it returns nil
// after a clean graceful shutdown.
func (s *Server) Run(ctx context.Context) error {
	sc := s.cfg.Server
	lns, src, err := listen.Open(listen.Spec{
		Network:   sc.Bind.Network,
		Address:   sc.Bind.Address,
		Backlog:   sc.Backlog,
		ReusePort: sc.ReusePort,
	}, listen.OSEnv())
	if err != nil {
		s.current.Load().Close(ctx)
		return err
	}
	for _, ln := range lns {
		s.log.Info("listening", "address", ln.Addr().String(), "network", ln.Addr().Network(), "source", string(src), "protocol", sc.Factory)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- s.front.Serve(ln) }()
	}
	s.log.Info("serving", "pid", os.Getpid(), "workers", sc.Workers, "module", s.cfg.App.Module)
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				s.front.Close()
				return fmt.Errorf("serve: %w", err)
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.log.Info("SIGHUP received; reload is not enabled in this build")
			case syscall.SIGUSR1:
				s.dumpDebug()
			default:
				return s.shutdown(ctx, sig, sigs)
			}
		case <-ctx.Done():
			return s.shutdown(ctx, nil, sigs)
		}
	}
}

// shutdown performs graceful shutdown: drain, stop accepting, wait for
// active requests until stop_timeout. A second stop signal stops at once.
func (s *Server) shutdown(ctx context.Context, sig os.Signal, sigs chan os.Signal) error {
	sc := s.cfg.Server
	s.shutting.Store(true)
	s.front.SetShuttingDown()
	s.log.Info("shutting down", "signal", fmt.Sprint(sig), "drain_time", sc.DrainTime, "stop_timeout", sc.StopTimeout)
	quick := func() error {
		s.log.Warn("second stop signal: stopping at once")
		s.front.Close()
		return errors.New("stopped at once by a second signal")
	}
	if sc.DrainTime > 0 {
		t := time.NewTimer(sc.DrainTime)
	drain:
		for {
			select {
			case <-t.C:
				break drain
			case sig := <-sigs:
				if isStop(sig) {
					return quick()
				}
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.StopTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.front.Shutdown(sctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				s.front.Close()
				return fmt.Errorf("stop_timeout of %s expired with requests still active: %w", sc.StopTimeout, err)
			}
			s.current.Load().Close(sctx)
			s.log.Info("shutdown complete")
			return nil
		case sig := <-sigs:
			if isStop(sig) {
				return quick()
			}
		}
	}
}

func isStop(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGUSR2
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wasmserve/wasmserve/host/listen"
)

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
	stopAdmin, err := s.startAdmin()
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		s.current.Load().Close(ctx)
		return err
	}
	defer stopAdmin()
	if s.opts.Reload {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.watch(wctx)
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
				s.reloadNow(ctx, "SIGHUP")
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

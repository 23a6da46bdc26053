package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/listen"
	"github.com/wasmserve/wasmserve/host/internal/supervise"
	"github.com/wasmserve/wasmserve/host/internal/thriftfront"
)

// Run opens the listeners (inherited from Einhorn, Server::Starter or
// systemd, else bound from the config), tells the supervisor the server is
// up, and serves until a stop signal or ctx ends. It returns nil after a
// graceful shutdown in which every active request finished, and an error
// when stop_timeout expired with requests still active or a second stop
// signal cut shutdown short.
//
// Signals: SIGTERM, SIGINT and SIGUSR2 start graceful shutdown; during it a
// second SIGTERM or SIGINT stops at once (under Server::Starter only
// SIGINT, because start_server repeats its TERM to every old worker on each
// HUP); SIGUSR1 logs goroutine stacks and busy workers; SIGHUP reloads the
// app.
func (s *Server) Run(ctx context.Context) error {
	sc := s.cfg.Server
	senv := supervise.OSEnv()
	s.notify = supervise.NewNotifier(senv)
	opened, src, err := listen.Open(listen.Spec{
		Network:   sc.Bind.Network,
		Address:   sc.Bind.Address,
		Backlog:   sc.Backlog,
		ReusePort: sc.ReusePort,
	}, listen.OSEnv())
	if err != nil {
		s.closeGenerations(ctx)
		return err
	}
	lns := make([]*listen.Listener, len(opened))
	for i, ln := range opened {
		lns[i] = listen.Drainable(ln)
		s.log.Info("listening", "address", ln.Addr().String(), "network", ln.Addr().Network(), "source", string(src), "protocol", sc.Factory)
	}
	stopAdmin, err := s.startAdmin()
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		s.closeGenerations(ctx)
		return err
	}
	defer stopAdmin()

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	// The module is compiled and every worker instance is up (New), and
	// the listeners are open: acknowledge to Einhorn, then serve.
	if sent, err := supervise.EinhornAck(senv); err != nil {
		s.log.Error("einhorn ack failed", "error", err)
	} else if sent {
		s.log.Info("einhorn ack sent", "pid", os.Getpid())
	}
	if s.reloadHook == nil && s.notify != nil {
		s.reloadHook = func(starting bool) {
			if starting {
				s.logNotify(s.notify.Reloading())
			} else {
				s.logNotify(s.notify.Ready())
			}
		}
	}
	// Reloads run on their own goroutine, never on this loop, so that a
	// stop signal is handled at once even during a slow reload. Shutdown
	// cancels rctx, which also cuts a build in progress short.
	rctx, stopReloads := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReloads()
	s.stopReloads = stopReloads
	go s.reloader(rctx)
	if s.opts.Reload {
		// Watch before serving: a change made once the server answers is
		// never missed.
		watching := make(chan struct{})
		go s.watch(rctx, watching)
		<-watching
	}
	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- s.front.Serve(ln) }()
	}
	// The watchdog reports only while this loop makes progress: the loop
	// beats every quarter interval; a report needs a beat within half.
	wdInterval := s.notify.WatchdogInterval()
	var beat <-chan time.Time
	var lastBeat atomic.Int64
	lastBeat.Store(time.Now().UnixNano())
	if wdInterval > 0 {
		t := time.NewTicker(wdInterval / 4)
		defer t.Stop()
		beat = t.C
	}
	alive := func() bool {
		return s.shutting.Load() || time.Since(time.Unix(0, lastBeat.Load())) < wdInterval/2
	}
	wdctx, stopWatchdog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatchdog()
	go s.notify.Watchdog(wdctx, alive, s.logNotify)
	s.logNotify(s.notify.Ready())
	args := []any{"pid", os.Getpid(), "workers", sc.Workers, "module", s.cfg.App.Module, "source", string(src)}
	if g := os.Getenv("SERVER_STARTER_GENERATION"); g != "" {
		args = append(args, "server_starter_generation", g)
	}
	s.log.Info("serving", args...)
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, thriftfront.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.front.Close()
				s.stopReloads()
				s.closeGenerationsNow()
				return fmt.Errorf("serve: %w", err)
			}
		case now := <-beat:
			lastBeat.Store(now.UnixNano())
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.requestReload("SIGHUP")
			case syscall.SIGUSR1:
				s.dumpDebug()
			default:
				return s.shutdown(ctx, sig, sigs, lns, src)
			}
		case <-ctx.Done():
			return s.shutdown(ctx, nil, sigs, lns, src)
		}
	}
}

func (s *Server) logNotify(err error) {
	if err != nil {
		s.log.Warn("sd_notify failed", "error", err)
	}
}

// errQuickStop is returned when a second stop signal cut graceful
// shutdown short.
var errQuickStop = errors.New("stopped at once by a second stop signal")

// shutdown is the graceful shutdown every front end goes through:
//
//  1. Shutting down: the guest ABI's shutting-down query returns true (so
//     READINESS checks fail), responses close their connections, systemd
//     gets STOPPING=1.
//  2. Wait drain_time while accepting and serving normally.
//  3. Drain every listener: accept what is queued in its backlog, then
//     close it, so new connects are refused.
//  4. Front end Shutdown: close idle connections, wait for active requests
//     up to stop_timeout.
//  5. Return nil when nothing is left; after stop_timeout, close everything
//     and return an error that counts the requests abandoned.
//
// During it, SIGUSR1 still dumps debug output, SIGHUP is ignored, and a
// second SIGTERM or SIGINT closes everything at once.
func (s *Server) shutdown(ctx context.Context, sig os.Signal, sigs chan os.Signal, lns []*listen.Listener, src listen.Source) error {
	sc := s.cfg.Server
	s.shutting.Store(true)
	s.gens.StopSwaps()
	s.stopReloads()
	s.front.SetShuttingDown()
	s.logNotify(s.notify.Stopping())
	reason := "context done"
	if sig != nil {
		reason = sig.String()
	}
	s.log.Info("shutting down: not ready, closing connections after each response",
		"signal", reason, "drain_time", sc.DrainTime, "stop_timeout", sc.StopTimeout)

	// handle reports whether sig stops at once.
	handle := func(sig os.Signal) bool {
		switch sig {
		case syscall.SIGUSR1:
			s.dumpDebug()
		case syscall.SIGINT:
			return true
		case syscall.SIGTERM:
			if src != listen.ServerStarter {
				return true
			}
			s.log.Info("SIGTERM during shutdown ignored: start_server repeats it to every old worker; send SIGINT to stop at once")
		default:
			s.log.Info("signal ignored during shutdown", "signal", sig.String())
		}
		return false
	}
	quick := func(sig os.Signal) error {
		n := s.front.Active()
		s.log.Warn("second stop signal: closing every connection now", "signal", sig.String(), "abandoned", n)
		s.front.Close()
		s.closeGenerationsNow()
		return fmt.Errorf("%w (%s), %d requests abandoned", errQuickStop, sig, n)
	}

	if sc.DrainTime > 0 {
		t := time.NewTimer(sc.DrainTime)
		defer t.Stop()
	drain:
		for {
			select {
			case <-t.C:
				break drain
			case sig := <-sigs:
				if handle(sig) {
					return quick(sig)
				}
			}
		}
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.StopTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.stopServing(sctx, lns) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				n := s.front.Active()
				s.front.Close()
				s.closeGenerationsNow()
				s.log.Error("stop_timeout expired: requests abandoned", "abandoned", n, "stop_timeout", sc.StopTimeout)
				return fmt.Errorf("stop_timeout of %s expired: %d requests abandoned: %w", sc.StopTimeout, n, err)
			}
			s.closeGenerations(sctx)
			s.log.Info("shutdown complete")
			return nil
		case sig := <-sigs:
			if handle(sig) {
				return quick(sig)
			}
		}
	}
}

// stopServing drains every listener (step 3) and then shuts the front end
// down (step 4). Draining comes first because a front end's Shutdown closes
// its listeners, which would reset the connections still queued.
func (s *Server) stopServing(ctx context.Context, lns []*listen.Listener) error {
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := ln.Drain(ctx)
			if err != nil {
				s.log.Warn("listener drain cut short", "address", ln.Addr().String(), "queued_accepted", n, "error", err)
				return
			}
			s.log.Info("listener closed", "address", ln.Addr().String(), "queued_accepted", n)
		}()
	}
	wg.Wait()
	s.log.Info("listeners closed; waiting for active requests", "active", s.front.Active())
	return s.front.Shutdown(ctx)
}

// closeBound bounds closing a generation's workers once nothing is served
// any more, so that a stuck guest cannot hold the exit.
const closeBound = 2 * time.Second

// closeGenerations waits, until ctx ends, for a reload in progress to
// finish (shutdown has cancelled it; a reload that still completes its
// build closes what it built), keeps any later reload from starting, and
// closes every generation, current and draining, within closeBound.
func (s *Server) closeGenerations(ctx context.Context) {
	s.shutting.Store(true)
	select {
	case s.reloadSem <- struct{}{}: // held for good: no reload after this
	case <-ctx.Done():
		s.log.Warn("a reload is still building at exit; it closes what it built when it finishes")
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeBound)
	defer cancel()
	if err := s.gens.Close(cctx); err != nil {
		s.log.Warn("close workers", "error", err)
	}
}

// closeGenerationsNow is closeGenerations for a stop that is already
// late: it waits at most closeBound for a reload in progress.
func (s *Server) closeGenerationsNow() {
	ctx, cancel := context.WithTimeout(context.Background(), closeBound)
	defer cancel()
	s.closeGenerations(ctx)
}

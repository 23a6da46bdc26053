package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/wasmserve/wasmserve/host/config"
	"github.com/wasmserve/wasmserve/host/reload"
)

// watchQuiet is how long a watched file must stay unchanged before a
// reload starts, so that a file written in several calls loads whole.
const watchQuiet = 300 * time.Millisecond

// Reload re-reads the config file's app section, builds a new generation
// (compile, instantiate every worker, run each init) off the request path
// and, only if every step succeeds, swaps it in: new requests go to the new
// generation while requests in flight finish on the old one, whose
// instances and runtime are then closed. On failure the current generation
// keeps serving and the error is returned. Server section changes are
// logged and ignored until a restart. Reloads are serialised.
func (s *Server) Reload(ctx context.Context, reason string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	gen := s.gen.Load() + 1
	s.log.Info("reload starting", "reason", reason, "generation", gen)
	if s.reloadHook != nil {
		s.reloadHook(true)
		defer s.reloadHook(false)
	}
	err := s.reload(ctx, gen, start)
	if err != nil {
		s.ReloadFailed()
		s.log.Error("reload failed; the current generation keeps serving", "generation", gen-1, "error", err)
		return err
	}
	s.ReloadSucceeded()
	return nil
}

func (s *Server) reload(ctx context.Context, gen int64, start time.Time) error {
	next, err := config.Load(s.cfg.File, config.Options{ServerName: s.cfg.ServerName, AppName: s.cfg.AppName})
	if err != nil {
		return fmt.Errorf("step read config: %w", err)
	}
	if keys := s.cfg.Server.RestartKeys(next.Server); len(keys) > 0 {
		s.log.Warn("server settings changed; they apply only after a restart", "keys", keys)
	}
	next.Server = s.cfg.Server
	p, err := s.buildGeneration(ctx, next, gen)
	if err != nil {
		return fmt.Errorf("step build generation %d from %s: %w", gen, next.App.Module, err)
	}
	swap := time.Now()
	old := s.current.Swap(p)
	s.gen.Store(gen)
	s.cfg.App = next.App
	s.log.Info("reload succeeded", "generation", gen, "module", next.App.Module,
		"compile_time", p.Module().CompileTime, "cache_hit", p.Module().CacheHit,
		"build_time", swap.Sub(start).Round(time.Microsecond), "swap_time", time.Since(swap).Round(time.Microsecond))
	go func() {
		if err := old.Close(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("close previous generation", "generation", old.Module().Generation(), "error", err)
			return
		}
		s.log.Info("previous generation closed", "generation", old.Module().Generation())
	}()
	return nil
}

// reloadNow is Reload for signal and watcher triggers: errors are logged.
func (s *Server) reloadNow(ctx context.Context, reason string) {
	_ = s.Reload(ctx, reason)
}

// watch reloads when the module or the config file changes, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	s.reloadMu.Lock()
	paths := []string{s.cfg.File, s.cfg.App.Module}
	s.reloadMu.Unlock()
	s.log.Info("watching for changes", "files", paths)
	err := reload.Watch(ctx, paths, watchQuiet, func(changed []string) {
		for i, p := range changed {
			changed[i] = filepath.Base(p)
		}
		s.reloadNow(ctx, fmt.Sprintf("changed: %v", changed))
	}, nil)
	if err != nil {
		s.log.Error("file watching stopped; reload with SIGHUP", "error", err)
	}
}

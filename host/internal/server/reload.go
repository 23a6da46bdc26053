package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/reload"
)

// watchQuiet is how long a watched file must stay unchanged before a
// reload starts, so that a file written in several calls loads whole.
const watchQuiet = 300 * time.Millisecond

// ReloadError describes a reload that failed; the generation serving
// before it keeps serving.
type ReloadError struct {
	Generation int64  // the generation that was being built
	Step       string // "wait" (for an earlier reload), "read config", "open kv stores", "compile", "start workers", or "swap" when shutting down
	File       string // the config file or the module
	Err        error  // carries the guest's message when the guest failed
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("reload generation[%d] step[%s] file[%s]: %v", e.Generation, e.Step, e.File, e.Err)
}

func (e *ReloadError) Unwrap() error { return e.Err }

// Reload re-reads the config file's app section, builds a new generation
// (compile with the compilation cache, instantiate every worker, run each
// one's init) off the request path and, only if every step succeeds, swaps
// it in: new requests go to the new generation while requests in flight
// finish on the old one, which is closed once they have (bounded by
// stop_timeout). The generation number grows only on a successful swap.
//
// On failure the current generation keeps serving, the failure is logged
// and counted, and a *ReloadError is returned. Changed server section
// settings are logged and ignored until a restart. Reloads are serialised;
// a reload after graceful shutdown has begun is refused, and one that
// finishes building after it began closes what it built. ctx bounds the
// wait for an earlier reload and the build.
func (s *Server) Reload(ctx context.Context, reason string) error {
	start := time.Now()
	if s.shutting.Load() {
		s.log.Info("reload skipped: shutting down", "reason", reason)
		return &ReloadError{Generation: s.gens.Current().n + 1, Step: "swap", File: s.cfg.File, Err: errShuttingDown}
	}
	select {
	case s.reloadSem <- struct{}{}:
	case <-ctx.Done():
		return &ReloadError{Generation: s.gens.Current().n + 1, Step: "wait", File: s.cfg.File, Err: ctx.Err()}
	}
	defer func() { <-s.reloadSem }()
	gen := s.gens.Current().n + 1
	if s.shutting.Load() {
		s.log.Info("reload skipped: shutting down", "reason", reason)
		return &ReloadError{Generation: gen, Step: "swap", File: s.cfg.File, Err: errShuttingDown}
	}
	s.log.Info("reload starting", "reason", reason, "generation", gen)
	if s.reloadHook != nil {
		s.reloadHook(true)
		defer s.reloadHook(false)
	}
	err := s.reload(ctx, gen, start)
	if err != nil {
		s.reloadFailed()
		var re *ReloadError
		errors.As(err, &re)
		s.log.Error("reload failed; the current generation keeps serving",
			"serving", gen-1, "generation", gen, "step", re.Step, "file", re.File, "error", re.Err,
			"elapsed", time.Since(start).Round(time.Microsecond))
		return err
	}
	s.reloadSucceeded()
	return nil
}

func (s *Server) reload(ctx context.Context, gen int64, start time.Time) error {
	fail := func(step, file string, err error) error {
		return &ReloadError{Generation: gen, Step: step, File: file, Err: err}
	}
	next, err := config.Reload(s.cfg)
	if err != nil {
		return fail("read config", s.cfg.File, err)
	}
	if keys := s.cfg.Server.RestartKeys(next.Server); len(keys) > 0 {
		s.log.Warn("server settings changed in the config file; ignored until restart", "file", s.cfg.File, "keys", keys)
	}
	// The server section of the running process stays in force, whole.
	next.Server = s.cfg.Server
	p, err := s.buildGeneration(ctx, next, gen)
	if err != nil {
		step := "compile"
		var be *buildError
		if errors.As(err, &be) {
			step = be.Step
		}
		return fail(step, next.App.Module, err)
	}
	swap := time.Now()
	if _, err := s.gens.Swap(&generation{n: gen, pool: p}); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeBound)
		defer cancel()
		if cerr := p.Close(cctx); cerr != nil {
			s.log.Warn("generation closed before its requests finished", "generation", gen, "error", cerr)
		} else {
			s.log.Info("generation closed", "generation", gen, "reason", "built after shutdown began")
		}
		return fail("swap", next.App.Module, err)
	}
	s.cfgMu.Lock()
	s.cfg.App = next.App
	s.cfgMu.Unlock()
	swapped := time.Now()
	s.log.Info("reload succeeded", "generation", gen, "module", next.App.Module,
		"compile_time", p.Module().CompileTime, "cache_hit", p.Module().CacheHit,
		"build_time", swap.Sub(start).Round(time.Microsecond), "swap_time", swapped.Sub(swap),
		"time_to_swap", swapped.Sub(start).Round(time.Microsecond))
	return nil
}

// requestReload asks the reload goroutine for a reload. Requests that
// arrive while one is pending are coalesced into it: it re-reads every
// file anyway. It never blocks, so the signal loop stays responsive.
func (s *Server) requestReload(reason string) {
	select {
	case s.reloadReq <- reason:
	default:
		s.log.Info("reload already pending; coalesced", "reason", reason)
	}
}

// reloader runs requested reloads one at a time, on its own goroutine,
// until ctx ends (shutdown cancels it, which also cuts a build short).
// Reload logs and counts every failure, so there is nothing to return.
func (s *Server) reloader(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case reason := <-s.reloadReq:
			_ = s.Reload(ctx, reason)
		}
	}
}

// watchedPaths returns the files --reload watches: the config file and the
// module of the generation serving now.
func (s *Server) watchedPaths() []string {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return []string{s.cfg.File, s.cfg.App.Module}
}

// watch reloads when the config file or the module changes, until ctx
// ends. A reload that switches to another module file moves the watch to
// it. When watching fails, reloading stays available through SIGHUP.
// started is closed once the first watch is in place, or has failed, so
// that the server serves only when a change made from then on is seen.
func (s *Server) watch(ctx context.Context, started chan<- struct{}) {
	markStarted := sync.OnceFunc(func() { close(started) })
	defer markStarted()
	for ctx.Err() == nil {
		paths := s.watchedPaths()
		wctx, retarget := context.WithCancel(ctx)
		ready := make(chan struct{})
		go func() {
			select {
			case <-ready:
				s.log.Info("watching for changes", "files", paths, "directories", reload.Dirs(paths), "quiet", watchQuiet)
			case <-wctx.Done():
			}
			markStarted()
		}()
		err := reload.Watch(wctx, paths, watchQuiet, func(changed []string) {
			names := make([]string, len(changed))
			for i, p := range changed {
				names[i] = filepath.Base(p)
			}
			// Synchronous, unlike a signal: the watch moves to the new
			// module only once the reload is done.
			_ = s.Reload(ctx, "changed: "+strings.Join(names, ", "))
			if !slices.Equal(s.watchedPaths(), paths) {
				retarget()
			}
		}, ready)
		retarget()
		if err != nil {
			s.log.Error("file watching stopped; reload with SIGHUP", "error", err)
			return
		}
	}
}

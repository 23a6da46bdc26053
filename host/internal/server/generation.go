package server

import (
	"context"
	"os"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/kv"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// buildError is the error of buildGeneration: the step that failed,
// "compile" or "start workers", and why.
type buildError struct {
	Step string
	Err  error
}

func (e *buildError) Error() string {
	if e.Step == "start workers" {
		return "start workers: " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *buildError) Unwrap() error { return e.Err }

// buildGeneration compiles cfg's module and fills a pool with its
// instances, all off the request path. Nothing is left open on error,
// which is a *buildError.
func (s *Server) buildGeneration(ctx context.Context, cfg *config.Config, gen int64) (*pool.Pool, error) {
	sc := cfg.Server
	opts := engine.Options{
		Path:         cfg.App.Module,
		CacheDir:     sc.CompilationCache,
		MaxMemory:    sc.MaxMemory,
		InitTimeout:  sc.InitTimeout,
		Snapshot:     sc.Isolation == "request",
		Generation:   gen,
		Logger:       s.log,
		ShuttingDown: s.shutting.Load,
		Metric:       s.guestMetric,

		LogLimit:               engine.LogLimit{Lines: sc.GuestLogLimit.Lines, Bytes: int(sc.GuestLogLimit.Bytes)},
		MaxResponseHeaders:     sc.MaxResponseHeaders,
		MaxResponseHeaderBytes: int(sc.MaxResponseHeaderSize),
	}
	for _, kv := range cfg.App.Values {
		opts.Config = append(opts.Config, engine.ConfigEntry{Key: kv.Key, Value: kv.Value})
	}
	for _, m := range cfg.App.WASI.Dirs {
		opts.Mounts = append(opts.Mounts, engine.Mount{Host: m.Host, Guest: m.Guest})
	}
	for _, name := range cfg.App.WASI.Env {
		if v, ok := os.LookupEnv(name); ok {
			opts.Env = append(opts.Env, engine.ConfigEntry{Key: name, Value: v})
		}
	}
	start := time.Now()
	opts.Outbound = s.outboundSet(cfg.App.Clients)
	var obs kv.Observer
	if s.metrics != nil {
		obs = s.metrics.KVObserver()
	}
	kvs, err := kv.Open(ctx, cfg.App.KV, kv.Options{Logger: s.log, Observer: obs})
	if err != nil {
		opts.Outbound.Close()
		return nil, &buildError{Step: "open kv stores", Err: err}
	}
	opts.KV = kvs
	mod, err := engine.Load(ctx, opts)
	if err != nil {
		opts.Outbound.Close()
		opts.KV.Close()
		return nil, &buildError{Step: "compile", Err: err}
	}
	s.log.Info("module compiled", "module", cfg.App.Module, "generation", gen,
		"compile_time", mod.CompileTime, "cache_hit", mod.CacheHit)
	s.observeCompile(mod.CompileTime, mod.CacheHit)
	iso := pool.PerWorker
	if sc.Isolation == "request" {
		iso = pool.PerRequest
		if ok, why := mod.Resettable(); !ok {
			s.log.Warn("isolation = request: instances cannot be reset to their start-up state, so each request gets a fresh instance (slower)",
				"module", cfg.App.Module, "generation", gen, "reason", why)
		}
	}
	p, err := pool.New(ctx, mod, pool.Options{
		Workers:           sc.Workers,
		MaxConcurrency:    sc.MaxConcurrency,
		MaxRequests:       sc.MaxRequests,
		MaxRequestsJitter: sc.MaxRequestsJitter,
		Isolation:         iso,
		Timeout:           sc.RequestTimeout,
		Logger:            s.log.With("generation", gen),
		Observer:          s.poolObserver,
	})
	if err != nil {
		mod.Close(context.WithoutCancel(ctx))
		return nil, &buildError{Step: "start workers", Err: err}
	}
	s.log.Info("workers ready", "generation", gen, "workers", sc.Workers,
		"isolation", sc.Isolation, "elapsed", time.Since(start).Round(time.Microsecond),
		"memory_limit", mod.MemoryLimit())
	return p, nil
}

// guestMetric receives metrics from guests; metrics are refused until a
// sink is configured.
func (s *Server) guestMetric(kind int32, name string, v float64) int32 {
	if s.metricSink == nil {
		return -3
	}
	return s.metricSink(kind, name, v)
}

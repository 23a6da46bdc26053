package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/wasminfo"
)

// ModuleInfo is what a WebAssembly module declares: imports, exports,
// memory and, when it is a constant, its ABI version.
type ModuleInfo = wasminfo.Info

// Import is one import of a module.
type Import = wasminfo.Import

// Export is one export of a module.
type Export = wasminfo.Export

// IsWasm reports whether data starts with the WebAssembly magic number.
func IsWasm(data []byte) bool { return wasminfo.IsWasm(data) }

// InspectModule reads the module at path without compiling it. A WASI
// command is reported as such (ModuleInfo.IsCommand), not as an error.
func InspectModule(path string) (*ModuleInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	info, err := wasminfo.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// precheck refuses, before compiling, a module that is not WebAssembly
// or is a WASI command, with a message that says how to fix it.
func precheck(path string) (*ModuleInfo, error) {
	info, err := InspectModule(path)
	if err != nil {
		return nil, fmt.Errorf("load module %w", err)
	}
	if info.IsCommand() {
		return nil, info.CommandError(path)
	}
	return info, nil
}

// CheckReport is what Check found.
type CheckReport struct {
	Module      string        // absolute path of the module
	Info        *ModuleInfo   // its imports, exports and declared memory
	CompileTime time.Duration // compilation, or loading from the cache
	CacheHit    bool          // the compilation cache served the module
	InitTime    time.Duration // instantiation, _initialize and wasmserve_init
	ABIVersion  int           // the version the instance declared
	MemoryBytes uint32        // the instance's linear memory after init
	MemoryLimit int64         // max_memory, bytes
}

// Check loads cfg's module the way New does — compiled with the server
// section's cache and memory limit, checked against the host ABI — and
// instantiates one instance (running _initialize and wasmserve_init with
// the app's config), then closes everything. It serves nothing and binds
// nothing. Guest output during init goes to logger (nil: slog.Default).
func Check(ctx context.Context, cfg *Config, logger *slog.Logger) (*CheckReport, error) {
	info, err := precheck(cfg.App.Module)
	if err != nil {
		return nil, err
	}
	mod, err := engine.Load(ctx, engineOptions(cfg, logger))
	if err != nil {
		return nil, err
	}
	defer mod.Close(context.WithoutCancel(ctx))
	rep := &CheckReport{Module: cfg.App.Module, Info: info, CompileTime: mod.CompileTime, CacheHit: mod.CacheHit, MemoryLimit: mod.MemoryLimit()}
	start := time.Now()
	inst, err := mod.NewInstance(ctx, 0)
	if err != nil {
		return rep, abiHint(err)
	}
	rep.InitTime = time.Since(start)
	rep.ABIVersion = abi.Version
	rep.MemoryBytes = inst.MemoryBytes()
	inst.Close(context.WithoutCancel(ctx))
	return rep, nil
}

// engineOptions are the engine options New uses for cfg, without the
// server's hooks (metrics, shutdown state).
func engineOptions(cfg *Config, logger *slog.Logger) engine.Options {
	sc := cfg.Server
	opts := engine.Options{
		Path:        cfg.App.Module,
		CacheDir:    sc.CompilationCache,
		MaxMemory:   sc.MaxMemory,
		InitTimeout: sc.InitTimeout,
		Logger:      logger,
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
	return opts
}

// EnvName returns the environment variable that overrides a server key:
// WASMSERVE_ and the key upper-cased with dots as underscores.
func EnvName(key string) string { return config.EnvName(key) }

// ServerKeys returns the names of the server keys in documentation order.
func ServerKeys() []string { return config.KnownServerKeys() }

// abiHint adds how to fix an ABI version mismatch to err.
func abiHint(err error) error {
	if errors.Is(err, engine.ErrABIVersion) {
		return fmt.Errorf("%w (this wasmserve implements ABI v%d: rebuild the module with the SDK of this wasmserve, or run the wasmserve it was built for)", err, abi.Version)
	}
	return err
}

// MisspelledEnv returns the WASMSERVE_* entries of environ (NAME=VALUE)
// that override no server key but are close to one that does, each with
// that nearest override: likely typos, which are otherwise ignored.
func MisspelledEnv(environ []string) [][2]string { return config.MisspelledEnv(environ) }

// CheckModule is Check for a module alone: it compiles and validates the
// module at path and instantiates it once with the default server settings
// and an empty app config, using the default compilation cache or
// WASMSERVE_COMPILATION_CACHE. It reads no other override.
func CheckModule(ctx context.Context, path string, logger *slog.Logger) (*CheckReport, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ini := fmt.Sprintf("[server:main]\nfactory = http\nworkers = 1\n[app:main]\nfactory = %s\n", abs)
	cfg, err := config.Parse(abs+".ini", []byte(ini), config.Options{LookupEnv: func(k string) (string, bool) {
		if k == "HOME" || k == "XDG_CACHE_HOME" || k == config.EnvName("compilation_cache") {
			return os.LookupEnv(k)
		}
		return "", false
	}})
	if err != nil {
		return nil, err
	}
	return Check(ctx, cfg, logger)
}

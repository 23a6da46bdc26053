// Package engine compiles a guest module with wazero, checks it against the
// host ABI and creates instances that handle one request at a time.
//
// A Module owns one wazero runtime; closing it closes every instance made
// from it. Instances are not safe for concurrent use: the worker pool pins
// each to one request at a time.
package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/instrument"
	"github.com/wasmserve/wasmserve/host/internal/kv"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
)

// Options configure Load. The zero value of every field is usable.
type Options struct {
	// Path of the .wasm file, used for reading and in messages.
	Path string
	// Binary, when non-nil, is the module's bytes; Path is then only a name.
	Binary []byte
	// CacheDir is the on-disk compilation cache directory; "" disables it.
	CacheDir string
	// MaxMemory caps each instance's linear memory, in bytes (rounded down
	// to 64 KiB pages); 0 means the wasm limit of 4 GiB.
	MaxMemory int64
	// InitTimeout bounds each start-up phase of an instance (the wasm start
	// function, _initialize, wasmserve_abi_version, wasmserve_init); 0
	// means none.
	InitTimeout time.Duration
	// Snapshot makes each instance record its state after start-up, so
	// that Instance.Reset can restore it (isolation = request).
	Snapshot bool
	// resetWay, for tests, limits how Reset may work: resetBest (the
	// best the platform offers), resetTouched (compare the touched pages,
	// do not track writes) or resetCompare (compare the whole memory).
	resetWay int
	// faultsByRusage, for tests, makes guest calls count page faults with
	// getrusage where a perf event is allowed.
	faultsByRusage bool
	// Config is the app config the guest reads, in order.
	Config []ConfigEntry
	// Mounts are read-only directories preopened for WASI.
	Mounts []Mount
	// Env are environment variables visible to the guest.
	Env []ConfigEntry
	// Generation is the reload generation reported to guests (default 1).
	Generation int64
	// Logger receives guest logs and output; nil means slog.Default().
	Logger *slog.Logger
	// ShuttingDown answers the guest's shutting_down query; nil means false.
	ShuttingDown func() bool
	// Metric receives guest metrics and returns 0 or an abi error code; nil
	// refuses every metric with abi.ErrLimit.
	Metric func(kind int32, name string, value float64) int32

	// LogLimit bounds a guest's log records per call; zero is unlimited.
	LogLimit LogLimit
	// MaxResponseHeaders caps the header fields of a response record, and
	// MaxResponseHeaderBytes their names' and values' total length; a
	// response past either is a BadResponse fault. 0 is unlimited.
	MaxResponseHeaders     int
	MaxResponseHeaderBytes int
	// Outbound are the clients the guest's outbound calls use; nil refuses
	// them. Once Load succeeds the module owns the set: Close closes it.
	Outbound *outbound.Set
	// KV is the app's key-value stores, for the kv_* imports; nil means
	// none. Module.Close closes it; Load does not when it fails.
	KV *kv.Set
}

// ConfigEntry is one app config key and value.
type ConfigEntry struct{ Key, Value string }

// Mount is a read-only directory given to the guest.
type Mount struct{ Host, Guest string }

// Module is a compiled, validated guest module ready to be instantiated.
type Module struct {
	opts     Options
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	log      *slog.Logger
	config   abi.Fields
	configM  map[string]string
	limit    uint32 // memory limit in pages
	seq      atomic.Uint64
	// watchFallback logs once that Reset compares memory.
	watchFallback sync.Once
	closed        atomic.Bool
	inst          *instrument.Result

	// CompileTime is how long compilation took; CacheHit reports whether it
	// was served from the compilation cache.
	CompileTime time.Duration
	CacheHit    bool
}

// Load reads, compiles and validates the module described by opts. The
// error names the file and, for a mismatched module, the export or import
// at fault.
func Load(ctx context.Context, opts Options) (*Module, error) {
	bin := opts.Binary
	if bin == nil {
		var err error
		if bin, err = os.ReadFile(opts.Path); err != nil {
			return nil, fmt.Errorf("load module %s: %w", opts.Path, err)
		}
	}
	if !bytes.HasPrefix(bin, []byte("\x00asm")) {
		return nil, fmt.Errorf("load module %s: not a WebAssembly module (no \\0asm magic)", opts.Path)
	}
	if opts.Generation == 0 {
		opts.Generation = 1
	}
	m := &Module{opts: opts, log: opts.Logger, configM: map[string]string{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	for _, kv := range opts.Config {
		m.config = abi.AppendField(m.config, kv.Key, kv.Value)
		m.configM[kv.Key] = kv.Value
	}
	// Guest code is instrumented (see interrupt.go) instead of compiled
	// with wazero's close-on-context-done, which costs a call into Go at
	// every loop iteration.
	rc := wazero.NewRuntimeConfigCompiler()
	if opts.MaxMemory > 0 {
		pages := opts.MaxMemory / 65536
		if pages < 1 {
			pages = 1
		}
		if pages > 65536 {
			pages = 65536
		}
		m.limit = uint32(pages)
		rc = rc.WithMemoryLimitPages(m.limit)
	}
	before := -1
	if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("load module %s: compilation cache %s: %w", opts.Path, opts.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
		before = countFiles(opts.CacheDir)
	}
	m.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := m.instantiateHost(ctx); err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("load module %s: %w", opts.Path, err)
	}
	start := time.Now()
	ibin, err := m.instrument(bin)
	if err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("load module %s: %w", opts.Path, err)
	}
	compiled, err := m.rt.CompileModule(ctx, ibin)
	m.CompileTime = time.Since(start)
	if err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("load module %s: compile: %w", opts.Path, err)
	}
	m.compiled = compiled
	m.CacheHit = before >= 0 && countFiles(opts.CacheDir) == before
	if err := validate(compiled, m.limit); err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("load module %s: %w", opts.Path, err)
	}
	return m, nil
}

func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func (m *Module) instantiateHost(ctx context.Context) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.rt); err != nil {
		return fmt.Errorf("instantiate wasi: %w", err)
	}
	b := m.rt.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range hostFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(f.name)
	}
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(interrupt), nil, []api.ValueType{i32}).Export(instrument.ImportName)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiate host module: %w", err)
	}
	eb := m.rt.NewHostModuleBuilder("env")
	eb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(envAbort), []api.ValueType{i32, i32, i32, i32}, nil).Export("abort")
	if _, err := eb.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiate env module: %w", err)
	}
	return nil
}

// Generation is the reload generation the module was loaded as.
func (m *Module) Generation() int64 { return m.opts.Generation }

// Path is the module's file name.
func (m *Module) Path() string { return m.opts.Path }

// Close closes the runtime and every instance made from the module, then
// the outbound clients and Options.KV. A guest still running stops at its
// next interruption check.
func (m *Module) Close(ctx context.Context) error {
	m.closed.Store(true)
	defer m.closeOutbound()
	return errors.Join(m.rt.Close(ctx), m.opts.KV.Close())
}

// MemoryLimit is the per-instance memory limit in bytes, 0 if none.
func (m *Module) MemoryLimit() int64 { return int64(m.limit) * 65536 }

// ErrInitTimeout is wrapped by the error of NewInstance when a start-up
// phase ran past Options.InitTimeout; the message names the phase.
var ErrInitTimeout = errors.New("guest start-up timed out")

// ErrABIVersion is wrapped by the error of NewInstance when the guest
// declares a different ABI version.
var ErrABIVersion = errors.New("abi version mismatch")

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
	f64 = api.ValueTypeF64
)

package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host"
)

// check runs `wasmserve check [flags] CONFIG.ini`: it loads the config
// with the same flags and environment as serving would, compiles and
// validates the module, instantiates it once and prints a summary on
// stdout. Errors go to stderr, naming the file, and exit 1.
func check(args []string, stdout, stderr io.Writer) int {
	f, pos, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: wasmserve check [flags] CONFIG.ini   (wasmserve --help lists the flags)")
		return 2
	}
	fail := func(err error) int {
		msg := err.Error()
		if !strings.HasPrefix(msg, pos[0]) {
			msg = pos[0] + ": " + msg
		}
		fmt.Fprintf(stderr, "wasmserve check: %s\n", msg)
		return 1
	}
	cfg, err := loadConfig(pos[0], f)
	if err != nil {
		return fail(err)
	}
	// Guest output during init goes to stderr, as when serving.
	log := newLogger(stderr, cfg.Server.Log.Format, f.debug)
	rep, err := host.Check(context.Background(), cfg, log)
	if err != nil {
		return fail(err)
	}
	for _, m := range host.MisspelledEnv(os.Environ()) {
		fmt.Fprintf(stdout, "warning: environment variable %s overrides no server key and is ignored; did you mean %s?\n", m[0], m[1])
	}
	sc := cfg.Server
	w := func(label, format string, a ...any) {
		fmt.Fprintf(stdout, "  %-9s %s\n", label, fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(stdout, "%s: ok\n", pos[0])
	w("server", "[server:%s] %s on %s (from %s), %d workers (from %s)", cfg.ServerName, sc.Factory, sc.Bind, cfg.Origin("bind"), sc.Workers, cfg.Origin("workers"))
	w("module", "%s, %s", rep.Module, size(int64(rep.Info.Size)))
	cache := "cache miss"
	switch {
	case sc.CompilationCache == "":
		cache = "compilation cache off"
	case rep.CacheHit:
		cache = "from the compilation cache"
	}
	w("compile", "%s (%s)", rep.CompileTime.Round(1e5), cache)
	w("init", "%s: instantiated, ABI v%d", rep.InitTime.Round(1e4), rep.ABIVersion)
	w("memory", "%s", memorySummary(rep.Info, int64(rep.MemoryBytes), rep.MemoryLimit))
	w("imports", "%s", importSummary(rep.Info))
	return 0
}

// inspect runs `wasmserve inspect MODULE.wasm`.
func inspect(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "usage: wasmserve inspect MODULE.wasm")
			return 0
		}
		fmt.Fprintln(stderr, "usage: wasmserve inspect MODULE.wasm")
		return 2
	}
	path := args[0]
	info, err := host.InspectModule(path)
	if err != nil {
		fmt.Fprintf(stderr, "wasmserve inspect: %v\n", err)
		return 1
	}
	w := func(label, format string, a ...any) {
		fmt.Fprintf(stdout, "%-9s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	w("module", "%s, %s", path, size(int64(info.Size)))
	kind := "wasmserve reactor"
	switch {
	case info.IsCommand():
		kind = "WASI command (wasmserve cannot serve it: " + info.CommandError(filepath.Base(path)).Error() + ")"
	case !hasExport(info, abi.ExportHandle):
		kind = fmt.Sprintf("not a wasmserve guest: no %s export", abi.ExportHandle)
	}
	w("kind", "%s", kind)
	if info.Producer != "" {
		w("producer", "%s", info.Producer)
	}
	switch e, ok := info.Export(abi.ExportABIVersion); {
	case !ok:
		w("abi", "none declared (no %s export)", abi.ExportABIVersion)
	case info.ABIVersion != 0:
		w("abi", "v%d (this wasmserve implements v%d)", info.ABIVersion, abi.Version)
	case info.IsCommand():
		w("abi", "computed at run time by %s %s", e.Name, e.Type)
	default:
		// Computed at run time (the Go SDK): instantiate the module to ask.
		rep, err := host.CheckModule(context.Background(), path, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			w("abi", "computed at run time by %s %s; instantiating the module failed: %v", e.Name, e.Type, err)
		} else {
			w("abi", "v%d (computed at run time; this wasmserve implements v%d)", rep.ABIVersion, abi.Version)
		}
	}
	w("memory", "%s", memorySummary(info, -1, 0))
	fmt.Fprintf(stdout, "exports:\n")
	for _, e := range info.Exports {
		fmt.Fprintf(stdout, "  %-8s %s %s\n", e.Kind, e.Name, e.Type)
	}
	fmt.Fprintf(stdout, "imports:\n")
	for _, im := range info.Imports {
		fmt.Fprintf(stdout, "  %-8s %s.%s %s\n", im.Kind, im.Module, im.Name, im.Type)
	}
	return 0
}

func hasExport(info *host.ModuleInfo, name string) bool {
	_, ok := info.Export(name)
	return ok
}

// memorySummary describes the declared memory, the memory after init
// (unless after < 0) and the limit (unless 0).
func memorySummary(info *host.ModuleInfo, after, limit int64) string {
	m := info.Memory
	if m == nil {
		return "none"
	}
	s := fmt.Sprintf("%d pages (%s) initial", m.Min, size(int64(m.Min)*65536))
	if m.HasMax {
		s += fmt.Sprintf(", %d pages (%s) max", m.Max, size(int64(m.Max)*65536))
	}
	if m.Imported {
		s += ", imported"
	}
	if after >= 0 {
		s += fmt.Sprintf("; %s after init", size(after))
	}
	if limit > 0 {
		s += fmt.Sprintf("; max_memory %s", size(limit))
	}
	return s
}

// importSummary lists the imported names per module.
func importSummary(info *host.ModuleInfo) string {
	by := map[string][]string{}
	for _, im := range info.Imports {
		by[im.Module] = append(by[im.Module], im.Name)
	}
	mods := slices.Sorted(func(yield func(string) bool) {
		for m := range by {
			if !yield(m) {
				return
			}
		}
	})
	var parts []string
	for _, m := range mods {
		parts = append(parts, fmt.Sprintf("%s (%d): %s", m, len(by[m]), strings.Join(by[m], ", ")))
	}
	return cmp.Or(strings.Join(parts, "\n            "), "none")
}

// size formats a byte count with a binary unit.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Command wasmserve serves an application compiled to WebAssembly over HTTP
// or Thrift, configured by an INI file in the style of baseplate-serve:
//
//	wasmserve [flags] CONFIG.ini
//	wasmserve check [flags] CONFIG.ini
//	wasmserve inspect MODULE.wasm
//	wasmserve new LANG DIR
//	wasmserve healthcheck {thrift|http} ENDPOINT [--probe readiness|liveness|startup]
//	wasmserve --version
//
// Run it with --help for the flags. Every server key can also be set in
// the environment (WASMSERVE_<KEY>); flags win over the environment, which
// wins over the INI file, which wins over the defaults.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host"
)

// version is the release version, set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

const usageHead = `usage: wasmserve [flags] CONFIG.ini           serve the app CONFIG.ini describes
       wasmserve check [flags] CONFIG.ini     load and validate it, instantiate once, serve nothing
       wasmserve inspect MODULE.wasm          show a module's exports, imports, memory and ABI version
       wasmserve new LANG DIR                 create an app in DIR: LANG is go, c, rust, as or wat
       wasmserve healthcheck {thrift|http} ENDPOINT [--probe readiness|liveness|startup]
       wasmserve --version

Serves the WebAssembly app named by [app:NAME] factory with the server
described by [server:NAME] (factory = http or thrift).

flags:
`

const usageTail = `
Environment: every [server:NAME] key can be set as WASMSERVE_<KEY>, the key
upper-cased with dots as underscores (WASMSERVE_WORKERS, WASMSERVE_LOG_FORMAT,
WASMSERVE_ADMIN_BIND, ...). PORT sets the port (all interfaces) when bind is
set nowhere else. Precedence: flag > environment > INI file > default.

Configuration reference (every key, its default and meaning): the README's
"Configuration reference" section, https://github.com/wasmserve/wasmserve#configuration-reference
`

func main() {
	host.SetVersion(version)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	debug, reload, version bool
	bind, serverName       string
	appName                string
	workers, logFormat     string
	accessLog              bool
	set                    map[string]bool // flags given on the command line
}

func newFlagSet(f *flags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmserve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&f.debug, "debug", false, "log at DEBUG level and add X-Wasmserve-Worker/-Generation response headers")
	fs.BoolVar(&f.reload, "reload", false, "watch the module and config files and reload the app in-process when they change (development); implies drain_time = 0 unless it is set")
	fs.StringVar(&f.bind, "bind", "", "listen address, overriding bind: host:port, :port, [v6]:port, unix:PATH or a path; ignored when a socket is inherited (einhorn, start_server, systemd)")
	fs.StringVar(&f.workers, "workers", "", "guest instances, overriding workers")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json, overriding log.format")
	fs.BoolVar(&f.accessLog, "access-log", false, "log one line per request (--access-log=false: none), overriding access_log")
	fs.StringVar(&f.serverName, "server-name", "main", "which [server:NAME] section to use")
	fs.StringVar(&f.appName, "app-name", "main", "which [app:NAME] section to use")
	fs.BoolVar(&f.version, "version", false, "print the version and the host ABI version, then exit")
	return fs
}

// usage writes the full usage, flags included, to w.
func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	fs := newFlagSet(&flags{}, w)
	fs.PrintDefaults()
	fmt.Fprint(w, usageTail)
}

// parseFlags parses flags anywhere among the arguments and returns the
// positional ones. --help and -h print the usage on stdout.
func parseFlags(args []string, stdout, stderr io.Writer) (*flags, []string, error) {
	f := &flags{set: map[string]bool{}}
	fs := newFlagSet(f, stderr)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(stdout)
			} else {
				fmt.Fprintln(stderr, "run 'wasmserve --help' for the flags")
			}
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, pos, nil
}

// configOptions turns the flags into config options: the flags that
// override server keys, and --reload's default drain_time.
func (f *flags) configOptions() host.ConfigOptions {
	opts := host.ConfigOptions{ServerName: f.serverName, AppName: f.appName, Bind: f.bind, Set: map[string]string{}}
	if f.set["workers"] {
		opts.Set["workers"] = f.workers
	}
	if f.set["log-format"] {
		opts.Set["log.format"] = f.logFormat
	}
	if f.set["access-log"] {
		opts.Set["access_log"] = strconv.FormatBool(f.accessLog)
	}
	if f.reload {
		opts.Defaults = map[string]string{"drain_time": "0"}
	}
	return opts
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(args[1:], stdout, stderr)
		case "new":
			return newApp(args[1:], stdout, stderr)
		case "inspect":
			return inspect(args[1:], stdout, stderr)
		case "check":
			return check(args[1:], stdout, stderr)
		case "help":
			usage(stdout)
			return 0
		}
	}
	f, pos, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if f.version {
		fmt.Fprintf(stdout, "wasmserve %s (host ABI version %d)\n", version, abi.Version)
		return 0
	}
	if len(pos) != 1 {
		if len(pos) == 0 {
			fmt.Fprint(stderr, "wasmserve: no config file given\n\n")
		} else {
			fmt.Fprintf(stderr, "wasmserve: expected exactly one config file, got %d arguments: %s\n\n", len(pos), strings.Join(pos, " "))
		}
		usage(stderr)
		return 2
	}
	cfg, err := loadConfig(pos[0], f)
	if err != nil {
		fmt.Fprintf(stderr, "wasmserve: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.Server.Log.Format, f.debug)
	slog.SetDefault(log)
	for _, m := range host.MisspelledEnv(os.Environ()) {
		log.Warn("environment variable overrides no server key; ignored", "name", m[0], "did_you_mean", m[1])
	}
	fatal := func(msg string, err error) int {
		if cfg.Server.Log.Format == "json" {
			log.Error(msg, "config", pos[0], "error", err.Error())
		} else {
			fmt.Fprintf(stderr, "wasmserve: %v\n", err)
		}
		return 1
	}
	ctx := context.Background()
	srv, err := host.New(ctx, cfg, host.Options{Debug: f.debug, Reload: f.reload, Bind: f.bind, Logger: log})
	if err != nil {
		return fatal("cannot start", err)
	}
	if err := srv.Run(ctx); err != nil {
		return fatal("exiting", err)
	}
	return 0
}

// loadConfig refuses a file that is not an INI file (a .wasm module,
// another binary) with a short message, then parses it. The file is read
// once, so that a pipe works too.
func loadConfig(path string, f *flags) (*host.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := notINI(path, data); err != nil {
		return nil, err
	}
	return host.ParseConfig(path, data, f.configOptions())
}

// notINI returns an error when data, read from path, is a WebAssembly
// module or another binary file rather than an INI config file.
func notINI(path string, data []byte) error {
	head := data[:min(len(data), 512)]
	switch {
	case host.IsWasm(head):
		return fmt.Errorf("%s is a WebAssembly module; wasmserve expects an INI config file whose [app:main] factory names the module (wasmserve new LANG DIR writes one: see DIR/app.ini)", path)
	case bytes.IndexByte(head, 0) >= 0:
		return fmt.Errorf("%s is a binary file; wasmserve expects an INI config file ([server:main] and [app:main] sections)", path)
	}
	return nil
}

// newLogger returns the process logger. JSON logs write durations as
// strings ("1.5ms"), not as integers of nanoseconds.
func newLogger(w io.Writer, format string, debug bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	if format == "json" {
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

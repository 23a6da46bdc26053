// Command wasmserve serves an application compiled to WebAssembly over HTTP
// or Thrift, configured by an INI file in the style of baseplate-serve:
//
//	wasmserve [--debug] [--reload] [--bind ADDR] [--server-name NAME] [--app-name NAME] CONFIG.ini
//	wasmserve healthcheck {thrift|http} ENDPOINT [--probe readiness|liveness|startup]
//	wasmserve --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host"
)

// version is the release version, set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

const usage = `usage: wasmserve [flags] CONFIG.ini
       wasmserve healthcheck {thrift|http} ENDPOINT [--probe readiness|liveness|startup]
       wasmserve --version

Serves the WebAssembly app named by [app:NAME] factory with the server
described by [server:NAME] (factory = http or thrift).

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	debug, reload, version bool
	bind, serverName       string
	appName                string
}

func parseFlags(args []string, stderr io.Writer) (*flags, []string, error) {
	f := &flags{}
	fs := flag.NewFlagSet("wasmserve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.debug, "debug", false, "log at DEBUG level and add X-Wasmserve-Worker/-Generation response headers")
	fs.BoolVar(&f.reload, "reload", false, "watch the module and config files and reload the app in-process when they change (development)")
	fs.StringVar(&f.bind, "bind", "", "listen address, overriding [server] bind: host:port, :port, [v6]:port, unix:PATH or a path; ignored when a socket is inherited (einhorn, start_server, systemd)")
	fs.StringVar(&f.serverName, "server-name", "main", "which [server:NAME] section to use")
	fs.StringVar(&f.appName, "app-name", "main", "which [app:NAME] section to use")
	fs.BoolVar(&f.version, "version", false, "print the version and the host ABI version, then exit")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return f, pos, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:], stdout, stderr)
	}
	f, pos, err := parseFlags(args, stderr)
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
		fmt.Fprintf(stderr, "wasmserve: expected exactly one config file, got %d arguments\n%s", len(pos), usage)
		return 2
	}
	cfg, err := host.LoadConfig(pos[0], host.ConfigOptions{ServerName: f.serverName, AppName: f.appName, Bind: f.bind})
	if err != nil {
		fmt.Fprintf(stderr, "wasmserve: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.Server.Log.Format, f.debug)
	slog.SetDefault(log)
	ctx := context.Background()
	srv, err := host.New(ctx, cfg, host.Options{Debug: f.debug, Reload: f.reload, Bind: f.bind, Logger: log})
	if err != nil {
		log.Error("cannot start", "config", pos[0], "error", err)
		fmt.Fprintf(stderr, "wasmserve: %v\n", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("exiting", "error", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format string, debug bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

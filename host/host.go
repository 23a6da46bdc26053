// Package host is the wasmserve server as a library: it reads a
// configuration, loads the WebAssembly app it names into a pool of workers,
// serves it over HTTP or Thrift and drives the process lifecycle (signals,
// graceful shutdown, hot reload, supervisor protocols).
//
// The command cmd/wasmserve is a thin wrapper around this package. Its parts
// live under host/internal, each owning one stage: config (the INI file),
// listen (sockets and inheritance), engine (wazero and the host ABI), pool
// (workers), httpfront and thriftfront (the protocol front ends), metrics,
// reload, supervise and server (the lifecycle that wires them together).
package host

import (
	"context"

	"github.com/wasmserve/wasmserve/host/internal/buildinfo"
	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/server"
)

// Config is a validated configuration: the [server:NAME] and [app:NAME]
// sections of one INI file. It holds no open resources.
type Config = config.Config

// ConfigOptions choose the sections of an INI file and the overrides
// applied to it (the --bind flag, the environment used for $VAR expansion).
type ConfigOptions = config.Options

// Endpoint is a listen address: TCP host:port or a unix socket path.
type Endpoint = config.Endpoint

// Options configure a Server beyond its config file.
type Options = server.Options

// LoadConfig reads and validates the INI file at path. Errors name the
// file and line of the offending key.
func LoadConfig(path string, opts ConfigOptions) (*Config, error) {
	return config.Load(path, opts)
}

// ParseConfig validates INI text; filename is used only in error messages.
func ParseConfig(filename string, data []byte, opts ConfigOptions) (*Config, error) {
	return config.Parse(filename, data, opts)
}

// Server is one wasmserve process: its workers, listeners and front end.
type Server struct {
	s *server.Server
}

// New loads cfg's module and starts its workers. It does not listen yet;
// Run does. Any error is fatal: the caller exits before binding.
//
// Before compiling, New checks what fails fast: that the listen address
// can be bound (unless a supervisor passes the sockets), and that the
// module is a wasmserve reactor, not a WASI command.
func New(ctx context.Context, cfg *Config, opts Options) (*Server, error) {
	if err := probeBind(cfg); err != nil {
		return nil, err
	}
	if _, err := precheck(cfg.App.Module); err != nil {
		return nil, err
	}
	s, err := server.New(ctx, cfg, opts)
	if err != nil {
		return nil, abiHint(err)
	}
	return &Server{s: s}, nil
}

// Run listens (or takes over inherited sockets), serves until SIGTERM,
// SIGINT or SIGQUIT and shuts down gracefully. SIGHUP reloads the app.
// It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error { return s.s.Run(ctx) }

// Reload re-reads the config file and swaps in a new generation of
// workers; requests in flight finish on the old one. reason is logged.
func (s *Server) Reload(ctx context.Context, reason string) error { return s.s.Reload(ctx, reason) }

// SetVersion records the release version of the program embedding the
// server, reported as the version label of wasmserve_build_info on the
// admin listener. Call it before New.
func SetVersion(v string) { buildinfo.SetVersion(v) }

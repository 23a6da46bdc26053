package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wasmserve/wasmserve/host/internal/config"
)

// probeBind checks, before the module is compiled, that cfg's TCP listen
// addresses can be bound, so that a port in use is reported at once and
// names where the address came from. It binds and closes at once; Run
// binds again. The app's address is not probed when a supervisor passes
// the sockets (Einhorn, Server::Starter, systemd); unix sockets and fd://N
// are never probed. The admin listener, always bound by wasmserve, is
// probed too.
func probeBind(cfg *Config) error {
	if !inherited() {
		if err := probe(cfg, "bind", cfg.Server.Bind, cfg.Server.ReusePort); err != nil {
			return err
		}
	}
	return probe(cfg, "admin.bind", cfg.Server.Admin.Bind, false)
}

// probe binds and closes the TCP address e of the server key named key.
func probe(cfg *Config, key string, e Endpoint, reusePort bool) error {
	if e.IsZero() || e.Network != "" && e.Network != "tcp" {
		return nil
	}
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", e.Address)
	if err == nil {
		return ln.Close()
	}
	origin := cfg.Origin(key)
	from := "from " + origin
	env := config.EnvName(key)
	switch origin {
	case "default":
		from = "the default " + key
	case "PORT", env:
		from = "from the environment variable " + origin
	default:
		if strings.HasPrefix(origin, "--") {
			from = "from the " + origin + " flag"
		}
	}
	what := "listen"
	if key != "bind" {
		what = key
	}
	fix := "stop the process listening there, or choose another address with " + env + " or " + key + " in " + cfg.File
	if key == "bind" {
		fix = "stop the process listening there, or choose another address with --bind, " + env + " or bind in " + cfg.File
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s (%s): address already in use: %s", what, e.Address, from, fix)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %s (%s): permission denied (ports below 1024 need privileges): choose a port of 1024 or more", what, e.Address, from)
	}
	return fmt.Errorf("%s %s (%s): %w", what, e.Address, from, err)
}

// inherited reports whether a supervisor passes listening sockets, which
// Run then uses instead of binding (see host/internal/listen).
func inherited() bool {
	if n, _ := strconv.Atoi(os.Getenv("EINHORN_FD_COUNT")); n > 0 {
		return true
	}
	if os.Getenv("SERVER_STARTER_PORT") != "" {
		return true
	}
	return os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid())
}

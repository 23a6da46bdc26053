package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeBind checks, before the module is compiled, that cfg's TCP listen
// address can be bound, so that a port in use is reported at once and
// names where the address came from. It binds and closes at once; Run
// binds again. Nothing is probed when a supervisor passes the sockets
// (Einhorn, Server::Starter, systemd) or for unix sockets and fd://N.
func probeBind(cfg *Config) error {
	b := cfg.Server.Bind
	if b.Network != "" && b.Network != "tcp" || inherited() {
		return nil
	}
	lc := net.ListenConfig{}
	if cfg.Server.ReusePort {
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
	ln, err := lc.Listen(context.Background(), "tcp", b.Address)
	if err == nil {
		return ln.Close()
	}
	origin := cfg.Origin("bind")
	from := "from " + origin
	switch origin {
	case "--bind":
		from = "from the --bind flag"
	case "default":
		from = "the default bind"
	case "PORT", envBind:
		from = "from the environment variable " + origin
	}
	fix := "stop the process listening there, or choose another address with --bind, " + envBind + " or bind in " + cfg.File
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listen %s (%s): address already in use: %s", b.Address, from, fix)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("listen %s (%s): permission denied (ports below 1024 need privileges): choose a port of 1024 or more", b.Address, from)
	}
	return fmt.Errorf("listen %s (%s): %w", b.Address, from, err)
}

const envBind = "WASMSERVE_BIND"

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

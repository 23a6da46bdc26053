// Package listen owns the listening sockets: it takes them from a
// supervisor (Einhorn, Server::Starter, systemd socket activation) or binds
// them itself. Nothing else in wasmserve creates a listening socket.
package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Spec says where to listen when no socket is inherited.
type Spec struct {
	// Network is "tcp", "unix", or "fd": Address is then the number of an
	// inherited file descriptor, as gunicorn's fd://N. An empty Network
	// means "tcp".
	Network string
	// Address is host:port for "tcp" (":9090" is every interface, IPv6
	// hosts are bracketed as "[::1]:9090", host names are resolved and the
	// first address is bound), a socket path for "unix" (a leading '@'
	// names the abstract namespace), or a descriptor number for "fd".
	Address   string
	Backlog   int  // listen(2) backlog; 0 means DefaultBacklog
	ReusePort bool // SO_REUSEPORT on TCP sockets
}

// DefaultBacklog is the listen(2) backlog used when Spec.Backlog is 0, as
// gunicorn's. The kernel caps it at net.core.somaxconn.
const DefaultBacklog = 2048

// Source names where the listeners came from.
type Source string

// Sources, in order of precedence.
const (
	Einhorn       Source = "einhorn"        // EINHORN_FD_COUNT, EINHORN_FD_<i>
	ServerStarter Source = "server-starter" // SERVER_STARTER_PORT
	Systemd       Source = "systemd"        // LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES
	Bind          Source = "bind"           // Spec: bound by Open, or Spec's fd
)

// Env is the part of the operating system Open uses. OSEnv returns the real
// one; tests replace the functions, as cloudflare/tableflip does, so that
// they neither read nor change the process environment.
type Env struct {
	Getenv   func(key string) string
	Unsetenv func(key string) error
	Getpid   func() int
	// File returns the inherited descriptor fd as a file that Open owns
	// and closes, or nil when fd is not open. name describes where fd came
	// from, for error messages.
	File func(fd int, name string) *os.File
}

// OSEnv returns the real process environment and file descriptors.
func OSEnv() Env {
	return Env{
		Getenv:   os.Getenv,
		Unsetenv: os.Unsetenv,
		Getpid:   os.Getpid,
		File: func(fd int, name string) *os.File {
			if fd < 0 {
				return nil
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				return nil
			}
			return os.NewFile(uintptr(fd), name)
		},
	}
}

// Open returns the listeners to serve on and where they came from, taking
// the first of these that is present:
//
//  1. Einhorn: EINHORN_FD_COUNT descriptors EINHORN_FD_0 … EINHORN_FD_<n-1>,
//     in that order.
//  2. Server::Starter: every `<key>=<fd>` entry of SERVER_STARTER_PORT
//     (entries separated by ';', the fd after the last '='), in order.
//  3. systemd socket activation: when LISTEN_PID is this process and
//     LISTEN_FDS > 0, descriptors 3 … 3+LISTEN_FDS-1 (LISTEN_FDNAMES names
//     them in errors). LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset
//     whenever LISTEN_PID is set, as sd_listen_fds(3) does, so that child
//     processes do not inherit them.
//  4. spec: the descriptor it names (Network "fd"), or a socket Open binds
//     itself with spec's backlog and options.
//
// An inherited descriptor must be a listening stream socket (TCP or UNIX,
// told apart by the socket itself); otherwise Open fails with an error
// naming the variable and the descriptor, such as
// "listen: EINHORN_FD_0=7: not a listening socket: ...". Open takes
// ownership of every inherited descriptor it uses: the returned listeners
// hold duplicates and the originals are closed.
//
// On error no listener is left open. The caller closes the listeners.
// Closing a UNIX listener Open bound removes its socket file; closing an
// inherited one never does, because the socket belongs to the supervisor.
func Open(spec Spec, env Env) ([]net.Listener, Source, error) {
	if n := env.Getenv("EINHORN_FD_COUNT"); n != "" {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 {
			return nil, Einhorn, fmt.Errorf("listen: EINHORN_FD_COUNT=%q is not a count", n)
		}
		if count > 0 {
			var lns []net.Listener
			for i := range count {
				name := "EINHORN_FD_" + strconv.Itoa(i)
				ln, err := fromEnvFD(env, name, env.Getenv(name))
				if err != nil {
					closeAll(lns)
					return nil, Einhorn, err
				}
				lns = append(lns, ln)
			}
			return lns, Einhorn, nil
		}
	}
	if v := env.Getenv("SERVER_STARTER_PORT"); v != "" {
		var lns []net.Listener
		for _, entry := range strings.Split(v, ";") {
			if entry == "" {
				continue
			}
			i := strings.LastIndexByte(entry, '=')
			if i < 0 {
				closeAll(lns)
				return nil, ServerStarter, fmt.Errorf("listen: SERVER_STARTER_PORT entry %q has no =fd", entry)
			}
			ln, err := fromEnvFD(env, "SERVER_STARTER_PORT["+entry[:i]+"]", entry[i+1:])
			if err != nil {
				closeAll(lns)
				return nil, ServerStarter, err
			}
			lns = append(lns, ln)
		}
		if len(lns) == 0 {
			return nil, ServerStarter, fmt.Errorf("listen: SERVER_STARTER_PORT=%q names no socket", v)
		}
		return lns, ServerStarter, nil
	}
	if pid := env.Getenv("LISTEN_PID"); pid != "" {
		fds := env.Getenv("LISTEN_FDS")
		names := strings.Split(env.Getenv("LISTEN_FDNAMES"), ":")
		for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			if err := env.Unsetenv(k); err != nil {
				return nil, Systemd, fmt.Errorf("listen: unset %s: %w", k, err)
			}
		}
		if pid == strconv.Itoa(env.Getpid()) {
			n, err := strconv.Atoi(fds)
			if err != nil || n < 0 {
				return nil, Systemd, fmt.Errorf("listen: LISTEN_FDS=%q is not a count", fds)
			}
			if n > 0 {
				var lns []net.Listener
				for i := range n {
					name := "LISTEN_FDS[" + strconv.Itoa(i) + "]"
					if i < len(names) && names[i] != "" {
						name += "(" + names[i] + ")"
					}
					ln, err := fromFD(env, name, listenFDsStart+i)
					if err != nil {
						closeAll(lns)
						return nil, Systemd, err
					}
					lns = append(lns, ln)
				}
				return lns, Systemd, nil
			}
		}
	}
	if spec.Network == "fd" {
		ln, err := fromEnvFD(env, "fd://"+spec.Address, spec.Address)
		if err != nil {
			return nil, Bind, err
		}
		return []net.Listener{ln}, Bind, nil
	}
	ln, err := bind(spec)
	if err != nil {
		return nil, Bind, err
	}
	return []net.Listener{ln}, Bind, nil
}

// listenFDsStart is SD_LISTEN_FDS_START, the first descriptor systemd
// passes.
const listenFDsStart = 3

// fromEnvFD returns the listener on the descriptor written as value in the
// variable name.
func fromEnvFD(env Env, name, value string) (net.Listener, error) {
	fd, err := strconv.Atoi(value)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("listen: %s=%q is not a file descriptor", name, value)
	}
	return fromFD(env, name, fd)
}

// fromFD returns a listener on the inherited descriptor fd, which it
// closes, after checking that fd is a listening stream socket.
func fromFD(env Env, name string, fd int) (net.Listener, error) {
	f := env.File(fd, name)
	if f == nil {
		return nil, fmt.Errorf("listen: %s=%d: not an open file descriptor", name, fd)
	}
	defer f.Close()
	if err := checkListening(f); err != nil {
		return nil, fmt.Errorf("listen: %s=%d: not a listening socket: %w", name, fd, err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen: %s=%d: not a listening socket: %w", name, fd, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

// errNotListening and its kin say why a descriptor is not a listening
// stream socket.
var (
	errNotSocket    = errors.New("not a socket")
	errNotStream    = errors.New("not a stream socket")
	errNotListening = errors.New("socket is not listening")
)

// checkListening returns nil if c's descriptor is a stream socket in the
// listening state.
func checkListening(c syscall.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = raw.Control(func(fd uintptr) {
		typ, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		switch {
		case errors.Is(err, unix.ENOTSOCK):
			cerr = errNotSocket
			return
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
			return
		case typ != unix.SOCK_STREAM:
			cerr = errNotStream
			return
		}
		acc, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case acc == 0:
			cerr = errNotListening
		}
	})
	if err != nil {
		return err
	}
	return cerr
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

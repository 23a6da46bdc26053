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
)

// Spec says where to listen when no socket is inherited.
type Spec struct {
	// Network is "tcp", "unix", or "fd" (Address is an inherited file
	// descriptor number, as gunicorn's fd://N).
	Network   string
	Address   string
	Backlog   int  // listen(2) backlog; 0 means 2048
	ReusePort bool // SO_REUSEPORT on TCP sockets
}

// Source names where the listeners came from.
type Source string

// Sources, in order of precedence.
const (
	Einhorn       Source = "einhorn"
	ServerStarter Source = "server-starter"
	Systemd       Source = "systemd"
	Bind          Source = "bind"
)

// Env is the process environment Open reads. Tests replace it.
type Env struct {
	Getenv   func(string) string
	Unsetenv func(string) error
	Getpid   func() int
	// File returns the inherited file descriptor fd as a file.
	File func(fd int, name string) *os.File
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{
		Getenv:   os.Getenv,
		Unsetenv: os.Unsetenv,
		Getpid:   os.Getpid,
		File:     func(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) },
	}
}

// Open returns the listeners to serve on and their source: Einhorn's
// EINHORN_FD_COUNT/EINHORN_FD_<i>, else Server::Starter's
// SERVER_STARTER_PORT (every entry), else systemd's LISTEN_FDS when
// LISTEN_PID is this process (the variables are then unset), else a socket
// bound from spec.
func Open(spec Spec, env Env) ([]net.Listener, Source, error) {
	if n := env.Getenv("EINHORN_FD_COUNT"); n != "" {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 {
			return nil, Einhorn, fmt.Errorf("listen: EINHORN_FD_COUNT=%q is not a count", n)
		}
		var lns []net.Listener
		for i := 0; i < count; i++ {
			name := fmt.Sprintf("EINHORN_FD_%d", i)
			ln, err := fromEnvFD(env, name, env.Getenv(name))
			if err != nil {
				closeAll(lns)
				return nil, Einhorn, err
			}
			lns = append(lns, ln)
		}
		if len(lns) > 0 {
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
		return lns, ServerStarter, nil
	}
	if pid := env.Getenv("LISTEN_PID"); pid != "" && pid == strconv.Itoa(env.Getpid()) {
		n, err := strconv.Atoi(env.Getenv("LISTEN_FDS"))
		names := strings.Split(env.Getenv("LISTEN_FDNAMES"), ":")
		for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			env.Unsetenv(k)
		}
		if err == nil && n > 0 {
			var lns []net.Listener
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("LISTEN_FDS[%d]", i)
				if i < len(names) && names[i] != "" {
					name += "(" + names[i] + ")"
				}
				ln, err := fromFD(env, name, 3+i)
				if err != nil {
					closeAll(lns)
					return nil, Systemd, err
				}
				lns = append(lns, ln)
			}
			return lns, Systemd, nil
		}
	}
	if spec.Network == "fd" {
		fd, err := strconv.Atoi(spec.Address)
		if err != nil {
			return nil, Bind, fmt.Errorf("listen: fd://%s: not a file descriptor", spec.Address)
		}
		ln, err := fromFD(env, "fd://"+spec.Address, fd)
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

func fromEnvFD(env Env, name, value string) (net.Listener, error) {
	fd, err := strconv.Atoi(value)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("listen: %s=%q is not a file descriptor", name, value)
	}
	return fromFD(env, name, fd)
}

func fromFD(env Env, name string, fd int) (net.Listener, error) {
	f := env.File(fd, name)
	if f == nil {
		return nil, fmt.Errorf("listen: %s=%d: not an open file descriptor", name, fd)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen: %s=%d: not a listening socket: %w", name, fd, err)
	}
	if !isListening(ln) {
		ln.Close()
		return nil, fmt.Errorf("listen: %s=%d: not a listening socket", name, fd)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

var errInUse = errors.New("in use by another process")

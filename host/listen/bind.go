package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// bind creates, binds and listens on a socket for spec with its backlog.
func bind(spec Spec) (net.Listener, error) {
	backlog := spec.Backlog
	if backlog <= 0 {
		backlog = 2048
	}
	switch spec.Network {
	case "unix":
		return bindUnix(spec.Address, backlog)
	case "tcp", "":
		return bindTCP(spec.Address, backlog, spec.ReusePort)
	}
	return nil, fmt.Errorf("listen: unknown network %q", spec.Network)
}

func bindTCP(addr string, backlog int, reusePort bool) (net.Listener, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: bind tcp %s: %w", addr, err)
	}
	var sa unix.Sockaddr
	family := unix.AF_INET6
	if ip4 := ta.IP.To4(); ip4 != nil {
		family = unix.AF_INET
		s := &unix.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		s := &unix.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("listen: bind tcp %s: socket: %w", addr, err)
	}
	opts := []int{unix.SO_REUSEADDR}
	if reusePort {
		opts = append(opts, unix.SO_REUSEPORT)
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("listen: bind tcp %s: setsockopt: %w", addr, err)
		}
	}
	return finish(fd, sa, backlog, "tcp "+addr)
}

func bindUnix(path string, backlog int) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen: bind unix %s: file exists and is not a socket", path)
		}
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen: bind unix %s: socket %w", path, errInUse)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen: bind unix %s: probe existing socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen: bind unix %s: remove stale socket: %w", path, err)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("listen: bind unix %s: socket: %w", path, err)
	}
	ln, err := finish(fd, &unix.SockaddrUnix{Name: path}, backlog, "unix "+path)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
}

// finish binds and listens on fd and wraps it as a net.Listener.
func finish(fd int, sa unix.Sockaddr, backlog int, what string) (net.Listener, error) {
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen: bind %s: %w", what, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen: listen %s: %w", what, err)
	}
	f := os.NewFile(uintptr(fd), what)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen: %s: %w", what, err)
	}
	return ln, nil
}

// isListening reports whether ln's socket is in the listening state.
func isListening(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	listening := false
	raw.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		listening = err == nil && v == 1
	})
	return listening
}

package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// bind creates, binds and listens on a socket for spec. It does not use
// net.Listen, whose backlog is always net.core.somaxconn.
func bind(spec Spec) (net.Listener, error) {
	backlog := spec.Backlog
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	switch spec.Network {
	case "tcp", "":
		return bindTCP(spec.Address, backlog, spec.ReusePort)
	case "unix":
		return bindUnix(spec.Address, backlog)
	}
	return nil, fmt.Errorf("listen: unknown network %q", spec.Network)
}

func bindTCP(addr string, backlog int, reusePort bool) (net.Listener, error) {
	what := "tcp " + addr
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: bind %s: %w", what, err)
	}
	fd, sa, err := tcpSocket(ta)
	if err != nil {
		return nil, fmt.Errorf("listen: bind %s: %w", what, err)
	}
	opts := []int{unix.SO_REUSEADDR}
	if reusePort {
		opts = append(opts, unix.SO_REUSEPORT)
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("listen: bind %s: %w", what, os.NewSyscallError("setsockopt", err))
		}
	}
	return finish(fd, sa, backlog, what)
}

// tcpSocket returns a new TCP socket for binding to a and the address to
// bind. An unspecified host gets a dual-stack IPv6 socket, or an IPv4 one
// when the machine has no IPv6.
func tcpSocket(a *net.TCPAddr) (int, unix.Sockaddr, error) {
	const flags = unix.SOCK_STREAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK
	if ip4 := a.IP.To4(); ip4 != nil {
		fd, err := unix.Socket(unix.AF_INET, flags, 0)
		if err != nil {
			return -1, nil, os.NewSyscallError("socket", err)
		}
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return fd, sa, nil
	}
	fd, err := unix.Socket(unix.AF_INET6, flags, 0)
	if err != nil {
		if len(a.IP) == 0 || a.IP.IsUnspecified() {
			return tcpSocket(&net.TCPAddr{IP: net.IPv4zero, Port: a.Port})
		}
		return -1, nil, os.NewSyscallError("socket", err)
	}
	// Accept IPv4 too on a wildcard address, as net.Listen("tcp", ...)
	// does, whatever net.ipv6.bindv6only says.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError("setsockopt", err)
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	if a.IP != nil {
		copy(sa.Addr[:], a.IP.To16())
	}
	if a.Zone != "" {
		ifi, err := net.InterfaceByName(a.Zone)
		if err != nil {
			unix.Close(fd)
			return -1, nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return fd, sa, nil
}

// bindUnix binds a UNIX socket at path. A stale socket file (nothing
// answers on it) is replaced; a live one, or a file that is not a socket,
// is an error and left alone.
func bindUnix(path string, backlog int) (net.Listener, error) {
	what := "unix " + path
	if path == "" {
		return nil, fmt.Errorf("listen: bind unix: empty socket path")
	}
	abstract := strings.HasPrefix(path, "@")
	if st, err := os.Lstat(path); !abstract && err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen: bind %s: file exists and is not a socket", what)
		}
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen: bind %s: unix socket %s is in use by another process", what, path)
		}
		if !errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("listen: bind %s: probe existing socket: %w", what, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen: bind %s: remove stale socket: %w", what, err)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("listen: bind %s: %w", what, os.NewSyscallError("socket", err))
	}
	ln, err := finish(fd, &unix.SockaddrUnix{Name: path}, backlog, what)
	if err != nil {
		return nil, err
	}
	// The socket file is ours: Close removes it.
	ln.(*net.UnixListener).SetUnlinkOnClose(!abstract)
	return ln, nil
}

// finish binds fd to sa, listens with backlog and returns fd as a
// net.Listener. It closes fd on error. Errors from bind(2) and listen(2)
// are the bare errno, so that errors.Is(err, syscall.EADDRINUSE) works and
// the message reads "listen: bind tcp 127.0.0.1:9090: address already in
// use".
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

package listen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdSet hands out real sockets under made-up descriptor numbers, as a
// supervisor's inherited fds.
type fdSet struct {
	t     *testing.T
	files map[int]*os.File
}

func newFDs(t *testing.T) *fdSet { return &fdSet{t: t, files: map[int]*os.File{}} }

// listener adds a fresh listening socket ("tcp" or "unix") as fd.
func (s *fdSet) listener(fd int, network string) net.Addr {
	s.t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(s.t.TempDir(), "s.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		s.t.Fatal(err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	s.files[fd] = f
	s.t.Cleanup(func() { f.Close() })
	return ln.Addr()
}

// file adds fd as something that is not a listening socket.
func (s *fdSet) file(fd int, f *os.File) {
	s.files[fd] = f
	s.t.Cleanup(func() { f.Close() })
}

func (s *fdSet) env(vars map[string]string, pid int) Env {
	return Env{
		Getenv:   func(k string) string { return vars[k] },
		Unsetenv: func(k string) error { delete(vars, k); return nil },
		Getpid:   func() int { return pid },
		File: func(fd int, name string) *os.File {
			f, ok := s.files[fd]
			if !ok {
				return nil
			}
			// Open closes the file it is given, like an inherited fd: give
			// it a duplicate so that the test's copy stays valid.
			d, err := unix.Dup(int(f.Fd()))
			if err != nil {
				s.t.Fatal(err)
			}
			return os.NewFile(uintptr(d), name)
		},
	}
}

// roundTripAddr checks that ln is on want and accepts a connection dialled
// to it.
func roundTripAddr(t *testing.T, ln net.Listener, want net.Addr) {
	t.Helper()
	if ln.Addr().String() != want.String() {
		t.Errorf("listener address %s, want %s", ln.Addr(), want)
	}
	roundTrip(t, ln, want.String())
}

// roundTrip checks that ln accepts a connection dialled to addr.
func roundTrip(t *testing.T, ln net.Listener, addr string) {
	t.Helper()
	c, err := net.DialTimeout(ln.Addr().Network(), addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(10 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept on %s: %v", ln.Addr(), err)
	}
	s.Close()
}

func closeAllT(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func TestOpenInherited(t *testing.T) {
	t.Parallel()
	pid := 777
	for _, tc := range []struct {
		name   string
		fds    map[int]string // fd → "tcp" | "unix"
		vars   func(addr map[int]net.Addr) map[string]string
		source Source
		order  []int // expected listeners, as fds
		unset  []string
	}{
		{
			name: "einhorn tcp and unix",
			fds:  map[int]string{5: "tcp", 6: "unix"},
			vars: func(map[int]net.Addr) map[string]string {
				return map[string]string{"EINHORN_FD_COUNT": "2", "EINHORN_FD_0": "6", "EINHORN_FD_1": "5"}
			},
			source: Einhorn, order: []int{6, 5},
		},
		{
			name: "einhorn wins over the others",
			fds:  map[int]string{3: "tcp", 5: "tcp", 9: "tcp"},
			vars: func(a map[int]net.Addr) map[string]string {
				return map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "9",
					"SERVER_STARTER_PORT": a[5].String() + "=5", "LISTEN_PID": "777", "LISTEN_FDS": "1"}
			},
			source: Einhorn, order: []int{9},
		},
		{
			name: "server starter every entry",
			fds:  map[int]string{3: "tcp", 4: "tcp", 5: "unix"},
			vars: func(a map[int]net.Addr) map[string]string {
				return map[string]string{"SERVER_STARTER_PORT": fmt.Sprintf("8080=3;%s=4;%s=5;", a[4], a[5])}
			},
			source: ServerStarter, order: []int{3, 4, 5},
		},
		{
			name: "server starter keys are labels",
			fds:  map[int]string{4: "tcp", 6: "unix"},
			vars: func(map[int]net.Addr) map[string]string {
				return map[string]string{"SERVER_STARTER_PORT": "127.0.0.1:8081=4;/tmp/x.sock=6"}
			},
			source: ServerStarter, order: []int{4, 6},
		},
		{
			name: "server starter wins over systemd",
			fds:  map[int]string{3: "tcp", 7: "tcp"},
			vars: func(a map[int]net.Addr) map[string]string {
				return map[string]string{"SERVER_STARTER_PORT": "[::1]:80=7", "LISTEN_PID": "777", "LISTEN_FDS": "1"}
			},
			source: ServerStarter, order: []int{7},
		},
		{
			name: "systemd",
			fds:  map[int]string{3: "tcp", 4: "unix"},
			vars: func(map[int]net.Addr) map[string]string {
				return map[string]string{"LISTEN_PID": "777", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}
			},
			source: Systemd, order: []int{3, 4},
			unset: []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fds := newFDs(t)
			addrs := map[int]net.Addr{}
			for fd, network := range tc.fds {
				addrs[fd] = fds.listener(fd, network)
			}
			vars := tc.vars(addrs)
			lns, src, err := Open(Spec{Network: "tcp", Address: "256.0.0.1:1"}, fds.env(vars, pid))
			if err != nil {
				t.Fatal(err)
			}
			defer closeAllT(lns)
			if src != tc.source {
				t.Errorf("source = %s, want %s", src, tc.source)
			}
			if len(lns) != len(tc.order) {
				t.Fatalf("got %d listeners, want %d", len(lns), len(tc.order))
			}
			for i, fd := range tc.order {
				roundTripAddr(t, lns[i], addrs[fd])
			}
			for _, k := range tc.unset {
				if _, ok := vars[k]; ok {
					t.Errorf("%s still set", k)
				}
			}
		})
	}
}

// TestOpenSystemdNotOurs: systemd's variables for another process, or
// for no socket, fall through to our own bind, and are unset either way so
// that our children do not inherit them.
func TestOpenSystemdNotOurs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"other pid", map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"}},
		{"no fds", map[string]string{"LISTEN_PID": "777", "LISTEN_FDS": "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fds := newFDs(t)
			fds.listener(3, "tcp")
			sock := filepath.Join(t.TempDir(), "own.sock")
			lns, src, err := Open(Spec{Network: "unix", Address: sock}, fds.env(tc.vars, 777))
			if err != nil {
				t.Fatal(err)
			}
			defer closeAllT(lns)
			if src != Bind || len(lns) != 1 || lns[0].Addr().String() != sock {
				t.Errorf("got %s %v, want our own bind on %s", src, lns, sock)
			}
			if len(tc.vars) != 0 {
				t.Errorf("variables left set: %v", tc.vars)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	fds := newFDs(t)
	fds.listener(3, "tcp")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fds.file(10, r)
	fds.file(11, w)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := conn.(*net.UDPConn).File()
	conn.Close()
	fds.file(12, cf)
	fds.file(13, connectedSocket(t))
	plain, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	fds.file(14, plain)
	packet, err := net.Listen("unixpacket", filepath.Join(t.TempDir(), "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := packet.(*net.UnixListener).File()
	packet.Close()
	if err != nil {
		t.Fatal(err)
	}
	fds.file(15, pf)
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"einhorn count", map[string]string{"EINHORN_FD_COUNT": "two"}, `EINHORN_FD_COUNT="two" is not a count`},
		{"einhorn fd missing", map[string]string{"EINHORN_FD_COUNT": "2", "EINHORN_FD_0": "3"}, `EINHORN_FD_1="" is not a file descriptor`},
		{"einhorn fd closed", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "99"}, "EINHORN_FD_0=99: not an open file descriptor"},
		{"pipe", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "10"}, "listen: EINHORN_FD_0=10: not a listening socket: not a socket"},
		{"regular file", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "14"}, "listen: EINHORN_FD_0=14: not a listening socket: not a socket"},
		{"connected socket", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "13"}, "listen: EINHORN_FD_0=13: not a listening socket: socket is not listening"},
		{"udp", map[string]string{"SERVER_STARTER_PORT": "127.0.0.1:1=12"}, "listen: SERVER_STARTER_PORT[127.0.0.1:1]=12: not a listening socket: not a stream socket"},
		{"seqpacket", map[string]string{"SERVER_STARTER_PORT": "/tmp/p.sock=15"}, "SERVER_STARTER_PORT[/tmp/p.sock]=15: not a listening socket: not a stream socket"},
		{"starter empty", map[string]string{"SERVER_STARTER_PORT": ";"}, `SERVER_STARTER_PORT=";" names no socket`},
		{"systemd count", map[string]string{"LISTEN_PID": "777", "LISTEN_FDS": "x"}, `LISTEN_FDS="x" is not a count`},
		{"spec fd", map[string]string{}, "fd://10=10: not a listening socket"},
		{"starter no fd", map[string]string{"SERVER_STARTER_PORT": "8080"}, `entry "8080" has no =fd`},
		{"starter bad fd", map[string]string{"SERVER_STARTER_PORT": "8080=3;9090=x"}, `SERVER_STARTER_PORT[9090]="x"`},
		{"systemd pipe", map[string]string{"LISTEN_PID": "777", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"}, "LISTEN_FDS[0](web)=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := fds.env(tc.vars, 777)
			if tc.name == "systemd pipe" {
				// fd 3 is a pipe here.
				e := env
				env.File = func(fd int, name string) *os.File {
					if fd == 3 {
						return e.File(11, name)
					}
					return e.File(fd, name)
				}
			}
			spec := Spec{Network: "tcp", Address: "127.0.0.1:0"}
			if tc.name == "spec fd" {
				spec = Spec{Network: "fd", Address: "10"}
			}
			lns, _, err := Open(spec, env)
			closeAllT(lns)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// connectedSocket returns the client end of an established TCP
// connection, as a file.
func connectedSocket(t *testing.T) *os.File {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// noEnv is an Env with no inherited socket: Open binds from its Spec.
func noEnv(t *testing.T) Env { return newFDs(t).env(map[string]string{}, 1) }

func TestBindTCP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		addr    string
		dial    []string // hosts to dial on the bound port
		backlog int
	}{
		{"ipv4", "127.0.0.1:0", []string{"127.0.0.1"}, 0},
		{"ipv6", "[::1]:0", []string{"::1"}, 0},
		{"host name", "localhost:0", []string{"localhost"}, 0},
		{"all interfaces", ":0", []string{"127.0.0.1", "::1"}, 4},
		{"small backlog", "127.0.0.1:0", []string{"127.0.0.1"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lns, src, err := Open(Spec{Network: "tcp", Address: tc.addr, Backlog: tc.backlog}, noEnv(t))
			if err != nil {
				// A machine without IPv6 must still say clearly what failed.
				if tc.name == "ipv6" {
					if !strings.HasPrefix(err.Error(), "listen: bind tcp "+tc.addr+": ") {
						t.Fatalf("unclear error: %v", err)
					}
					t.Skipf("no IPv6 here: %v", err)
				}
				t.Fatal(err)
			}
			defer closeAllT(lns)
			if src != Bind || len(lns) != 1 {
				t.Fatalf("got %d listeners from %s, want 1 from bind", len(lns), src)
			}
			ln := lns[0]
			if _, ok := ln.(*net.TCPListener); !ok {
				t.Errorf("listener is %T, want *net.TCPListener", ln)
			}
			if got := sockopt(t, ln, unix.SO_REUSEADDR); got != 1 {
				t.Errorf("SO_REUSEADDR = %d, want 1", got)
			}
			if got := sockopt(t, ln, unix.SO_REUSEPORT); got != 0 {
				t.Errorf("SO_REUSEPORT = %d, want 0", got)
			}
			want := tc.backlog
			if want == 0 {
				want = min(DefaultBacklog, somaxconn(t))
			}
			if got := listenBacklog(t, ln); got != want {
				t.Errorf("listen backlog = %d, want %d", got, want)
			}
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			for _, host := range tc.dial {
				if host == "::1" && tc.addr == ":0" && ln.Addr().(*net.TCPAddr).IP.To4() != nil {
					continue // no IPv6 here: the wildcard socket is IPv4 only
				}
				roundTrip(t, ln, net.JoinHostPort(host, port))
			}
		})
	}
}

// TestBindTCPBacklogQueues: connects queue in the backlog before any
// Accept, and the kernel counts them against the backlog we asked for.
func TestBindTCPBacklogQueues(t *testing.T) {
	t.Parallel()
	const backlog = 4
	lns, _, err := Open(Spec{Network: "tcp", Address: "127.0.0.1:0", Backlog: backlog}, noEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	ln := lns[0]
	defer ln.Close()
	for i := 0; i < backlog; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		defer c.Close()
	}
	waitQueued(t, ln, backlog)
	n := 0
	if err := DrainBacklog(ln, func(c net.Conn) { n++; c.Close() }); err != nil {
		t.Fatal(err)
	}
	if n != backlog {
		t.Errorf("drained %d connections, want %d", n, backlog)
	}
}

func TestBindTCPReusePort(t *testing.T) {
	t.Parallel()
	first, _, err := Open(Spec{Network: "tcp", Address: "127.0.0.1:0", ReusePort: true}, noEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAllT(first)
	addr := first[0].Addr().String()
	if got := sockopt(t, first[0], unix.SO_REUSEPORT); got != 1 {
		t.Errorf("SO_REUSEPORT = %d, want 1", got)
	}
	second, _, err := Open(Spec{Network: "tcp", Address: addr, ReusePort: true}, noEnv(t))
	if err != nil {
		t.Fatalf("second bind of %s with reuse_port: %v", addr, err)
	}
	defer closeAllT(second)
	if got := second[0].Addr().String(); got != addr {
		t.Errorf("second listener on %s, want %s", got, addr)
	}

	// Without SO_REUSEPORT on the new socket the port is taken.
	_, _, err = Open(Spec{Network: "tcp", Address: addr}, noEnv(t))
	if want := "listen: bind tcp " + addr + ": address already in use"; err == nil || err.Error() != want {
		t.Errorf("bind of a taken port: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind of a taken port: %v is not EADDRINUSE", err)
	}
}

func TestBindErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Network: "udp", Address: ":1"}, `listen: unknown network "udp"`},
		{Spec{Network: "tcp", Address: "127.0.0.1"}, "listen: bind tcp 127.0.0.1: "},
		{Spec{Network: "tcp", Address: "256.0.0.1:80"}, "listen: bind tcp 256.0.0.1:80: "},
		{Spec{Network: "unix", Address: ""}, "listen: bind unix: empty socket path"},
		{Spec{Network: "unix", Address: "/nonexistent/dir/s.sock"}, "listen: bind unix /nonexistent/dir/s.sock: no such file or directory"},
		{Spec{Network: "fd", Address: "x"}, `listen: fd://x="x" is not a file descriptor`},
	} {
		t.Run(tc.spec.Network+" "+tc.spec.Address, func(t *testing.T) {
			t.Parallel()
			lns, _, err := Open(tc.spec, noEnv(t))
			closeAllT(lns)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func somaxconn(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Skipf("somaxconn: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tcpInfo returns TCP_INFO of a TCP listener. For a socket in the LISTEN
// state Linux reports the backlog it was given (capped at somaxconn) in
// tcpi_sacked and the connections waiting in it in tcpi_unacked.
func tcpInfo(t *testing.T, ln net.Listener) *unix.TCPInfo {
	t.Helper()
	raw, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	raw.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return info
}

func listenBacklog(t *testing.T, ln net.Listener) int { return int(tcpInfo(t, ln).Sacked) }

// waitQueued waits until n connections wait in ln's accept queue. On
// loopback the handshake's last ACK is normally processed before connect
// returns; this covers the rare case where it is not.
func waitQueued(t *testing.T, ln net.Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int(tcpInfo(t, ln).Unacked) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections queued, want %d", tcpInfo(t, ln).Unacked, n)
		}
		runtime.Gosched()
	}
}

func sockopt(t *testing.T, ln net.Listener, opt int) int {
	t.Helper()
	raw, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestBindUnix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("new socket", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "new.sock")
		lns, src, err := Open(Spec{Network: "unix", Address: path, Backlog: 8}, noEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lns[0].(*net.UnixListener); !ok || src != Bind {
			t.Errorf("got %T from %s, want *net.UnixListener from bind", lns[0], src)
		}
		roundTripAddr(t, lns[0], &net.UnixAddr{Name: path, Net: "unix"})
		if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSocket == 0 {
			t.Fatalf("socket file: %v, %v", st, err)
		}
		lns[0].Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file left after close: %v", err)
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "stale.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // the file stays; nothing listens on it
		lns, _, err := Open(Spec{Network: "unix", Address: path}, noEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		roundTripAddr(t, lns[0], lns[0].Addr())
		lns[0].Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file left after close: %v", err)
		}
	})
	t.Run("live socket refused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "live.sock")
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		lns, _, err := Open(Spec{Network: "unix", Address: path}, noEnv(t))
		closeAllT(lns)
		if want := "listen: bind unix " + path + ": unix socket " + path + " is in use by another process"; err == nil || err.Error() != want {
			t.Fatalf("Open on a live socket: %v, want %q", err, want)
		}
		// The probe's connection is queued; the owner still serves.
		c, err := live.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		roundTripAddr(t, live, live.Addr())
	})
	t.Run("not a socket", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "plain")
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		lns, _, err := Open(Spec{Network: "unix", Address: path}, noEnv(t))
		closeAllT(lns)
		if want := "listen: bind unix " + path + ": file exists and is not a socket"; err == nil || err.Error() != want {
			t.Fatalf("Open on a plain file: %v, want %q", err, want)
		}
		if b, _ := os.ReadFile(path); string(b) != "x" {
			t.Error("plain file was touched")
		}
	})
	t.Run("abstract", func(t *testing.T) {
		t.Parallel()
		name := fmt.Sprintf("@wasmserve-listen-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		lns, _, err := Open(Spec{Network: "unix", Address: name}, noEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAllT(lns)
		roundTripAddr(t, lns[0], &net.UnixAddr{Name: name, Net: "unix"})
	})
	t.Run("inherited file kept", func(t *testing.T) {
		t.Parallel()
		fds := newFDs(t)
		addr := fds.listener(3, "unix")
		lns, _, err := Open(Spec{}, fds.env(map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "3"}, 1))
		if err != nil {
			t.Fatal(err)
		}
		closeAllT(lns)
		if _, err := os.Lstat(addr.String()); err != nil {
			t.Errorf("closing an inherited listener removed its socket file: %v", err)
		}
	})
}

// TestExecInherited runs this test binary as a child process with a
// listening socket as fd 3 (exec.Cmd.ExtraFiles), as a supervisor starts a
// worker, and checks that the child serves an HTTP request on it.
//
// systemd sets LISTEN_PID to the pid of the process it execs. Here the
// parent cannot know the child's pid before the exec, so it passes
// LISTEN_PID=self and the child (TestHelperChild) replaces it with its own
// pid before calling Open.
func TestExecInherited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want Source
	}{
		{"systemd", []string{"LISTEN_PID=self", "LISTEN_FDS=1", "LISTEN_FDNAMES=web"}, Systemd},
		{"einhorn", []string{"EINHORN_FD_COUNT=1", "EINHORN_FD_0=3"}, Einhorn},
		{"server-starter", []string{"SERVER_STARTER_PORT=127.0.0.1:1=3"}, ServerStarter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f, err := ln.(*net.TCPListener).File()
			ln.Close() // the socket lives on in f, which the child inherits
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChild$")
			cmd.Env = append(os.Environ(), "WASMSERVE_LISTEN_CHILD=1")
			cmd.Env = append(cmd.Env, tc.env...)
			cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
			var out strings.Builder
			cmd.Stdout = &out
			cmd.Stderr = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			f.Close() // only the child holds the socket now
			client := &http.Client{Timeout: 30 * time.Second}
			resp, err := client.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("GET: %v; child output:\n%s", err, out.String())
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v; output:\n%s", err, out.String())
			}
			if want := "source=" + string(tc.want) + " unset=true\n"; resp.StatusCode != http.StatusOK || string(body) != want {
				t.Errorf("child answered %s %q, want 200 %q", resp.Status, body, want)
			}
		})
	}
}

// TestHelperChild is the child process of TestExecInherited: it opens its
// listeners from the real environment, serves one HTTP request, and exits.
func TestHelperChild(t *testing.T) {
	if os.Getenv("WASMSERVE_LISTEN_CHILD") != "1" {
		t.Skip("child process of TestExecInherited")
	}
	if os.Getenv("LISTEN_PID") == "self" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	lns, src, err := Open(Spec{Network: "tcp", Address: "127.0.0.1:0"}, OSEnv())
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	_, set := os.LookupEnv("LISTEN_FDS")
	served := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "source=%s unset=%v\n", src, !set)
		once.Do(func() { close(served) })
	})}
	go srv.Serve(lns[0])
	<-served
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil { // waits for the response
		fmt.Println(err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestDrain(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "d.sock")
			}
			inner, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			ln := Drainable(inner)
			defer ln.Close()
			a := ln.Addr()

			// A serving loop blocked in Accept, as a front end's.
			accepted := make(chan net.Conn, 32)
			loopErr := make(chan error, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						loopErr <- err
						return
					}
					accepted <- c
				}
			}()
			first, err := net.Dial(network, a.String())
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			srv := <-accepted
			srv.Close()

			// Connect while the loop runs: it takes some before Drain and
			// the rest, still queued, during it.
			const queued = 9
			for i := 0; i < queued; i++ {
				c, err := net.Dial(network, a.String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := ln.Drain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-loopErr:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept after drain: %v, want net.ErrClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serving loop still accepting after Drain")
			}
			if len(accepted) != queued {
				t.Errorf("accepted %d queued connections, want %d", len(accepted), queued)
			}
			for len(accepted) > 0 {
				(<-accepted).Close()
			}
			if c, err := net.Dial(network, a.String()); err == nil {
				c.Close()
				t.Error("connect after Drain succeeded, want refused")
			}
			if err := ln.Close(); err != nil {
				t.Errorf("Close after Drain: %v, want nil", err)
			}
			if again, err := ln.Drain(ctx); err != nil || again != n {
				t.Errorf("second Drain = %d, %v; want %d, nil", again, err, n)
			}
		})
	}
}

// TestDrainQueued queues connections while no one accepts, then drains:
// every one is handed to the serving loop.
func TestDrainQueued(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Drainable(inner)
	const queued = 20
	for i := 0; i < queued; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "%d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drained := make(chan int, 1)
	go func() {
		n, err := ln.Drain(ctx)
		if err != nil {
			t.Error(err)
		}
		drained <- n
	}()
	seen := map[string]bool{}
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept: %v", err)
			}
			break
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		seen[line] = true
		c.Close()
	}
	if n := <-drained; len(seen) != queued || n > queued {
		t.Errorf("saw %d distinct connections (Drain counted %d), want %d", len(seen), n, queued)
	}
}

// TestDrainNoServer: with no one accepting, Drain gives up when ctx ends
// and closes the socket.
func TestDrainNoServer(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Drainable(inner)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ln.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain = %v, want deadline exceeded", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Drain gave up: %v", err)
	}
}

// TestDrainBacklog: connections dialled but not yet accepted are all handed
// over, and once the caller closes the listener new connects are refused.
func TestDrainBacklog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		network string
		wrap    bool // drain through a Drainable wrapper
	}{
		{"tcp", false},
		{"unix", false},
		{"tcp", true},
	} {
		t.Run(fmt.Sprintf("%s wrapped=%v", tc.network, tc.wrap), func(t *testing.T) {
			t.Parallel()
			spec := Spec{Network: tc.network, Address: "127.0.0.1:0"}
			if tc.network == "unix" {
				spec.Address = filepath.Join(t.TempDir(), "d.sock")
			}
			lns, _, err := Open(spec, noEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			var ln net.Listener = lns[0]
			if tc.wrap {
				ln = Drainable(ln)
			}
			defer ln.Close()
			const queued = 10
			for i := 0; i < queued; i++ {
				c, err := net.Dial(tc.network, ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "%d\n", i)
			}
			if tc.network == "tcp" {
				waitQueued(t, lns[0], queued)
			}
			var got []string
			err = DrainBacklog(ln, func(c net.Conn) {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					t.Error(err)
				}
				got = append(got, strings.TrimSpace(line))
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != queued {
				t.Fatalf("handed over %d connections, want %d", len(got), queued)
			}
			for i, line := range got {
				if line != strconv.Itoa(i) {
					t.Errorf("connection %d sent %q: not in queue order", i, line)
				}
			}
			// Nothing is left, and DrainBacklog returns at once.
			if err := DrainBacklog(ln, func(c net.Conn) { c.Close(); t.Error("second drain handed over a connection") }); err != nil {
				t.Fatal(err)
			}
			ln.Close()
			if c, err := net.Dial(tc.network, ln.Addr().String()); err == nil {
				c.Close()
				t.Error("connect after close succeeded, want refused")
			} else if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("connect after close: %v, want refused", err)
			}
		})
	}
}

func TestDrainBacklogNoSocket(t *testing.T) {
	t.Parallel()
	err := DrainBacklog(fakeListener{}, func(c net.Conn) { c.Close() })
	if err == nil || !strings.Contains(err.Error(), "has no file descriptor") {
		t.Errorf("DrainBacklog on a listener without a socket: %v", err)
	}
}

// fakeListener is a net.Listener with no socket under it.
type fakeListener struct{}

func (fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (fakeListener) Close() error              { return nil }
func (fakeListener) Addr() net.Addr            { return &net.UnixAddr{Name: "fake", Net: "unix"} }

func TestOSEnvFile(t *testing.T) {
	t.Parallel()
	for _, fd := range []int{-1, 1 << 20} {
		if f := OSEnv().File(fd, "test"); f != nil {
			f.Close()
			t.Errorf("OSEnv().File(%d) = %v, want nil for a descriptor that is not open", fd, f)
		}
	}
}

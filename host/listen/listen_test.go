package listen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// roundTrip checks that ln accepts a connection dialled to want.
func roundTrip(t *testing.T, ln net.Listener, want net.Addr) {
	t.Helper()
	if ln.Addr().String() != want.String() {
		t.Errorf("listener address %s, want %s", ln.Addr(), want)
	}
	c, err := net.DialTimeout(want.Network(), want.String(), 10*time.Second)
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
				roundTrip(t, lns[i], addrs[fd])
			}
			for _, k := range tc.unset {
				if _, ok := vars[k]; ok {
					t.Errorf("%s still set", k)
				}
			}
		})
	}
}

func TestOpenSystemdOtherPID(t *testing.T) {
	t.Parallel()
	fds := newFDs(t)
	fds.listener(3, "tcp")
	vars := map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}
	sock := filepath.Join(t.TempDir(), "own.sock")
	lns, src, err := Open(Spec{Network: "unix", Address: sock}, fds.env(vars, 777))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAllT(lns)
	if src != Bind || lns[0].Addr().String() != sock {
		t.Errorf("got %s %s, want our own bind on %s", src, lns[0].Addr(), sock)
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
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"einhorn count", map[string]string{"EINHORN_FD_COUNT": "two"}, `EINHORN_FD_COUNT="two" is not a count`},
		{"einhorn fd missing", map[string]string{"EINHORN_FD_COUNT": "2", "EINHORN_FD_0": "3"}, `EINHORN_FD_1="" is not a file descriptor`},
		{"einhorn fd closed", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "99"}, "EINHORN_FD_0=99: not an open file descriptor"},
		{"pipe", map[string]string{"EINHORN_FD_COUNT": "1", "EINHORN_FD_0": "10"}, "EINHORN_FD_0=10: not a listening socket"},
		{"udp", map[string]string{"SERVER_STARTER_PORT": "127.0.0.1:1=12"}, "not a listening socket"},
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
			lns, _, err := Open(Spec{Network: "tcp", Address: "127.0.0.1:0"}, env)
			closeAllT(lns)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestBindTCP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		reusePort bool
		backlog   int
	}{
		{"defaults", false, 0},
		{"reuse_port", true, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lns, src, err := Open(Spec{Network: "tcp", Address: "127.0.0.1:0", ReusePort: tc.reusePort, Backlog: tc.backlog}, newFDs(t).env(map[string]string{}, 1))
			if err != nil {
				t.Fatal(err)
			}
			defer closeAllT(lns)
			if src != Bind {
				t.Errorf("source = %s", src)
			}
			if got := sockopt(t, lns[0], unix.SO_REUSEPORT); (got == 1) != tc.reusePort {
				t.Errorf("SO_REUSEPORT = %d, want %v", got, tc.reusePort)
			}
			roundTrip(t, lns[0], lns[0].Addr())
			if tc.reusePort {
				// A second socket may bind the same port.
				more, _, err := Open(Spec{Network: "tcp", Address: lns[0].Addr().String(), ReusePort: true}, newFDs(t).env(map[string]string{}, 1))
				if err != nil {
					t.Fatalf("second bind with reuse_port: %v", err)
				}
				closeAllT(more)
			} else if more, _, err := Open(Spec{Network: "tcp", Address: lns[0].Addr().String()}, newFDs(t).env(map[string]string{}, 1)); err == nil {
				closeAllT(more)
				t.Error("second bind of the same port succeeded without reuse_port")
			}
		})
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
	env := newFDs(t).env(map[string]string{}, 1)
	dir := t.TempDir()

	t.Run("stale socket replaced", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // the file stays; nothing listens on it
		lns, _, err := Open(Spec{Network: "unix", Address: path}, env)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, lns[0], lns[0].Addr())
		lns[0].Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file left after close: %v", err)
		}
	})
	t.Run("live socket kept", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		lns, _, err := Open(Spec{Network: "unix", Address: path}, env)
		closeAllT(lns)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("Open on a live socket: %v, want in use", err)
		}
		roundTrip(t, live, live.Addr())
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(dir, "plain")
		os.WriteFile(path, []byte("x"), 0o644)
		lns, _, err := Open(Spec{Network: "unix", Address: path}, env)
		closeAllT(lns)
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Open on a plain file: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "x" {
			t.Error("plain file was touched")
		}
	})
}

// TestExecInherited runs this test binary as a child with a listening
// socket in ExtraFiles, as a supervisor does, and checks that the child
// serves on it.
func TestExecInherited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want Source
	}{
		{"einhorn", []string{"EINHORN_FD_COUNT=1", "EINHORN_FD_0=3"}, Einhorn},
		{"server-starter", []string{"SERVER_STARTER_PORT=127.0.0.1:1=3"}, ServerStarter},
		{"systemd", []string{"LISTEN_PID=self", "LISTEN_FDS=1", "LISTEN_FDNAMES=web"}, Systemd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f, err := ln.(*net.TCPListener).File()
			ln.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChild$")
			cmd.Env = append(os.Environ(), "WASMSERVE_LISTEN_CHILD=1")
			cmd.Env = append(cmd.Env, tc.env...)
			cmd.ExtraFiles = []*os.File{f}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			got, _ := io.ReadAll(c)
			if want := "source=" + string(tc.want) + " unset=true\n"; string(got) != want {
				line, _ := bufio.NewReader(out).ReadString('\n')
				t.Fatalf("child answered %q, want %q (stdout %q)", got, want, line)
			}
		})
	}
}

// TestHelperChild is the child process of TestExecInherited.
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
	c, err := lns[0].Accept()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	_, set := os.LookupEnv("LISTEN_FDS")
	fmt.Fprintf(c, "source=%s unset=%v\n", src, !set)
	c.Close()
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

// TestDrainBacklog queues connections while no one accepts, then drains:
// every one is handed to the serving loop.
func TestDrainBacklog(t *testing.T) {
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

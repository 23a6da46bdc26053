package supervise

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeEnv is an Env backed by a map; Unsetenv deletes from it.
func fakeEnv(vars map[string]string, files map[int]*os.File) Env {
	return Env{
		Getenv:   func(k string) string { return vars[k] },
		Unsetenv: func(k string) error { delete(vars, k); return nil },
		Getpid:   func() int { return 4242 },
		File:     func(fd int, _ string) *os.File { return files[fd] },
	}
}

// listenGram listens on a unixgram socket at addr and returns it.
func listenGram(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readGram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

func TestNotifier(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }},
		{"abstract", func(t *testing.T) string {
			return "@wasmserve-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.addr(t)
			sock := listenGram(t, addr)
			vars := map[string]string{"NOTIFY_SOCKET": addr}
			n := NewNotifier(fakeEnv(vars, nil))
			if !n.Enabled() {
				t.Fatal("NewNotifier is not enabled with NOTIFY_SOCKET set")
			}
			if _, ok := vars["NOTIFY_SOCKET"]; ok {
				t.Error("NOTIFY_SOCKET not unset")
			}
			if n.Socket() != addr {
				t.Errorf("Socket() = %q, want %q", n.Socket(), addr)
			}
			if err := n.Ready(); err != nil {
				t.Fatal(err)
			}
			if got := readGram(t, sock); got != "READY=1" {
				t.Errorf("Ready sent %q", got)
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := readGram(t, sock)
			lines := strings.Split(got, "\n")
			if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Errorf("Reloading sent %q", got)
			} else if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us <= 0 {
				t.Errorf("Reloading sent a bad MONOTONIC_USEC: %q", lines[1])
			}
			if err := n.Status("serving\n3 workers"); err != nil {
				t.Fatal(err)
			}
			if got := readGram(t, sock); got != "STATUS=serving 3 workers" {
				t.Errorf("Status sent %q", got)
			}
			if err := n.Stopping(); err != nil {
				t.Fatal(err)
			}
			if got := readGram(t, sock); got != "STOPPING=1" {
				t.Errorf("Stopping sent %q", got)
			}
		})
	}
}

func TestNotifierUnset(t *testing.T) {
	t.Parallel()
	n := NewNotifier(fakeEnv(map[string]string{"WATCHDOG_USEC": "1000"}, nil))
	if n != nil {
		t.Fatalf("NewNotifier = %v without NOTIFY_SOCKET, want nil", n)
	}
	// Every method of a nil or zero Notifier is a no-op.
	for name, n := range map[string]*Notifier{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if n.Enabled() {
				t.Error("Enabled")
			}
			status := func() error { return n.Status("x") }
			for _, f := range []func() error{n.Ready, n.Stopping, n.Reloading, status} {
				if err := f(); err != nil {
					t.Errorf("%s Notifier: %v", name, err)
				}
			}
			n.Watchdog(context.Background(), nil, nil) // returns at once
		})
	}
}

func TestNotifierNoListener(t *testing.T) {
	t.Parallel()
	addr := filepath.Join(t.TempDir(), "nobody.sock")
	n := NewNotifier(fakeEnv(map[string]string{"NOTIFY_SOCKET": addr}, nil))
	err := n.Ready()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Ready to a missing socket: %v, want an error naming it", err)
	}
}

func TestWatchdog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pid  string
		want time.Duration
	}{
		{"no pid", "", 40 * time.Millisecond},
		{"our pid", "4242", 40 * time.Millisecond},
		{"other pid", "1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := filepath.Join(t.TempDir(), "notify.sock")
			sock := listenGram(t, addr)
			vars := map[string]string{"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "40000"}
			if tc.pid != "" {
				vars["WATCHDOG_PID"] = tc.pid
			}
			n := NewNotifier(fakeEnv(vars, nil))
			if len(vars) != 0 {
				t.Errorf("variables left set: %v", vars)
			}
			if got := n.WatchdogInterval(); got != tc.want {
				t.Fatalf("WatchdogInterval = %v, want %v", got, tc.want)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); n.Watchdog(ctx, nil, func(err error) { t.Error(err) }) }()
			if tc.want == 0 {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Watchdog did not return without a watchdog interval")
				}
				cancel()
				return
			}
			for i := 0; i < 3; i++ {
				if got := readGram(t, sock); got != "WATCHDOG=1" {
					t.Fatalf("datagram %d = %q, want WATCHDOG=1", i, got)
				}
			}
			cancel()
			<-done
		})
	}
}

func TestEinhornAckPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "einhorn.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c) // the worker closes its end after the line
		got <- string(b)
	}()
	sent, err := EinhornAck(fakeEnv(map[string]string{"EINHORN_SOCK_PATH": path}, nil))
	if err != nil || !sent {
		t.Fatalf("EinhornAck = %v, %v", sent, err)
	}
	if want := `{"command":"worker:ack","pid":4242}` + "\n"; <-got != want {
		t.Errorf("master read a different ack, want %q", want)
	}
}

// The ACK never waits for a reply: a master that accepts, reads nothing and
// never answers does not hold the worker.
func TestEinhornAckNoReply(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "einhorn.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the connection stays queued and unread until here
	done := make(chan error, 1)
	go func() {
		_, err := EinhornAck(fakeEnv(map[string]string{"EINHORN_SOCK_PATH": path}, nil))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EinhornAck waited for the master")
	}
}

func TestEinhornAckFD(t *testing.T) {
	t.Parallel()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fds[0]), "master")
	defer master.Close()
	worker := os.NewFile(uintptr(fds[1]), "worker")
	env := fakeEnv(map[string]string{"EINHORN_SOCK_FD": "7", "EINHORN_SOCK_PATH": "/nonexistent"}, map[int]*os.File{7: worker})
	sent, err := EinhornAck(env)
	if err != nil || !sent {
		t.Fatalf("EinhornAck = %v, %v", sent, err)
	}
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(master) // EOF: the worker closed its end
	if err != nil {
		t.Fatal(err)
	}
	if want := EinhornAckLine(4242); string(b) != want {
		t.Errorf("read %q, want %q", b, want)
	}
}

// Through an Env from OSEnv the ACK is sent once per process: every OSEnv
// shares one guard, as these Envs share theirs.
func TestEinhornAckOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "einhorn.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := fakeEnv(map[string]string{"EINHORN_SOCK_PATH": path}, nil)
	env.ack = new(sync.Once)
	for i, want := range []bool{true, false, false} {
		sent, err := EinhornAck(env)
		if err != nil || sent != want {
			t.Fatalf("call %d: EinhornAck = %v, %v; want %v, nil", i, sent, err, want)
		}
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != EinhornAckLine(4242) {
		t.Errorf("first connection read %q, %v", b, err)
	}
	// No second connection is queued: a non-blocking accept finds none.
	// (An Accept with a past deadline would not even try.)
	raw, err := ln.(*net.UnixListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var aerr error
	raw.Control(func(fd uintptr) {
		var nfd int
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if aerr == nil {
			unix.Close(nfd)
		}
	})
	if aerr != unix.EAGAIN {
		t.Errorf("accept after the first ACK: %v, want EAGAIN (no second connection)", aerr)
	}
	if a, b := OSEnv(), OSEnv(); a.ack == nil || a.ack != b.ack {
		t.Error("OSEnv values do not share one ACK guard")
	}
}

func TestEinhornAckErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		sent bool
		err  string
	}{
		{"not under einhorn", map[string]string{}, false, ""},
		{"bad fd", map[string]string{"EINHORN_SOCK_FD": "x"}, false, `EINHORN_SOCK_FD="x"`},
		{"closed fd", map[string]string{"EINHORN_SOCK_FD": "9"}, false, "EINHORN_SOCK_FD=9 is not open"},
		{"no master", map[string]string{"EINHORN_SOCK_PATH": "/nonexistent/einhorn.sock"}, false, "socket[/nonexistent/einhorn.sock]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := EinhornAck(fakeEnv(tc.vars, nil))
			if sent != tc.sent {
				t.Errorf("sent = %v", sent)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestOSEnvFile(t *testing.T) {
	t.Parallel()
	for _, fd := range []int{-1, 1 << 20} {
		if f := OSEnv().File(fd, "test"); f != nil {
			f.Close()
			t.Errorf("OSEnv().File(%d) = %v, want nil for a descriptor that is not open", fd, f)
		}
	}
}

// TestWatchdogSilentWhileStuck: while alive reports no progress, no
// WATCHDOG=1 is sent; once it does again, reports resume.
func TestWatchdogSilentWhileStuck(t *testing.T) {
	t.Parallel()
	addr := filepath.Join(t.TempDir(), "notify.sock")
	sock := listenGram(t, addr)
	n := NewNotifier(fakeEnv(map[string]string{"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "20000"}, nil))
	var progress atomic.Bool
	checked := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Watchdog(ctx, func() bool {
			select {
			case checked <- struct{}{}:
			default:
			}
			return progress.Load()
		}, func(err error) { t.Error(err) })
	}()
	for i := 0; i < 5; i++ {
		<-checked
	}
	// Four rounds asked and were told no progress: nothing was sent.
	sock.SetReadDeadline(time.Now())
	if n, err := sock.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a datagram (%d bytes) was sent while the process made no progress", n)
	}
	progress.Store(true)
	if got := readGram(t, sock); got != "WATCHDOG=1" {
		t.Fatalf("datagram = %q, want WATCHDOG=1", got)
	}
	cancel()
	<-done
}

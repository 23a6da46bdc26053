package server_test

import (
	"bufio"
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

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// Zero loss across a restart: the test is the supervisor and holds the
// socket; a second server starts on it, the first gets SIGTERM mid-load,
// and every request the servers accepted gets a complete response.
func TestLifecycleZeroLoss(t *testing.T) {
	t.Parallel()
	addr, f := tcpSocket(t) // kept open: the supervisor's copy
	ini := writeINI(t, "workers = 2\ndrain_time = 1 second\nstop_timeout = 30 seconds\n")
	old := wasmserve(t, ini, starterEnv(addr), []*os.File{f})
	waitServing(t, old, "tcp", addr)

	l := startLoad("tcp", addr, "/", 8)
	l.waitOK(t, 200)
	next := wasmserve(t, ini, starterEnv(addr), []*os.File{f})
	next.log.waitFor(t, startTimeout, 1, "msg=serving")
	l.waitOK(t, 200)
	old.signal(t, syscall.SIGTERM)
	if code := old.exit(t); code != 0 {
		t.Errorf("old server exit %d, want 0", code)
	}
	l.waitOK(t, 200) // served by the new server alone
	l.finish(t)
	if old.log.count("msg=\"listener closed\"") != 1 {
		t.Error("old server did not drain its listener")
	}
	next.signal(t, syscall.SIGTERM)
	if code := next.exit(t); code != 0 {
		t.Errorf("new server exit %d, want 0", code)
	}
}

// The real start_server (Debian's libserver-starter-perl): wasmserve
// serves under it, and a HUP during a load loop brings up a new
// generation without a single failed request.
func TestLifecycleServerStarter(t *testing.T) {
	t.Parallel()
	startServer, err := exec.LookPath("start_server")
	if err != nil {
		t.Fatal("start_server not found (Debian package libserver-starter-perl; make deps installs it)")
	}
	sock := filepath.Join(t.TempDir(), "ss.sock")
	ini := writeINI(t, "workers = 2\ndrain_time = 1 second\nstop_timeout = 30 seconds\n")
	ss := run(t, nil, nil, startServer, "--path="+sock, "--interval=1", "--", testguest.Binary(t), ini)
	ss.log.waitFor(t, startTimeout, 1, "msg=serving", "source=server-starter", "server_starter_generation=1")
	waitServing(t, ss, "unix", sock)

	l := startLoad("unix", sock, "/", 8)
	l.waitOK(t, 200)
	ss.signal(t, syscall.SIGHUP)
	ss.log.waitFor(t, startTimeout, 1, "msg=serving", "server_starter_generation=2")
	ss.log.waitFor(t, waitTimeout, 1, "shutdown complete") // generation 1 drained and gone
	l.waitOK(t, 200)
	l.finish(t)
	if n := ss.log.count("msg=serving", "pid="); n != 2 {
		t.Errorf("%d generations served, want 2", n)
	}
	ss.signal(t, syscall.SIGTERM)
	ss.exit(t)
	if n := ss.log.count("shutdown complete"); n != 2 {
		t.Errorf("%d graceful shutdowns, want 2", n)
	}
}

// The Einhorn protocol, with the test as the master: inherited fd,
// manual ACK sent exactly once and only when the server is ready, and
// SIGUSR2 as a graceful stop.
func TestLifecycleEinhorn(t *testing.T) {
	t.Parallel()
	addr, f := tcpSocket(t)
	cmdPath := filepath.Join(t.TempDir(), "einhorn.sock")
	cmdLn, err := net.Listen("unix", cmdPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cmdLn.Close()
	env := []string{"EINHORN_FD_COUNT=1", "EINHORN_FD_0=3", "EINHORN_SOCK_PATH=" + cmdPath,
		"EINHORN_MASTER_PID=" + strconv.Itoa(os.Getpid()), "EINHORN_CHILD_INDEX=0"}
	p := wasmserve(t, writeINI(t, "workers = 2\ndrain_time = 0\nstop_timeout = 30 seconds\n"), env, []*os.File{f})
	f.Close()

	acks := make(chan string, 4)
	go func() {
		for {
			c, err := cmdLn.Accept()
			if err != nil {
				close(acks)
				return
			}
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			b, _ := io.ReadAll(c) // the worker closes after its line; we never reply
			c.Close()
			acks <- string(b)
		}
	}()
	var ack string
	select {
	case ack = <-acks:
	case <-time.After(startTimeout):
		t.Fatalf("no einhorn ack after %s", startTimeout)
	}
	if want := `{"command":"worker:ack","pid":` + strconv.Itoa(p.cmd.Process.Pid) + "}\n"; ack != want {
		t.Fatalf("ack %q, want %q", ack, want)
	}
	// The moment the ACK arrives the server answers on the inherited fd.
	c := dial(t, "tcp", addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if resp, _ := c.get(t, "/"); resp.StatusCode != 200 {
		t.Fatalf("GET / after the ack = %d", resp.StatusCode)
	}
	if p.log.count("workers ready") == 0 || p.log.count("source=einhorn") == 0 {
		t.Error("log lacks workers ready or the einhorn source")
	}

	slow := dial(t, "tcp", addr)
	if err := slow.send("/sleep?ms=1000"); err != nil {
		t.Fatal(err)
	}
	waitBusy(t, p, "/sleep")
	p.signal(t, syscall.SIGUSR2)
	if resp, _, err := slow.response(); err != nil || resp.StatusCode != 200 {
		t.Errorf("in-flight request across SIGUSR2: %v", err)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d after SIGUSR2, want 0", code)
	}
	cmdLn.Close()
	for extra := range acks {
		t.Errorf("a second ack: %q", extra)
	}
}

// A module that fails to load: no ACK ever arrives, the process exits
// non-zero.
func TestLifecycleEinhornNoAckOnFailure(t *testing.T) {
	t.Parallel()
	_, f := tcpSocket(t)
	cmdPath := filepath.Join(t.TempDir(), "einhorn.sock")
	cmdLn, err := net.Listen("unix", cmdPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cmdLn.Close()
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	if err := os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"EINHORN_FD_COUNT=1", "EINHORN_FD_0=3", "EINHORN_SOCK_PATH=" + cmdPath}
	p := wasmserve(t, writeINIModule(t, "drain_time = 0\n", bad), env, []*os.File{f})
	if code := p.exit(t); code == 0 {
		t.Error("exit 0 with a module that fails to load")
	}
	// Any connection the process made is queued by now.
	if n := queuedConns(t, cmdLn); n != 0 {
		t.Errorf("%d connections to the command socket, want none", n)
	}
}

// queuedConns accepts, without waiting, every connection queued on ln.
func queuedConns(t *testing.T, ln net.Listener) int {
	t.Helper()
	raw, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	raw.Control(func(fd uintptr) {
		for {
			nfd, _, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			unix.Close(nfd)
			n++
		}
	})
	return n
}

// systemd socket activation with Debian's systemd-socket-activate, and
// sd_notify READY=1, WATCHDOG=1, then STOPPING=1 on NOTIFY_SOCKET.
func TestLifecycleSystemd(t *testing.T) {
	t.Parallel()
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatal("systemd-socket-activate not found (Debian package systemd; make deps installs it)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	ini := writeINI(t, "drain_time = 0\nstop_timeout = 30 seconds\n")
	p := run(t, nil, nil, activate, "-l", sock, "--fdname=web",
		"-E", "NOTIFY_SOCKET="+notifyPath, "-E", "WATCHDOG_USEC=400000",
		testguest.Binary(t), "--bind", "127.0.0.1:1", ini)
	// systemd-socket-activate execs the server on the first connection;
	// wait (bounded) for its socket to appear.
	var c *conn
	for i := 0; ; i++ {
		nc, err := net.Dial("unix", sock)
		if err == nil {
			t.Cleanup(func() { nc.Close() })
			c = &conn{Conn: nc, r: bufio.NewReader(nc)}
			break
		}
		if i == 3000 || p.exited() {
			t.Fatalf("systemd-socket-activate not listening on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp, _ := c.get(t, "/"); resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	// The server logs its listeners before it serves, but the log reaches
	// the test through a pipe: wait for the line rather than read it once.
	p.log.waitFor(t, waitTimeout, 1, "msg=listening", "source=systemd")
	got := readStates(t, notify, func(states []string) bool { return count(states, "WATCHDOG=1") >= 2 })
	if len(got) == 0 || got[0] != "READY=1" {
		t.Errorf("first sd_notify message %q, want READY=1", got)
	}
	p.signal(t, syscall.SIGTERM)
	got = readStates(t, notify, func(states []string) bool { return count(states, "STOPPING=1") > 0 })
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for _, s := range got {
		if s != "WATCHDOG=1" && s != "STOPPING=1" {
			t.Errorf("unexpected sd_notify message %q", s)
		}
	}
}

func count(states []string, s string) int {
	n := 0
	for _, x := range states {
		if x == s {
			n++
		}
	}
	return n
}

// readStates reads sd_notify datagrams until done says so.
func readStates(t *testing.T, c *net.UnixConn, done func([]string) bool) []string {
	t.Helper()
	var states []string
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	for !done(states) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("sd_notify: %v after %q", err, states)
		}
		states = append(states, strings.TrimSpace(string(buf[:n])))
	}
	return states
}

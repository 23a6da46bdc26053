package server_test

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// Bounds for waiting on a process under -race on a loaded machine.
const (
	startTimeout = 90 * time.Second
	waitTimeout  = 60 * time.Second
)

// logBuf collects a process's output and wakes waiters on every write.
type logBuf struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newLogBuf() *logBuf { return &logBuf{changed: make(chan struct{})} }

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many lines contain every one of subs.
func (l *logBuf) count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

// waitFor waits until at least n lines contain every one of subs.
func (l *logBuf) waitFor(t *testing.T, timeout time.Duration, n int, subs ...string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if l.count(subs...) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no log line with %q after %s", subs, timeout)
		}
	}
}

// proc is a running wasmserve (or supervisor) process.
type proc struct {
	cmd   *exec.Cmd
	log   *logBuf
	done  chan struct{}
	err   error
	ended time.Time
}

// run starts name with args, extra environment and inherited files (fd 3
// onwards). The process is killed when the test ends.
func run(t *testing.T, env []string, files []*os.File, name string, args ...string) *proc {
	t.Helper()
	p := &proc{log: newLogBuf(), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.ExtraFiles = files
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(name), p.log.String())
		}
	})
	return p
}

// wasmserve starts the binary on ini.
func wasmserve(t *testing.T, ini string, env []string, files []*os.File, args ...string) *proc {
	t.Helper()
	return run(t, env, files, testguest.Binary(t), append(args, ini)...)
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// exit waits for the process to end and returns its exit code.
func (p *proc) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		t.Fatalf("process still running after %s", waitTimeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// writeINI writes a config for the hello-go example with extra server keys.
func writeINI(t *testing.T, server string) string {
	t.Helper()
	mod := testguest.Module(t, "hello-go", "hello.wasm")
	return writeINIModule(t, server, mod)
}

func writeINIModule(t *testing.T, server, mod string) string {
	t.Helper()
	ini := fmt.Sprintf("[server:main]\nfactory = http\ncompilation_cache = %s\n%s\n[app:main]\nfactory = %s\n",
		testguest.CacheDir(), server, mod)
	path := filepath.Join(t.TempDir(), "app.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tcpSocket binds a listening socket on 127.0.0.1, as a supervisor does,
// and returns its address and a file to pass to a child. The caller closes
// the file once the child runs, unless it keeps the socket (a supervisor).
func tcpSocket(t *testing.T) (string, *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return ln.Addr().String(), f
}

// starterEnv is the environment Server::Starter gives a worker for one
// socket at fd 3.
func starterEnv(addr string) []string {
	return []string{"SERVER_STARTER_PORT=" + addr + "=3", "SERVER_STARTER_GENERATION=1"}
}

// conn is a raw HTTP/1.1 client connection: no retries, so every error is
// seen.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, network, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{Conn: c, r: bufio.NewReader(c)}
}

// send writes a GET request for path.
func (c *conn) send(path string) error {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: wasmserve\r\n\r\n", path)
	return err
}

// response reads one whole response.
func (c *conn) response() (*http.Response, string, error) {
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// get sends a request on c and reads its response, failing the test on
// error.
func (c *conn) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	if err := c.send(path); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, body, err := c.response()
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, body
}

// waitServing dials until the server answers GET / (the listener may be
// inherited and accepting in the kernel before the server runs).
func waitServing(t *testing.T, p *proc, network, addr string) {
	t.Helper()
	p.log.waitFor(t, startTimeout, 1, "msg=serving")
	c := dial(t, network, addr)
	defer c.Close()
	if resp, _ := c.get(t, "/"); resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
}

// waitBusy sends SIGUSR1 until the busy-worker table lists a request
// containing what, so the test knows that request is inside a guest.
func waitBusy(t *testing.T, p *proc, what string) {
	t.Helper()
	for i := 1; i <= 200; i++ {
		p.signal(t, syscall.SIGUSR1)
		p.log.waitFor(t, waitTimeout, i, "SIGUSR1: busy workers")
		for _, line := range strings.Split(p.log.String(), "\n") {
			if strings.Contains(line, "SIGUSR1: busy workers") && strings.Contains(line, what) {
				return
			}
		}
	}
	t.Fatalf("%q never showed in the busy workers table", what)
}

// load runs n clients in a loop of GET path over keep-alive connections
// until stop is closed, reconnecting when a response says Connection:
// close. It counts complete 200 responses and failures (any error or
// other status), and never retries.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(network, addr, path string, n int) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var c *conn
			for j := 0; j < 100000; j++ {
				select {
				case <-l.stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if c == nil {
					nc, err := net.DialTimeout(network, addr, 10*time.Second)
					if err != nil {
						l.fail(fmt.Errorf("dial: %w", err))
						continue
					}
					c = &conn{Conn: nc, r: bufio.NewReader(nc)}
				}
				if err := c.send(path); err != nil {
					l.fail(fmt.Errorf("write: %w", err))
					c.Close()
					c = nil
					continue
				}
				resp, _, err := c.response()
				switch {
				case err != nil:
					l.fail(fmt.Errorf("read: %w", err))
				case resp.StatusCode != 200:
					l.fail(fmt.Errorf("status %d", resp.StatusCode))
				default:
					l.ok.Add(1)
				}
				if err != nil || resp.Close {
					c.Close()
					c = nil
				}
			}
		}()
	}
	return l
}

func (l *load) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, err.Error())
	}
}

// waitOK waits until at least n more requests have succeeded.
func (l *load) waitOK(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for l.ok.Load() < want {
		select {
		case <-ctx.Done():
			t.Fatalf("load: %d ok, %d failed; wanted %d ok", l.ok.Load(), l.failed.Load(), want)
		case <-tick.C:
		}
	}
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if f := l.failed.Load(); f != 0 {
		t.Errorf("load: %d ok, %d failed: %v", l.ok.Load(), f, l.errs)
	}
	t.Logf("load: %d requests ok, 0 failed", l.ok.Load())
}

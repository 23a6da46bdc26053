package kv_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
	"github.com/wasmserve/wasmserve/internal/testredis"
)

// exampleINI writes a copy of guests/examples/counter-go/NAME into a
// temporary directory, with the module's absolute path, drain_time = 0,
// the test compilation cache and the extra lines added to [app:main].
func exampleINI(t *testing.T, name string, extra ...string) string {
	t.Helper()
	dir := testguest.Example(t, "counter-go")
	src, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "factory = counter.wasm", "factory = "+filepath.Join(dir, "counter.wasm"), 1)
	s = strings.Replace(s, "[server:main]\n", "[server:main]\ndrain_time = 0\ncompilation_cache = "+testguest.CacheDir()+"\n", 1)
	s = strings.TrimRight(s, "\n") + "\n" + strings.Join(extra, "\n") + "\n"
	ini := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(ini, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return ini
}

// proc is a wasmserve process serving the counter example.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	base string
	done chan struct{}
}

type syncBuffer = testguest.Buffer

// start runs wasmserve --debug on a free port with env added; it returns
// once the server answers, or fails the test when it exits first.
func start(t *testing.T, ini string, env ...string) *proc {
	t.Helper()
	p := launch(t, ini, env...)
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(p.base + "/")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("wasmserve exited before serving:\n%s", p.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wasmserve not serving within 90 s:\n%s", p.out)
		}
	}
}

// launch starts wasmserve without waiting for it.
func launch(t *testing.T, ini string, env ...string) *proc {
	t.Helper()
	port := testredis.FreePort(t)
	p := &proc{t: t, out: &syncBuffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	p.cmd = exec.Command(testguest.Binary(t), "--debug", "--bind", fmt.Sprintf("127.0.0.1:%d", port), ini)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// exit waits (bounded) for the process to exit by itself and returns its
// exit code.
func (p *proc) exit() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.t.Fatalf("wasmserve still running after 90 s:\n%s", p.out)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(); code != 0 {
		p.t.Fatalf("wasmserve exited %d after SIGTERM:\n%s", code, p.out)
	}
}

// do sends one request and returns the status, body and generation header.
func (p *proc) do(method, path, body string) (int, string, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("X-Wasmserve-Generation")
}

func (p *proc) want(method, path, body string, status int, want string) {
	p.t.Helper()
	code, got, _ := p.do(method, path, body)
	if code != status || (want != "" && !strings.Contains(got, want)) {
		p.t.Fatalf("%s %s = %d %q; want %d %q\n%s", method, path, code, got, status, want, p.out)
	}
}

// hammer runs clients × each POST /incr/KEY against every process at
// once and fails the test on any answer other than 200.
func hammer(t *testing.T, procs []*proc, key string, clients, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, len(procs)*clients)
	for _, p := range procs {
		for range clients {
			wg.Go(func() {
				c := &http.Client{Transport: &http.Transport{}}
				defer c.CloseIdleConnections()
				for range each {
					resp, err := c.Post(p.base+"/incr/"+key, "", nil)
					if err != nil {
						errs <- err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Sprintf("%d %s", resp.StatusCode, b)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("POST /incr/%s: %s", key, e)
	}
}

func TestRedisTwoProcessesExactTotal(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	ini := exampleINI(t, "app-redis.ini")
	env := "REDIS_URL=" + srv.URL()
	a, b := start(t, ini, env), start(t, ini, env)
	hammer(t, []*proc{a, b}, "shared", 8, 25)
	a.want("GET", "/get/shared", "", 200, "400")
	b.want("GET", "/get/shared", "", 200, "400")
	// The prefix from app-redis.ini namespaces the key in Redis.
	if v, err := srv.Do("GET", "counter:shared"); err != nil || !strings.Contains(v, "$3") {
		t.Fatalf("GET counter:shared in Redis: %q, %v", v, err)
	}
	// TTL through the guest: gone after it passes.
	a.want("PUT", "/set/t?ttl=0.2", "v", 204, "")
	b.want("GET", "/get/t", "", 200, "v")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := b.do("GET", "/get/t", ""); code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a value set with ttl=0.2 still there after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisFaults(t *testing.T) {
	t.Parallel()
	srv := testredis.New(t) // down at start-up
	p := start(t, exampleINI(t, "app-redis.ini", "kv.default.connect_timeout = 200ms"), "REDIS_URL="+srv.URL())
	if !strings.Contains(p.out.String(), "unreachable at start-up") {
		t.Fatalf("no start-up warning for an unreachable Redis:\n%s", p.out)
	}
	p.want("POST", "/incr/n", "", 503, "backend unavailable")
	srv.Restart()
	p.want("POST", "/incr/n", "", 200, "1")
	// Restarted mid-run: calls fail while it is down and recover after,
	// without restarting wasmserve.
	srv.Stop()
	p.want("POST", "/incr/n", "", 503, "backend unavailable")
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := p.do("POST", "/incr/n", "")
		if code == 200 && body == "1" { // a fresh server without persistence
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls did not recover within 10 s of the Redis restart: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmbeddedRestartReloadExact(t *testing.T) {
	t.Parallel()
	ini := exampleINI(t, "app.ini")
	env := "KV_PATH=" + filepath.Join(t.TempDir(), "counter.db")
	p := start(t, ini, env)
	hammer(t, []*proc{p}, "c", 8, 25) // 8 clients over 4 workers
	p.want("GET", "/get/c", "", 200, "200")
	// A reload keeps the store (opened once per process).
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, gen := p.do("GET", "/get/c", ""); gen == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no generation 2 within 60 s of SIGHUP:\n%s", p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.want("GET", "/get/c", "", 200, "200")
	hammer(t, []*proc{p}, "c", 8, 5)
	p.want("GET", "/get/c", "", 200, "240")
	p.stop()
	// A restart on the same file.
	p = start(t, ini, env)
	p.want("POST", "/incr/c", "", 200, "241")
	p.want("DELETE", "/del/c", "", 204, "")
	p.want("GET", "/get/c", "", 404, "")
}

func TestEmbeddedFaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kv.db")
	p := start(t, exampleINI(t, "app.ini", "kv.default.max_value_size = 16"), "KV_PATH="+path)
	p.want("PUT", "/set/k", strings.Repeat("x", 16), 204, "")
	p.want("PUT", "/set/k", strings.Repeat("x", 17), 413, "max_value_size")
	p.want("GET", "/get/k", "", 200, strings.Repeat("x", 16))
	p.want("PUT", "/set/"+strings.Repeat("k", 1025), "v", 413, "max_key_size")

	// A second process on the same file: refused at start-up, naming it.
	q := launch(t, exampleINI(t, "app.ini", "kv.default.connect_timeout = 100ms"), "KV_PATH="+path)
	if code := q.exit(); code == 0 || !strings.Contains(q.out.String(), path) || !strings.Contains(q.out.String(), "locked") {
		t.Fatalf("second process on a locked store file: exit %d, want non-zero naming %s:\n%s", code, path, q.out)
	}
	p.want("GET", "/get/k", "", 200, strings.Repeat("x", 16))

	// A corrupt file: refused at start-up, naming it.
	bad := filepath.Join(dir, "bad.db")
	os.WriteFile(bad, bytes.Repeat([]byte("garbage!"), 4096), 0o600)
	q = launch(t, exampleINI(t, "app.ini"), "KV_PATH="+bad)
	if code := q.exit(); code == 0 || !strings.Contains(q.out.String(), bad) || !strings.Contains(q.out.String(), "not a valid store file") {
		t.Fatalf("corrupt store file: exit %d, want non-zero naming %s:\n%s", code, bad, q.out)
	}

	// At a reload, a store that cannot open fails the reload, naming the
	// file, and the running generation keeps serving its own store.
	ini := exampleINI(t, "app.ini", "kv.default.max_value_size = 16")
	r := start(t, ini, "KV_PATH="+filepath.Join(dir, "good.db"))
	r.want("PUT", "/set/k", "kept", 204, "")
	text, _ := os.ReadFile(ini)
	os.WriteFile(ini, []byte(strings.Replace(string(text), "${KV_PATH:-counter.db}", bad, 1)), 0o644)
	r.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.out.String(), "reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload within 60 s of SIGHUP:\n%s", r.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := r.out.String(); !strings.Contains(out, bad) || !strings.Contains(out, "open kv stores") {
		t.Fatalf("the failed reload does not name the step and %s:\n%s", bad, out)
	}
	if _, body, gen := r.do("GET", "/get/k", ""); body != "kept" || gen != "1" {
		t.Fatalf("after the failed reload GET /get/k = %q from generation %q; want kept from 1", body, gen)
	}
}

package main_test

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
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// server is a running wasmserve binary listening on a UNIX socket.
type server struct {
	sock   string // the UNIX socket it listens on
	cmd    *exec.Cmd
	client *http.Client
	log    *lockedBuffer
	done   chan error
}

type lockedBuffer = testguest.Buffer

// writeINI writes an INI for the hello-go example with extra server keys.
func writeINI(t *testing.T, server, app string) string {
	t.Helper()
	mod := testguest.Module(t, "hello-go", "hello.wasm")
	dir := t.TempDir()
	ini := fmt.Sprintf("[server:main]\nfactory = http\ncompilation_cache = %s\ndrain_time = 0\n%s\n[app:main]\nfactory = %s\ngreeting = hello from the test\nnoodles.blah = one, two, three\n%s",
		testguest.CacheDir(), server, mod, app)
	path := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs the binary on ini, bound to a fresh UNIX socket, and waits
// until it answers.
func start(t *testing.T, ini string, args ...string) *server {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	s := &server{sock: sock, log: &lockedBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(testguest.Binary(t), append(append(args, "--bind", "unix:"+sock), ini)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	s.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 64,
	}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := s.client.Get("http://wasmserve/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited before serving: %v\n%s", err, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving after 60s: %v\n%s", err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := s.client.Get("http://wasmserve" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := start(t, writeINI(t, "workers = 2\nrequest_timeout = 2 seconds\nmax_memory = 32 MiB\n", ""))
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "hello from the test"},
		{"/config/greeting", 200, "hello from the test"},
		{"/config/noodles.blah", 200, "one, two, three"},
		{"/config/nope", 404, "missing"},
		{"/config", 200, `{"greeting":"hello from the test","noodles.blah":"one, two, three"}` + "\n"},
		{"/status/418", 418, ""},
		{"/headers", 200, "headers"},
		{"/log", 200, "logged"},
		{"/shutting-down", 200, "false"},
		{"/generation", 200, "1"},
		{"/nowhere", 404, "not found"},
	}
	for _, c := range cases {
		status, body, _ := s.get(t, c.path)
		if status != c.status || body != c.body {
			t.Errorf("GET %s = %d %q, want %d %q", c.path, status, body, c.status, c.body)
		}
	}
	for _, want := range []string{"conformance info", "conformance warn", "conformance error"} {
		s.waitLog(t, want)
	}
}

// TestFaultsRecover checks that each fault answers its status, the very
// next request succeeds, and every worker is healthy again.
func TestFaultsRecover(t *testing.T) {
	t.Parallel()
	const workers = 2
	s := start(t, writeINI(t, fmt.Sprintf("workers = %d\nrequest_timeout = 3 seconds\nmax_memory = 32 MiB\n", workers), ""), "--debug")
	for _, c := range []struct {
		path   string
		status int
		log    string
	}{
		{"/panic", 500, "hello-go: /panic requested"},
		{"/spin", 504, "kind=timeout"},
		{"/grow", 500, "kind=memory_limit"},
	} {
		if status, _, _ := s.get(t, c.path); status != c.status {
			t.Errorf("GET %s = %d, want %d", c.path, status, c.status)
		}
		if status, body, _ := s.get(t, "/"); status != 200 || body != "hello from the test" {
			t.Errorf("GET / after %s = %d %q", c.path, status, body)
		}
		s.waitLog(t, c.log)
	}
	// Every worker answers: hold one with a slow request and make sure
	// the other serves, for each worker id.
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < workers && time.Now().Before(deadline) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, h := s.get(t, "/sleep?ms=100")
				mu.Lock()
				seen[h.Get("X-Wasmserve-Worker")] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	if len(seen) != workers {
		t.Fatalf("workers answering: %v, want %d distinct", seen, workers)
	}
}

func TestSaturation(t *testing.T) {
	t.Parallel()
	const maxConc = 4
	s := start(t, writeINI(t, fmt.Sprintf("workers = 2\nmax_concurrency = %d\n", maxConc), ""))
	const clients = 10
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			status, body, h := s.get(t, "/sleep?ms=1500")
			switch {
			case status == 200 && body == "slept":
				ok.Add(1)
			case status == 503:
				if h.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
				if time.Since(start) > 1200*time.Millisecond {
					t.Errorf("503 took %v; it must be immediate", time.Since(start))
				}
				refused.Add(1)
			default:
				t.Errorf("GET /sleep = %d %q", status, body)
			}
		}()
	}
	wg.Wait()
	if ok.Load() < 2 || refused.Load() < 1 || ok.Load()+refused.Load() != clients || ok.Load() > maxConc {
		t.Fatalf("%d ok, %d refused; want between 2 and %d ok and the rest 503", ok.Load(), refused.Load(), maxConc)
	}
}

// TestBadInput checks that each startup error exits non-zero before
// binding, with the message users see.
func TestBadInput(t *testing.T) {
	t.Parallel()
	good := testguest.Module(t, "hello-go", "hello.wasm")
	abi2 := testguest.Module(t, "hello-go", "hello-abi2.wasm")
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "script.wasm")
	os.WriteFile(notWasm, []byte("#!/bin/sh\n"), 0o644)
	noHandle := filepath.Join(dir, "nohandle.wasm")
	os.WriteFile(noHandle, testguest.WAT(t, `(module (memory (export "memory") 1) (func (export "wasmserve_abi_version") (result i32) i32.const 1))`), 0o644)
	cases := []struct {
		name, ini, want string
	}{
		{"syntax", "[server:main\nfactory = http\n", "app.ini:1: syntax error: section header \"[server:main\" has no closing ]"},
		{"unknown key", "[server:main]\nfactory = http\nmax_concurency = 3\n[app:main]\nfactory = " + good + "\n",
			`app.ini:3: [server:main] unknown key "max_concurency" (did you mean "max_concurrency"?)`},
		{"bad duration", "[server:main]\nfactory = http\nrequest_timeout = 10 parsecs\n[app:main]\nfactory = " + good + "\n",
			`app.ini:3: [server:main] request_timeout = "10 parsecs": unknown unit "parsecs"`},
		{"missing factory", "[server:main]\nfactory = http\n[app:main]\ngreeting = hi\n", `app.ini: [app:main] missing required key "factory"`},
		{"module missing", "[server:main]\nfactory = http\n[app:main]\nfactory = nope.wasm\n", `app.ini:4: [app:main] factory = "nope.wasm": stat `},
		{"not wasm", "[server:main]\nfactory = http\n[app:main]\nfactory = " + notWasm + "\n", "load module " + notWasm + ": not a WebAssembly module"},
		{"missing export", "[server:main]\nfactory = http\n[app:main]\nfactory = " + noHandle + "\n",
			`load module ` + noHandle + `: missing required export "wasmserve_handle" (i32) -> (i64) (ABI v1)`},
		{"abi version", "[server:main]\nfactory = http\ncompilation_cache = " + testguest.CacheDir() + "\n[app:main]\nfactory = " + abi2 + "\n",
			"guest declares ABI version 2, host implements version 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := t.TempDir()
			ini := filepath.Join(d, "app.ini")
			os.WriteFile(ini, []byte(c.ini), 0o644)
			sock := filepath.Join(d, "s.sock")
			cmd := exec.Command(testguest.Binary(t), "--bind", "unix:"+sock, ini)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit %v, want non-zero; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output lacks %q:\n%s", c.want, out)
			}
			if _, err := os.Stat(sock); err == nil {
				t.Fatal("the server bound its socket before refusing the config")
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(testguest.Binary(t), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "host ABI version 1") {
		t.Fatalf("--version: %v %s", err, out)
	}
	out, _ = exec.Command(testguest.Binary(t), "--help").CombinedOutput()
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	flags := map[string]bool{}
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && strings.HasPrefix(f[0], "-") {
			flags[strings.TrimLeft(f[0], "-")] = true
		}
	}
	for _, f := range []string{"debug", "reload", "bind", "server-name", "app-name", "version"} {
		if !flags[f] {
			t.Errorf("--help does not document --%s:\n%s", f, out)
		}
	}
}

// TestWASIGrants checks that a guest sees no host files or environment
// unless the app section grants them.
func TestWASIGrants(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.txt"), []byte("granted file"), 0o644)
	// The server inherits the test's environment; only wasi.env decides
	// what the guest sees.
	path := os.Getenv("PATH")
	granted := start(t, writeINI(t, "workers = 2\n", "wasi.dir = "+dir+":/data\nwasi.env = PATH\n"))
	if status, body, _ := granted.get(t, "/file?path=/data/x.txt"); status != 200 || body != "granted file" {
		t.Errorf("granted file: %d %q", status, body)
	}
	if _, body, _ := granted.get(t, "/env?name=PATH"); body != path || body == "" {
		t.Errorf("granted PATH: %q, want %q", body, path)
	}
	if _, body, _ := granted.get(t, "/env?name=HOME"); body != "" {
		t.Errorf("ungranted HOME visible: %q", body)
	}
	plain := start(t, writeINI(t, "workers = 2\n", ""))
	if status, _, _ := plain.get(t, "/file?path=/data/x.txt"); status != 404 {
		t.Errorf("file without a grant: status %d, want 404", status)
	}
	if status, _, _ := plain.get(t, "/file?path="+filepath.Join(dir, "x.txt")); status != 404 {
		t.Errorf("host path without a grant: status %d, want 404", status)
	}
	if _, body, _ := plain.get(t, "/env?name=PATH"); body != "" {
		t.Errorf("env without a grant: %q", body)
	}
}

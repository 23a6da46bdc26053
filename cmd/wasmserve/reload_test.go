package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// buildB answers "build-B" to every request: a second module to alternate
// with hello-go.
// reloadWait bounds how long a test waits for one reload to be seen. A
// reload of a module missing from the compilation cache compiles it, which
// takes seconds on a loaded machine.
const reloadWait = 60 * time.Second

const buildB = `(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00build-B")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0x4000000000F))`

// reloadSetup copies hello-go into a private directory with its INI.
func reloadSetup(t *testing.T, greeting string, extra string) (dir, ini, mod string) {
	t.Helper()
	dir = t.TempDir()
	mod = filepath.Join(dir, "app.wasm")
	copyFile(t, testguest.Module(t, "hello-go", "hello.wasm"), mod)
	ini = filepath.Join(dir, "app.ini")
	writeAtomic(t, ini, fmt.Sprintf("[server:main]\nfactory = http\nworkers = 2\ndrain_time = 0\naccess_log = false\ncompilation_cache = %s\n%s\n[app:main]\nfactory = app.wasm\ngreeting = %s\n", testguest.CacheDir(), extra, greeting))
	return dir, ini, mod
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, to, string(b))
}

// writeAtomic writes data to a temporary file and renames it over path.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls until cond holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) count(substr string) int { return strings.Count(s.log.String(), substr) }

// waitLog waits (bounded) for a log line containing want. The server writes
// a request's log lines before its response, but they reach the test
// through a pipe, so a line can arrive after the response does.
func (s *server) waitLog(t *testing.T, want string) {
	t.Helper()
	if !s.log.WaitFor(10*time.Second, func(log string) bool { return strings.Contains(log, want) }) {
		t.Fatalf("no log line %q within 10s", want)
	}
}

// TestReloadAlternatesUnderLoad swaps the module between two builds 20
// times while 8 clients send requests: no request fails, every answer
// comes from one of the builds, and each new build answers within 15 s.
func TestReloadAlternatesUnderLoad(t *testing.T) {
	t.Parallel()
	dir, ini, mod := reloadSetup(t, "build-A", "")
	bBin := filepath.Join(dir, "b.wasm.src")
	os.WriteFile(bBin, testguest.WAT(t, buildB), 0o644)
	aBin := filepath.Join(dir, "a.wasm.src")
	copyFile(t, mod, aBin)
	s := start(t, ini, "--reload")
	var stop atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 100000; i++ {
				resp, err := s.client.Get("http://wasmserve/")
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					return
				}
				b := make([]byte, 64)
				n, _ := resp.Body.Read(b)
				resp.Body.Close()
				if body := string(b[:n]); resp.StatusCode != 200 || (body != "build-A" && body != "build-B") {
					failed.Add(1)
					t.Errorf("answer %d %q", resp.StatusCode, body)
					return
				}
				ok.Add(1)
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		src, want := aBin, "build-A"
		if i%2 == 1 {
			src, want = bBin, "build-B"
		}
		copyFile(t, src, mod)
		waitFor(t, reloadWait, fmt.Sprintf("change %d to %s", i, want), func() bool {
			_, body, _ := s.get(t, "/")
			return body == want
		})
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed", ok.Load(), failed.Load())
	}
	if n := s.count(`msg="reload succeeded"`); n < 20 {
		t.Errorf("%d reloads succeeded, want at least 20", n)
	}
}

// TestReloadRefusesBrokenModules writes a truncated module, a non-wasm
// file and a module of another ABI version: the old generation keeps
// answering, each failure is logged, and a later good write is picked up.
func TestReloadRefusesBrokenModules(t *testing.T) {
	t.Parallel()
	dir, ini, mod := reloadSetup(t, "good", "")
	good, _ := os.ReadFile(mod)
	s := start(t, ini, "--reload")
	bad := []struct{ name, data, log string }{
		{"truncated", string(good[:1000]), "compile"},
		{"not wasm", "#!/bin/sh\necho hi\n", "not a WebAssembly module"},
		{"abi 2", string(mustRead(t, testguest.Module(t, "hello-go", "hello-abi2.wasm"))), "guest declares ABI version 2"},
	}
	for i, b := range bad {
		writeAtomic(t, mod, b.data)
		waitFor(t, reloadWait, b.name+" refused", func() bool { return s.count("reload failed") == i+1 })
		if !strings.Contains(s.log.String(), b.log) {
			t.Errorf("%s: log lacks %q", b.name, b.log)
		}
		for j := 0; j < 5; j++ {
			if status, body, _ := s.get(t, "/"); status != 200 || body != "good" {
				t.Fatalf("after %s: %d %q", b.name, status, body)
			}
		}
	}
	_ = dir
	writeAtomic(t, ini, strings.Replace(string(mustRead(t, ini)), "greeting = good", "greeting = fixed", 1))
	writeAtomic(t, mod, string(good))
	waitFor(t, reloadWait, "good module picked up", func() bool {
		_, body, _ := s.get(t, "/")
		return body == "fixed"
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSIGHUPReloadsInFlightFinishOnOld reloads with SIGHUP (no --reload)
// while a slow request runs: the new config answers new requests and the
// slow one completes on the old generation.
func TestSIGHUPReloadsInFlightFinishOnOld(t *testing.T) {
	t.Parallel()
	_, ini, _ := reloadSetup(t, "before", "")
	s := start(t, ini)
	slow := make(chan string, 1)
	go func() {
		status, body, h := s.get(t, "/sleep?ms=3000")
		slow <- fmt.Sprintf("%d %s gen=%s", status, body, h.Get("X-Generation"))
	}()
	waitFor(t, 10*time.Second, "slow request in flight", func() bool {
		s.cmd.Process.Signal(syscall.SIGUSR1)
		return strings.Contains(s.log.String(), "GET /sleep")
	})
	writeAtomic(t, ini, strings.Replace(string(mustRead(t, ini)), "greeting = before", "greeting = after", 1))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, reloadWait, "reload", func() bool { return s.count(`msg="reload succeeded"`) == 1 })
	if _, body, _ := s.get(t, "/"); body != "after" {
		t.Fatalf("after SIGHUP / answered %q", body)
	}
	if got := <-slow; got != "200 slept gen=1" {
		t.Fatalf("slow request: %s, want 200 slept on generation 1", got)
	}
}

// TestFiftyReloads checks that instances and memory stay bounded.
func TestFiftyReloads(t *testing.T) {
	t.Parallel()
	_, ini, _ := reloadSetup(t, "x", "")
	s := start(t, ini)
	rss := func() int64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	var base int64
	for i := 1; i <= 50; i++ {
		s.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 30*time.Second, fmt.Sprintf("reload %d", i), func() bool { return s.count(`msg="reload succeeded"`) == i })
		if i == 10 {
			waitFor(t, 30*time.Second, "old generations closed", func() bool { return s.count("previous generation closed") == i })
			base = rss()
		}
	}
	waitFor(t, 30*time.Second, "old generations closed", func() bool { return s.count("previous generation closed") == 50 })
	if _, body, h := s.get(t, "/sleep?ms=1"); body != "slept" || h.Get("X-Generation") != "51" {
		t.Fatalf("after 50 reloads: %q from generation %s", body, h.Get("X-Generation"))
	}
	if grown := rss() - base; grown > 96<<20 {
		t.Fatalf("RSS grew by %d MiB over 40 reloads", grown>>20)
	}
}

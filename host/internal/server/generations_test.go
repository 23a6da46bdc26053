package server_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// slowInit is a module whose wasmserve_init sleeps 2 seconds (WASI
// poll_oneoff on a relative monotonic clock), so that building a
// generation of it takes that long whatever the machine's speed.
const slowInit = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00slow")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_init") (result i32)
    (i32.store8 (i32.const 2056) (i32.const 0))               ;; tag: clock
    (i32.store (i32.const 2064) (i32.const 1))                ;; monotonic
    (i64.store (i32.const 2072) (i64.const 2000000000))       ;; 2 s
    (i32.store16 (i32.const 2088) (i32.const 0))              ;; relative
    (drop (call $poll (i32.const 2048) (i32.const 2200) (i32.const 1) (i32.const 2300)))
    i32.const 0)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0x4000000000C))`

// everyGenerationClosed checks that each generation whose workers were
// started has a "generation closed" line (current, previous, or built
// after shutdown began).
func everyGenerationClosed(t *testing.T, log string) {
	t.Helper()
	built := regexp.MustCompile(`msg="workers ready" generation=(\d+)`).FindAllStringSubmatch(log, -1)
	if len(built) == 0 {
		t.Fatalf("no generation started:\n%s", log)
	}
	for _, m := range built {
		closed := regexp.MustCompile(`(?m)generation closed[^\n]*" generation=` + m[1] + `( |$)`)
		if !closed.MatchString(log) {
			t.Errorf("generation %s was started and never closed", m[1])
		}
	}
}

// TestReloadRacingSIGTERM sends SIGHUP and SIGTERM back to back: whatever
// the reload reached (skipped, built and refused, swapped), the server
// exits cleanly with every generation it started closed.
func TestReloadRacingSIGTERM(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"immediate", "after start"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ini := writeINI(t, "bind = 127.0.0.1:0\nworkers = 2\ndrain_time = 0\nstop_timeout = 30 seconds\naccess_log = false")
			p := wasmserve(t, ini, nil, nil)
			p.log.waitFor(t, startTimeout, 1, "msg=serving")
			p.signal(t, syscall.SIGHUP)
			if name == "after start" {
				p.log.waitFor(t, waitTimeout, 1, `msg="reload starting"`)
			}
			p.signal(t, syscall.SIGTERM)
			if code := p.exit(t); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			everyGenerationClosed(t, p.log.String())
		})
	}
}

// TestSIGTERMDuringSlowReload: a SIGTERM that arrives while a reload is
// building a generation whose init takes seconds is handled at once
// (shutdown starts before the build ends), and the generation built after
// shutdown began is closed, not swapped in.
func TestSIGTERMDuringSlowReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fast := filepath.Join(dir, "fast.wasm")
	slow := filepath.Join(dir, "slow.wasm")
	writeFile(t, fast, testguest.WAT(t, buildB))
	writeFile(t, slow, testguest.WAT(t, slowInit))
	server := "bind = 127.0.0.1:0\nworkers = 1\ndrain_time = 0\nstop_timeout = 60 seconds\nrequest_timeout = 30 seconds\naccess_log = false"
	ini := writeINIModule(t, server, fast)
	p := wasmserve(t, ini, nil, nil)
	p.log.waitFor(t, startTimeout, 1, "msg=serving")
	writeFile(t, ini, []byte(strings.Replace(string(readFile(t, ini)), fast, slow, 1)))
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload starting"`)
	p.signal(t, syscall.SIGTERM)
	p.log.waitFor(t, waitTimeout, 1, `msg="shutting down`)
	if code := p.exit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	log := p.log.String()
	stop := strings.Index(log, `msg="shutting down`)
	end := strings.Index(log, `msg="workers ready" generation=2`)
	if end < 0 {
		end = strings.Index(log, `msg="reload failed`)
	}
	if end < 0 || stop > end {
		t.Fatalf("SIGTERM was handled only after the reload's build ended:\n%s", log)
	}
	if strings.Contains(log, `msg="reload succeeded"`) {
		t.Fatalf("a generation was swapped in after shutdown began:\n%s", log)
	}
	everyGenerationClosed(t, log)
}

// TestGenerationHeaderNamesServingGeneration: with --debug, a request that
// began on generation 1 and finishes after a reload swapped in generation
// 2 reports generation 1; a request after the swap reports 2.
func TestGenerationHeaderNamesServingGeneration(t *testing.T) {
	t.Parallel()
	p := &reloadProc{}
	p.dir = t.TempDir()
	p.ini = filepath.Join(p.dir, "app.ini")
	writeFile(t, p.ini, []byte(reloadINI(testguest.Module(t, "hello-go", "hello.wasm"), "x", "")))
	p.start(t, nil, "--debug")
	slow := make(chan string, 1)
	go func() {
		resp, err := p.client.Get(p.url + "/sleep?ms=3000")
		if err != nil {
			slow <- err.Error()
			return
		}
		resp.Body.Close()
		slow <- resp.Header.Get("X-Wasmserve-Generation")
	}()
	waitBusy(t, p.proc, "/sleep")
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload succeeded"`)
	if _, _, h := p.get(t, "/"); h.Get("X-Wasmserve-Generation") != "2" {
		t.Fatalf("request after the swap: X-Wasmserve-Generation = %q, want 2", h.Get("X-Wasmserve-Generation"))
	}
	if got := <-slow; got != "1" {
		t.Fatalf("request served by generation 1 across the swap: X-Wasmserve-Generation = %q, want 1", got)
	}
}

// TestReloadsCoalesced: SIGHUPs that arrive while a slow reload builds
// are coalesced into one more reload after it, not queued one by one.
func TestReloadsCoalesced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fast := filepath.Join(dir, "fast.wasm")
	slow := filepath.Join(dir, "slow.wasm")
	writeFile(t, fast, testguest.WAT(t, buildB))
	writeFile(t, slow, testguest.WAT(t, slowInit))
	server := "bind = 127.0.0.1:0\nworkers = 1\ndrain_time = 0\nrequest_timeout = 30 seconds\naccess_log = false"
	ini := writeINIModule(t, server, fast)
	p := wasmserve(t, ini, nil, nil)
	p.log.waitFor(t, startTimeout, 1, "msg=serving")
	writeFile(t, ini, []byte(strings.Replace(string(readFile(t, ini)), fast, slow, 1)))
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload starting"`)
	for range 4 {
		p.signal(t, syscall.SIGHUP)
	}
	p.log.waitFor(t, waitTimeout, 2, `msg="reload succeeded"`)
	p.signal(t, syscall.SIGTERM)
	if code := p.exit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := p.log.count(`msg="reload starting"`); n != 2 {
		t.Fatalf("%d reloads started for 5 SIGHUPs, 4 of them during the first reload; want 2", n)
	}
	everyGenerationClosed(t, p.log.String())
}

// TestOldGenerationDrainBounded: an old generation whose request outlasts
// stop_timeout after a reload is closed anyway, with a WARN, instead of
// staying open for as long as the request runs.
func TestOldGenerationDrainBounded(t *testing.T) {
	t.Parallel()
	p := &reloadProc{}
	p.dir = t.TempDir()
	p.ini = filepath.Join(p.dir, "app.ini")
	writeFile(t, p.ini, []byte(reloadINI(testguest.Module(t, "hello-go", "hello.wasm"), "x", "stop_timeout = 1 second\nrequest_timeout = 60 seconds")))
	p.start(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := p.client.Get(p.url + "/sleep?ms=5000"); err == nil {
			resp.Body.Close()
		}
	}()
	waitBusy(t, p.proc, "/sleep")
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="previous generation closed before its requests finished"`, "generation=1")
	select {
	case <-done:
		t.Fatal("the old generation was closed only after its request ended")
	default:
	}
	<-done
}

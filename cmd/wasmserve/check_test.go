package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

func TestCheckGood(t *testing.T) {
	t.Parallel()
	ini := iniFor(t, testguest.Module(t, "hello-c", "hello.wasm"), "workers = 3\nbind = 127.0.0.1:9999")
	stdout, stderr, code := runBin(t, nil, "check", ini)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{ini + ": ok", "http on 127.0.0.1:9999 (from " + ini + ":5), 3 workers (from " + ini + ":4)",
		"hello.wasm, ", "compile ", "ABI v1", "memory    2 pages (128.0 KiB) initial", "after init; max_memory 64.0 MiB",
		"wasmserve (", "request_read", "config_get"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, stdout)
		}
	}
	// check binds nothing: a taken address does not matter to it.
	if _, err := os.Stat(filepath.Join(filepath.Dir(ini), "s.sock")); err == nil {
		t.Error("check created a socket")
	}
}

func TestCheckBad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	junk := write("junk.wasm", []byte("JUNK not a module at all"))
	truncated := write("truncated.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\x7f"))
	command := write("command.wasm", testguest.WAT(t, `(module (memory (export "memory") 1) (func (export "_start")))`))
	noHandle := write("nohandle.wasm", testguest.WAT(t, `(module (memory (export "memory") 1) (func (export "wasmserve_abi_version") (result i32) i32.const 1))`))
	failInit := write("failinit.wasm", testguest.WAT(t, `(module (memory (export "memory") 1)
		(func (export "wasmserve_abi_version") (result i32) i32.const 1)
		(func (export "wasmserve_init") (result i32) i32.const 7)
		(func (export "wasmserve_handle") (param i32) (result i64) i64.const 0))`))
	abi2 := testguest.Module(t, "hello-wat", "hello-abi2.wasm")
	cases := []struct {
		name, module, server, want string
	}{
		{"junk", junk, "", "load module " + junk + ": not a WebAssembly module (no \\0asm magic number)"},
		{"truncated", truncated, "", "load module " + truncated + ": section 1: length past the end of the data"},
		{"command", command, "", command + " is a WASI command"},
		{"missing export", noHandle, "", `load module ` + noHandle + `: missing required export "wasmserve_handle" (i32) -> (i64) (ABI v1)`},
		{"abi version", abi2, "", "guest declares ABI version 2, host implements version 1"},
		{"init fails", failInit, "", "wasmserve_init"},
		{"bad key", noHandle, "workers = none", `:4: [server:main] workers = "none": not an integer`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ini := iniFor(t, c.module, c.server)
			stdout, stderr, code := runBin(t, nil, "check", ini)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.HasPrefix(stderr, "wasmserve check: "+ini) || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr:\n%s\nwant one line naming %s and containing %q", stderr, ini, c.want)
			}
			if strings.Contains(stdout, ": ok") {
				t.Errorf("stdout says ok:\n%s", stdout)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	mod := testguest.Module(t, "hello-wat", "hello.wasm")
	stdout, stderr, code := runBin(t, nil, "inspect", mod)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"kind:     wasmserve reactor", "abi:      v1", "memory:   2 pages (128.0 KiB) initial",
		"func     wasmserve_handle (i32) -> (i64)", "memory   memory", "func     wasmserve.request_read (i32, i32) -> (i32)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	// The Go SDK computes its ABI version: inspect instantiates the module to ask.
	cache := []string{"WASMSERVE_COMPILATION_CACHE=" + testguest.CacheDir()}
	if stdout, _, code := runBin(t, cache, "inspect", testguest.Module(t, "hello-go", "hello.wasm")); code != 0 || !strings.Contains(stdout, "abi:      v1 (computed at run time; this wasmserve implements v1)") {
		t.Errorf("inspect hello-go: exit %d:\n%s", code, stdout)
	}
	if stdout, _, code := runBin(t, cache, "inspect", testguest.Module(t, "hello-go", "hello-abi2.wasm")); code != 0 || !strings.Contains(stdout, "guest declares ABI version 2, host implements version 1") {
		t.Errorf("inspect hello-go's abi2 build: exit %d:\n%s", code, stdout)
	}
	cmdMod := filepath.Join(t.TempDir(), "cmd.wasm")
	os.WriteFile(cmdMod, testguest.WAT(t, `(module (memory (export "memory") 1) (func (export "_start")))`), 0o644)
	if stdout, _, code := runBin(t, nil, "inspect", cmdMod); code != 0 || !strings.Contains(stdout, "WASI command") || !strings.Contains(stdout, "-mexec-model=reactor") {
		t.Errorf("inspect of a command: exit %d:\n%s", code, stdout)
	}
	if _, stderr, code := runBin(t, nil, "inspect", iniFor(t, mod, "")); code != 1 || !strings.Contains(stderr, "not a WebAssembly module") {
		t.Errorf("inspect of an INI: exit %d: %s", code, stderr)
	}
}

// TestOverridePrecedence checks flag > WASMSERVE_<KEY> > INI > default and
// PORT, through the origins `check` reports.
func TestOverridePrecedence(t *testing.T) {
	t.Parallel()
	mod := testguest.Module(t, "hello-wat", "hello.wasm")
	withBind := iniFor(t, mod, "workers = 4\nbind = 127.0.0.1:9001")
	noBind := iniFor(t, mod, "workers = 4")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, []string{withBind}, "on 127.0.0.1:9001 (from " + withBind + ":5), 4 workers (from " + withBind + ":4)"},
		{"environment over file", []string{"WASMSERVE_WORKERS=3", "WASMSERVE_BIND=127.0.0.1:9002"}, []string{withBind},
			"on 127.0.0.1:9002 (from WASMSERVE_BIND), 3 workers (from WASMSERVE_WORKERS)"},
		{"flag over environment", []string{"WASMSERVE_WORKERS=3", "WASMSERVE_BIND=127.0.0.1:9002"}, []string{"--workers", "2", "--bind", "127.0.0.1:9003", withBind},
			"on 127.0.0.1:9003 (from --bind), 2 workers (from --workers)"},
		{"PORT when bind is unset", []string{"PORT=9004"}, []string{noBind}, "on :9004 (from PORT)"},
		{"PORT ignored when the file sets bind", []string{"PORT=9004"}, []string{withBind}, "on 127.0.0.1:9001 (from " + withBind + ":5)"},
		{"WASMSERVE_BIND over PORT", []string{"PORT=9004", "WASMSERVE_BIND=127.0.0.1:9005"}, []string{noBind}, "on 127.0.0.1:9005 (from WASMSERVE_BIND)"},
		{"default", nil, []string{noBind}, "on localhost:9090 (from default)"},
		{"misspelled override", []string{"WASMSERVE_WORKER=3"}, []string{withBind},
			"warning: environment variable WASMSERVE_WORKER overrides no server key and is ignored; did you mean WASMSERVE_WORKERS?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, c.env, append([]string{"check"}, c.args...)...)
			if code != 0 || !strings.Contains(stdout, c.want) {
				t.Errorf("exit %d, output lacks %q:\n%s%s", code, c.want, stdout, stderr)
			}
		})
	}
}

// TestNewApps creates an app in every language, builds it with its
// Makefile and serves it: GET / answers 200 with the greeting.
func TestNewApps(t *testing.T) {
	t.Parallel()
	tools := map[string][]string{"go": {"go"}, "c": {"clang", "wasm-ld"}, "rust": {"/usr/bin/rustc"}, "as": {"npm"}, "wat": {"wat2wasm"}}
	for _, lang := range []string{"go", "c", "rust", "as", "wat"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			for _, tool := range tools[lang] {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("%s is missing (make deps installs it)", tool)
				}
			}
			dir := filepath.Join(t.TempDir(), "my-app")
			stdout, stderr, code := runBin(t, nil, "new", lang, dir)
			if code != 0 || !strings.Contains(stdout, "make -C "+dir) {
				t.Fatalf("new %s: exit %d\n%s%s", lang, code, stdout, stderr)
			}
			for _, f := range []string{"Makefile", "app.ini", "test.sh"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("new %s made no %s", lang, f)
				}
			}
			makeArgs := []string{"-C", dir}
			if lang == "as" {
				// The compiler the example guests installed (same pinned
				// version) spares an npm ci per run.
				asc := filepath.Join(testguest.Example(t, "hello-as"), "..", "..", "sdk", "assemblyscript", "node_modules", ".bin", "asc")
				makeArgs = append(makeArgs, "ASC="+asc)
			}
			if out, err := exec.Command("make", makeArgs...).CombinedOutput(); err != nil {
				t.Fatalf("make -C %s: %v\n%s", dir, err, out)
			}
			ini := filepath.Join(dir, "app.ini")
			s := start(t, ini, "--workers", "1")
			code, body, _ := s.get(t, "/")
			if code != 200 || body != "hello from my-app\n" {
				t.Errorf("GET / = %d %q, want 200 %q", code, body, "hello from my-app\n")
			}
			if code, _, _ := s.get(t, "/nope"); code != 404 {
				t.Errorf("GET /nope = %d, want 404", code)
			}
			// A second new into the same directory is refused.
			if _, stderr, code := runBin(t, nil, "new", lang, dir); code != 1 || !strings.Contains(stderr, "exists and is not empty") {
				t.Errorf("new into a non-empty directory: exit %d %q", code, stderr)
			}
		})
	}
}

func TestNewUsage(t *testing.T) {
	t.Parallel()
	if _, stderr, code := runBin(t, nil, "new", "cobol", t.TempDir()+"/x"); code != 2 || !strings.Contains(stderr, `unknown language "cobol": want go, c, rust, as or wat`) {
		t.Errorf("new cobol: exit %d %q", code, stderr)
	}
	if stdout, _, code := runBin(t, nil, "new", "--help"); code != 0 || !strings.Contains(stdout, "usage: wasmserve new") {
		t.Errorf("new --help: exit %d %q", code, stdout)
	}
}

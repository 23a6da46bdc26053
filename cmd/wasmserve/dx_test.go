package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// runBin runs the binary with args and extra environment entries (the
// WASMSERVE_* and PORT variables of the test process are removed) and
// returns its stdout, stderr and exit code. A run that outlives two
// minutes (a server that should have refused to start) is killed.
func runBin(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testguest.Binary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WASMSERVE_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// iniFor writes an app.ini serving module with the server keys given.
func iniFor(t *testing.T, module, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.ini")
	ini := fmt.Sprintf("[server:main]\nfactory = http\ncompilation_cache = %s\n%s\n[app:main]\nfactory = %s\ngreeting = hi\n", testguest.CacheDir(), server, module)
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHelpOnStdout(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "help"} {
		stdout, stderr, code := runBin(t, nil, arg)
		if code != 0 || stderr != "" {
			t.Errorf("%s: exit %d, stderr %q; want 0 and nothing on stderr", arg, code, stderr)
		}
		for _, want := range []string{"-workers", "-log-format", "-access-log", "-bind", "-reload", "WASMSERVE_<KEY>", "PORT", "flag > environment > INI file > default", "Configuration reference", "wasmserve new", "wasmserve check", "wasmserve inspect"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", arg, want, stdout)
			}
		}
	}
	// No argument: usage with the flags, on stderr, exit 2.
	stdout, stderr, code := runBin(t, nil)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "no config file given") || !strings.Contains(stderr, "-workers") {
		t.Errorf("no argument: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestErrorMessages is the table of errors that say what, where and how to
// fix: each message is asserted, and printed once.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	hello := testguest.Module(t, "hello-wat", "hello.wasm")
	dir := t.TempDir()
	command := filepath.Join(dir, "command.wasm")
	os.WriteFile(command, testguest.WAT(t, `(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) (func (export "_start")))`), 0o644)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	addr := taken.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	inUse := "address already in use: stop the process listening there, or choose another address with --bind, WASMSERVE_BIND or bind in "

	cases := []struct {
		name string
		env  []string
		args func(t *testing.T) []string
		want string // the whole first line of stderr, after "wasmserve: "; $INI is the config path
	}{
		{"wasi command", nil, func(t *testing.T) []string { return []string{iniFor(t, command, "")} },
			command + ` is a WASI command (it exports _start and no wasmserve_handle): wasmserve serves reactors, which export wasmserve_handle; rebuild it as a reactor — Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared; Rust: a library with crate-type = ["cdylib"] (rustc --crate-type cdylib), not a binary; C: clang --target=wasm32-wasi -mexec-model=reactor; AssemblyScript: asc --exportStart _initialize`},
		{"wasm instead of ini", nil, func(t *testing.T) []string { return []string{hello} },
			hello + " is a WebAssembly module; wasmserve expects an INI config file whose [app:main] factory names the module (wasmserve new LANG DIR writes one: see DIR/app.ini)"},
		{"port in use, --bind", nil, func(t *testing.T) []string { return []string{"--bind", addr, iniFor(t, hello, "")} },
			"listen " + addr + " (from the --bind flag): " + inUse + "$INI"},
		{"port in use, WASMSERVE_BIND", []string{"WASMSERVE_BIND=" + addr}, func(t *testing.T) []string { return []string{iniFor(t, hello, "")} },
			"listen " + addr + " (from the environment variable WASMSERVE_BIND): " + inUse + "$INI"},
		{"port in use, PORT", []string{"PORT=" + port}, func(t *testing.T) []string { return []string{iniFor(t, hello, "")} },
			"listen :" + port + " (from the environment variable PORT): " + inUse + "$INI"},
		{"port in use, file", nil, func(t *testing.T) []string { return []string{iniFor(t, hello, "bind = "+addr)} },
			"listen " + addr + " (from $INI:4): " + inUse + "$INI"},
		{"unset variable", nil, func(t *testing.T) []string { return []string{iniFor(t, hello, "bind = 127.0.0.1:${NO_SUCH_VAR_DX}")} },
			`$INI:4: [server:main] bind = "127.0.0.1:${NO_SUCH_VAR_DX}": bad port "${NO_SUCH_VAR_DX}" (the environment variable NO_SUCH_VAR_DX is unset: set it, or write the value itself)`},
		{"[server] section", nil, func(t *testing.T) []string {
			p := filepath.Join(t.TempDir(), "app.ini")
			os.WriteFile(p, []byte("[server]\nfactory = http\n[app:main]\nfactory = "+hello+"\n"), 0o644)
			return []string{p}
		}, "$INI: no [server:main] section (sections: [server], [app:main]); rename [server] to [server:main] (sections are named [server:NAME])"},
		{"bad flag value", nil, func(t *testing.T) []string { return []string{"--workers", "0", iniFor(t, hello, "")} },
			`--workers "0": must be at least 1`},
		{"bad environment value", []string{"WASMSERVE_LOG_FORMAT=yaml"}, func(t *testing.T) []string { return []string{iniFor(t, hello, "")} },
			`environment WASMSERVE_LOG_FORMAT="yaml": want "text" or "json" (unset it, or set a valid value)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := c.args(t)
			stdout, stderr, code := runBin(t, c.env, args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stderr:\n%s", stderr)
			}
			want := "wasmserve: " + strings.ReplaceAll(c.want, "$INI", args[len(args)-1]) + "\n"
			if stderr != want || stdout != "" {
				t.Errorf("stderr:\n%s\nwant (once, alone):\n%s", stderr, want)
			}
		})
	}
}

func TestHealthcheckHints(t *testing.T) {
	t.Parallel()
	sock := start(t, writeINI(t, "workers = 1\n", "")).sock
	out, code := healthcheck(t, "http", sock)
	if code != 1 || !strings.Contains(out, "is "+sock+" the app's port? wasmserve answers health checks on its admin listener: set admin.bind in [server:main] (or WASMSERVE_ADMIN_BIND) and check that address") {
		t.Errorf("healthcheck http against the app: exit %d, %q", code, out)
	}
	out, code = healthcheck(t, "thrift", sock)
	if code != 1 || !strings.Contains(out, sock+" answered in HTTP, not Thrift: it is an HTTP port") {
		t.Errorf("healthcheck thrift against HTTP: exit %d, %q", code, out)
	}
}

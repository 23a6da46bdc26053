// Package testguest gives tests the example guests built from source, the
// wasmserve binary, WAT fixtures compiled with wabt and a compilation cache
// shared by every test package of a run.
package testguest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Root returns the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir is the wazero compilation cache shared by the tests of a run:
// $WASMSERVE_TEST_CACHE, or a directory under the system temp dir.
func CacheDir() string {
	if d := os.Getenv("WASMSERVE_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("wasmserve-test-cache-%d", os.Getuid()))
}

var (
	mu    sync.Mutex
	built = map[string]error{}
)

// locked runs fn holding an inter-process lock, so test binaries running in
// parallel build each artefact once.
func locked(fn func() error) error {
	dir := filepath.Join(Root(), ".cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

func once(key string, fn func() error) error {
	mu.Lock()
	defer mu.Unlock()
	if err, ok := built[key]; ok {
		return err
	}
	err := locked(fn)
	built[key] = err
	return err
}

// Example returns the directory of guests/examples/NAME after bringing its
// modules up to date with its Makefile (targets all and abi2).
func Example(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(Root(), "guests", "examples", name)
	err := once("example:"+name, func() error {
		out, err := exec.Command("make", "--no-print-directory", "-C", dir, "all", "abi2").CombinedOutput()
		if err != nil {
			return fmt.Errorf("make -C %s: %v\n%s", dir, err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Module returns the path of guests/examples/NAME/FILE, built from source.
func Module(t testing.TB, name, file string) string {
	t.Helper()
	return filepath.Join(Example(t, name), file)
}

// Binary returns the path of a wasmserve binary built from the working tree.
func Binary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(Root(), ".cache", "test-bin", "wasmserve")
	err := once("binary", func() error {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/wasmserve")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/wasmserve: %v\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// WAT compiles WebAssembly text to a module with wabt's wat2wasm and
// returns its bytes.
func WAT(t testing.TB, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("wat2wasm", "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm (Debian package wabt): %v\n%s", err, strings.TrimSpace(string(msg)))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

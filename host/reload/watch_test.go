package reload_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/reload"
)

// watch starts Watch on paths and returns the channel of reported changes.
func watch(t *testing.T, paths ...string) <-chan []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []string, 16)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- reload.Watch(ctx, paths, 100*time.Millisecond, func(p []string) { ch <- p }, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ch
}

// expect waits for exactly one report naming want, then checks no second
// report arrives within a settle period.
func expect(t *testing.T, ch <-chan []string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if len(got) != 1 || filepath.Base(got[0]) != want {
			t.Fatalf("changed %v, want [%s]", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no change reported for %s", want)
	}
	select {
	case got := <-ch:
		t.Fatalf("a second report %v for one change", got)
	case <-time.After(500 * time.Millisecond):
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChanges(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, dir, path string){
		"write in place, several writes": func(t *testing.T, dir, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				f.WriteString("chunk ")
				f.Sync()
			}
			f.Close()
		},
		"rename over": func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, ".app.wasm.tmp")
			write(t, tmp, "new contents")
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		},
		"delete and create": func(t *testing.T, dir, path string) {
			os.Remove(path)
			write(t, path, "recreated")
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.wasm")
			write(t, path, "original")
			ch := watch(t, path)
			change(t, dir, path)
			expect(t, ch, "app.wasm")
		})
	}
}

// TestConfigMapSwap reproduces Kubernetes' ConfigMap volume: the file is a
// symlink through "..data", itself a symlink swapped atomically to a new
// timestamped directory.
func TestConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1 := filepath.Join(dir, "..2026_11_25_v1")
	os.Mkdir(v1, 0o755)
	write(t, filepath.Join(v1, "app.wasm"), "v1")
	os.Symlink("..2026_11_25_v1", filepath.Join(dir, "..data"))
	os.Symlink("..data/app.wasm", filepath.Join(dir, "app.wasm"))
	ch := watch(t, filepath.Join(dir, "app.wasm"))

	v2 := filepath.Join(dir, "..2026_11_25_v2")
	os.Mkdir(v2, 0o755)
	write(t, filepath.Join(v2, "app.wasm"), "v2, longer")
	os.Symlink("..2026_11_25_v2", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(v1)
	expect(t, ch, "app.wasm")
}

func TestDisappearIsNotAChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.wasm")
	write(t, path, "original")
	ch := watch(t, path)
	os.Remove(path)
	select {
	case got := <-ch:
		t.Fatalf("deletion reported as a change: %v", got)
	case <-time.After(700 * time.Millisecond):
	}
	write(t, path, "back")
	expect(t, ch, "app.wasm")
}

func TestSedInPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	write(t, ini, "greeting = a\n")
	ch := watch(t, ini, filepath.Join(dir, "app.wasm"))
	tmp := filepath.Join(dir, "sedXYZ")
	write(t, tmp, "greeting = b\n")
	os.Rename(tmp, ini)
	expect(t, ch, "app.ini")
}

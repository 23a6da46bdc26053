package reload_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/reload"
)

// quiet is the settle period of most tests: long enough that one change
// made by a test on a loaded machine is not reported in two parts.
const quiet = 300 * time.Millisecond

// watch starts Watch on paths and returns the channel of reported changes.
func watch(t *testing.T, quiet time.Duration, paths ...string) <-chan []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []string, 16)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- reload.Watch(ctx, paths, quiet, func(p []string) { ch <- p }, ready)
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

// next waits for one report and checks it names exactly want.
func next(t *testing.T, ch <-chan []string, want ...string) {
	t.Helper()
	select {
	case got := <-ch:
		var names []string
		for _, p := range got {
			names = append(names, filepath.Base(p))
		}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("changed %v, want %v", names, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no change reported for %v", want)
	}
}

// expect waits for exactly one report naming want, then checks no second
// report arrives within a settle period.
func expect(t *testing.T, ch <-chan []string, want string) {
	t.Helper()
	next(t, ch, want)
	select {
	case got := <-ch:
		t.Fatalf("a second report %v for one change", got)
	case <-time.After(3 * quiet):
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as Kubernetes mounts a ConfigMap: name is a
// symlink to ..data/name, ..data a symlink to a timestamped directory.
func configMap(t *testing.T, dir, version, name, data string) {
	t.Helper()
	v := filepath.Join(dir, "..2026_11_25_"+version)
	mkdir(t, v)
	write(t, filepath.Join(v, name), data)
	if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
		symlink(t, "..data/"+name, filepath.Join(dir, name))
		symlink(t, filepath.Base(v), filepath.Join(dir, "..data"))
		return
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	symlink(t, filepath.Base(v), filepath.Join(dir, "..data_tmp"))
	rename(t, filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	os.RemoveAll(filepath.Join(dir, old))
}

func TestChanges(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, dir, path string){
		"write in place, several writes": func(t *testing.T, dir, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				f.WriteString("chunk ")
			}
			f.Close()
		},
		"rename over": func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, ".app.wasm.tmp")
			write(t, tmp, "new contents")
			rename(t, tmp, path)
		},
		"delete and create": func(t *testing.T, dir, path string) {
			os.Remove(path)
			write(t, path, "recreated")
		},
		"sed -i": func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, "sedXYZ")
			write(t, tmp, "greeting = b\n")
			rename(t, tmp, path)
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.wasm")
			write(t, path, "original")
			ch := watch(t, quiet, path, filepath.Join(dir, "app.ini"))
			change(t, dir, path)
			expect(t, ch, "app.wasm")
		})
	}
}

// TestConfigMapSwap reproduces Kubernetes' ConfigMap volume twice in a
// row: the second swap shows the watches followed the first.
func TestConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	configMap(t, dir, "v1", "app.ini", "v1")
	ch := watch(t, quiet, filepath.Join(dir, "app.ini"))
	configMap(t, dir, "v2", "app.ini", "v2, longer")
	expect(t, ch, "app.ini")
	configMap(t, dir, "v3", "app.ini", "v3")
	expect(t, ch, "app.ini")
}

// TestSymlinkTargetWrittenInPlace covers a module symlinked to a build
// output elsewhere that the build rewrites in place.
func TestSymlinkTargetWrittenInPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "build"))
	mkdir(t, filepath.Join(dir, "srv"))
	write(t, filepath.Join(dir, "build", "out.wasm"), "v1")
	symlink(t, "../build/out.wasm", filepath.Join(dir, "srv", "app.wasm"))
	ch := watch(t, quiet, filepath.Join(dir, "srv", "app.wasm"))
	write(t, filepath.Join(dir, "build", "out.wasm"), "v2, longer")
	expect(t, ch, "app.wasm")
}

// TestParentSymlinkSwap covers a release directory switched by replacing
// a "current" symlink, as Capistrano-style deployments do.
func TestParentSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, r := range []string{"r1", "r2"} {
		mkdir(t, filepath.Join(dir, "releases", r))
		write(t, filepath.Join(dir, "releases", r, "app.wasm"), "release "+r)
	}
	symlink(t, "releases/r1", filepath.Join(dir, "current"))
	ch := watch(t, quiet, filepath.Join(dir, "current", "app.wasm"))
	symlink(t, "releases/r2", filepath.Join(dir, "current.tmp"))
	rename(t, filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current"))
	expect(t, ch, "app.wasm")
}

func TestDisappearIsNotAChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.wasm")
	write(t, path, "original")
	ch := watch(t, quiet, path)
	os.Remove(path)
	select {
	case got := <-ch:
		t.Fatalf("deletion reported as a change: %v", got)
	case <-time.After(3 * quiet):
	}
	write(t, path, "back")
	expect(t, ch, "app.wasm")
}

// TestOneReportForBoth changes two watched files within one quiet period.
func TestOneReportForBoth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini, mod := filepath.Join(dir, "app.ini"), filepath.Join(dir, "app.wasm")
	write(t, ini, "a")
	write(t, mod, "a")
	ch := watch(t, 2*time.Second, ini, mod)
	write(t, mod, "bb")
	write(t, ini, "bb")
	next(t, ch, "app.ini", "app.wasm")
}

// TestSlowWriterReportedWhole writes a file in several calls with pauses
// shorter than the quiet period: one report, after the last write.
func TestSlowWriterReportedWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.wasm")
	write(t, path, "original")
	ch := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- reload.Watch(ctx, []string{path}, 2*time.Second, func([]string) {
			b, _ := os.ReadFile(path)
			ch <- string(b)
		}, ready)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-ready
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for i := range 5 {
		chunk := string(rune('a'+i)) + "-chunk;"
		f.WriteString(chunk)
		want += chunk
		time.Sleep(10 * time.Millisecond) // a slow writer, not synchronisation
	}
	f.Close()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("reported with contents %q, want %q", got, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no report")
	}
}

// TestUnrelatedEventsDoNotDelay keeps writing another file in the watched
// directory: the watched file's change is still reported.
func TestUnrelatedEventsDoNotDelay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.wasm")
	write(t, path, "original")
	ch := watch(t, quiet, path)
	stop := make(chan struct{})
	noisy := make(chan struct{})
	go func() {
		defer close(noisy)
		tick := time.NewTicker(quiet / 10)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				os.WriteFile(filepath.Join(dir, "access.log"), []byte{byte(i)}, 0o644)
			}
		}
	}()
	defer func() { close(stop); <-noisy }()
	write(t, path, "changed")
	next(t, ch, "app.wasm")
}

func TestDirs(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	configMap(t, filepath.Join(dir, "cm"), "v1", "app.ini", "x")
	mkdir(t, filepath.Join(dir, "releases", "r1"))
	write(t, filepath.Join(dir, "releases", "r1", "app.wasm"), "x")
	symlink(t, "releases/r1", filepath.Join(dir, "current"))
	mkdir(t, filepath.Join(dir, "plain"))
	write(t, filepath.Join(dir, "plain", "app.wasm"), "x")
	symlink(t, filepath.Join(dir, "loop"), filepath.Join(dir, "loop"))
	tests := []struct {
		path string
		want []string
	}{
		{"plain/app.wasm", []string{"plain"}},
		{"plain/missing.wasm", []string{"plain"}},
		{"gone/deeper/app.wasm", []string{""}},
		{"cm/app.ini", []string{"cm", "cm/..2026_11_25_v1"}},
		{"current/app.wasm", []string{"", "releases/r1"}},
		{"plain/../current/app.wasm", []string{"", "releases/r1"}},
		{"loop", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var want []string
			for _, w := range tt.want {
				want = append(want, filepath.Join(dir, w))
			}
			if got := reload.Dirs([]string{filepath.Join(dir, tt.path)}); !reflect.DeepEqual(got, want) {
				t.Errorf("Dirs(%s) = %v, want %v", tt.path, got, want)
			}
		})
	}
}

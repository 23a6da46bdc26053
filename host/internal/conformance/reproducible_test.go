//go:build !wasip1

package conformance

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// TestNoCommittedBinaries checks that the guests tree holds sources only:
// every module and every toolchain is built or installed by make.
func TestNoCommittedBinaries(t *testing.T) {
	out, err := exec.Command("git", "-C", testguest.Root(), "ls-files", "guests").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		switch {
		case strings.HasSuffix(f, ".wasm"), strings.HasSuffix(f, ".rlib"), strings.HasSuffix(f, ".o"),
			strings.HasSuffix(f, ".a"), strings.Contains(f, "node_modules/"):
			t.Errorf("built artefact committed: %s", f)
		}
	}
}

// TestReproducibleBuilds builds every example guest and its SDK from
// sources alone, twice, in two fresh directories at different paths (the
// first with npm ci from package-lock.json), and checks that each module is
// byte-for-byte the same: builds depend on nothing but the sources and the
// pinned toolchains.
func TestReproducibleBuilds(t *testing.T) {
	root := testguest.Root()
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "second", "b")
	skip := func(d fs.DirEntry) bool {
		name := d.Name()
		return name == "node_modules" || strings.HasSuffix(name, ".wasm") || strings.HasSuffix(name, ".rlib")
	}
	for _, dst := range []string{a, b} {
		for _, p := range []string{"go.mod", "go.sum", "abi", "guests/sdk", "guests/examples"} {
			copyTree(t, filepath.Join(root, p), filepath.Join(dst, p), skip)
		}
	}
	// The second copy reuses the toolchain the first one installed.
	nm := filepath.Join("guests", "sdk", "assemblyscript", "node_modules")
	if err := os.Symlink(filepath.Join(a, nm), filepath.Join(b, nm)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "guests", "examples", "*", "conformance.json"))
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		m, err := readManifest(filepath.Dir(f))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			var built [2][][]byte
			for i, dst := range []string{a, b} {
				dir := filepath.Join(dst, "guests", "examples", name)
				out, err := exec.Command("make", "--no-print-directory", "-C", dir, "all", "abi2").CombinedOutput()
				if err != nil {
					t.Fatalf("make in %s: %v\n%s", dir, err, out)
				}
				for _, mod := range []string{m.Module, m.ABI2Module} {
					bin, err := os.ReadFile(filepath.Join(dir, mod))
					if err != nil {
						t.Fatal(err)
					}
					built[i] = append(built[i], bin)
				}
			}
			for i, mod := range []string{m.Module, m.ABI2Module} {
				if !bytes.Equal(built[0][i], built[1][i]) {
					t.Errorf("%s differs between two builds from the same sources (%d bytes vs %d)", mod, len(built[0][i]), len(built[1][i]))
				}
			}
			if bytes.Equal(built[0][0], built[0][1]) {
				t.Errorf("%s and %s are identical; the second should declare ABI version 2", m.Module, m.ABI2Module)
			}
		})
	}
}

// copyTree copies the regular files under src to dst, keeping modes and
// modification times (so make sees the copies as the originals), minus
// what skip names.
func copyTree(t *testing.T, src, dst string, skip func(fs.DirEntry) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if skip(d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(target, info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

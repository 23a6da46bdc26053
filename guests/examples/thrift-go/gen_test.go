package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates gen-go with `make gen` in a copy
// of this directory and compares it with the committed code.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"Makefile", "example.thrift", "baseplate.thrift"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	if out, err := exec.Command("make", "--no-print-directory", "-C", dir, "gen").CombinedOutput(); err != nil {
		t.Fatalf("make gen: %v\n%s", err, out)
	}
	var fresh, committed []string
	filepath.Walk(filepath.Join(dir, "gen-go"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			fresh = append(fresh, rel)
			want, _ := os.ReadFile(p)
			got, err := os.ReadFile(rel)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s differs from what make gen produces: run make -C guests/examples/thrift-go gen", rel)
			}
		}
		return nil
	})
	filepath.Walk("gen-go", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			committed = append(committed, p)
		}
		return nil
	})
	if len(fresh) != len(committed) || len(fresh) == 0 {
		t.Errorf("generated files %v, committed %v", fresh, committed)
	}
}

package testguest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Go builds the Go guest package pkg (a path relative to the repository
// root, e.g. "./abi/guest/testdata/nethttp") as a wasip1 reactor with the
// given -ldflags and returns the module's path under .cache/go-guests.
func Go(t testing.TB, pkg, ldflags string) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", ".", "_", "=", "_", " ", "_").Replace(pkg + ldflags)
	out := filepath.Join(Root(), ".cache", "go-guests", name+".wasm")
	err := once("go:"+pkg+ldflags, func() error {
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-ldflags="+ldflags, "-o", out, pkg)
		cmd.Dir = Root()
		cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

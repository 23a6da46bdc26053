//go:build !wasip1

package conformance

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// TestABIDocSmallestGuest compiles the smallest guest shown in ABI.md
// ("Writing a guest in a new language") and checks that the host serves it
// as the document says.
func TestABIDocSmallestGuest(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testguest.Root(), "abi", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "The smallest complete guest")
	if !ok {
		t.Fatal("ABI.md has no smallest complete guest")
	}
	_, after, _ = strings.Cut(after, "```wat\n")
	src, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("ABI.md: the smallest guest's code block is not closed")
	}
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{
		Path:   "ABI.md smallest guest",
		Binary: testguest.WAT(t, src),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	inst, err := m.NewInstance(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || string(resp.Body) != "hi" || len(resp.Headers) != 0 {
		t.Errorf("got %d %q with %d header bytes, want 200 \"hi\" and none", resp.Status, resp.Body, len(resp.Headers))
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every case for a moment: each server must start, answer
// with the same bytes, and the report and charts must be written. The
// numbers are not checked.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	o := options{smoke: true, rounds: 1, duration: time.Second, conns: 4,
		out: filepath.Join(dir, "RESULTS.md"), charts: filepath.Join(dir, "charts")}
	if err := run(&o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## HTTP hello", "## HTTP echo 64 KiB", "## Isolation: GET / per guest, worker vs request mode", "go guest, isolation = request", "native Go net/http", "wasmserve (go guest, shipped app.ini)", "## CPU-bound request", "## One request spins", "request_timeout = 30 seconds, one request spinning",
		"http-wasm-host-go", "gunicorn sync", "## Instance costs", "## Timeout cost", "## Thrift echo, framed binary client", "## Thrift echo, THeader client", "native Go TSimpleServer", "## Reload", "## kv_incr, embedded store", "## kv_incr, redis store"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	pngs, _ := filepath.Glob(filepath.Join(o.charts, "*.png"))
	if len(pngs) < 3 {
		t.Errorf("%d charts written, want at least 3", len(pngs))
	}
}

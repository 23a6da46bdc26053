package httpfront

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// The hand-formatted access log line is the one slog's handlers write for
// the same record, in both formats.
func TestAccessLogMatchesSlog(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 2, 3, 4, 567891234, time.UTC)
	cases := []struct {
		method, path, remote, trace, span string
		status                            int
		n                                 int64
		d                                 time.Duration
	}{
		{"GET", "/", "127.0.0.1:5555", "", "", 200, 12, 35210 * time.Nanosecond},
		{"POST", "/echo", "[::1]:80", "abc", "def", 413, 0, 999 * time.Nanosecond},
		{"GET", "/a=b", "x y", `q"uote`, "tab\there", 0, 1 << 40, 1500 * time.Millisecond},
		{"PUT", "/\x01\x7f", "", "line\nbreak", "back\\slash", 504, 7, 12 * time.Millisecond},
		{"GET", "/é", "r", "", "", 200, 1, time.Millisecond + 2*time.Microsecond},
		{"GET", "/", "r", "", "", 200, 1, 0},
		{"GET", "/", "r", "", "", 200, 1, 100 * time.Microsecond},
	}
	for _, json := range []bool{false, true} {
		for _, c := range cases {
			var want bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&want, nil)
			if json {
				h = slog.NewJSONHandler(&want, nil)
			}
			rec := slog.NewRecord(now, slog.LevelInfo, "request", 0)
			rec.AddAttrs(slog.String("method", c.method), slog.String("path", c.path), slog.Int("status", c.status),
				slog.Int64("bytes", c.n), slog.Duration("duration", c.d), slog.Int("worker", 3), slog.String("remote", c.remote))
			if c.trace != "" {
				rec.AddAttrs(slog.String("trace", c.trace))
			}
			if c.span != "" {
				rec.AddAttrs(slog.String("span", c.span))
			}
			if err := h.Handle(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if json {
				got = appendJSONRecord(nil, now, c.method, c.path, c.status, c.n, c.d, 3, c.remote, c.trace, c.span)
			} else {
				got = appendTextRecord(nil, now, c.method, c.path, c.status, c.n, c.d, 3, c.remote, c.trace, c.span)
			}
			if string(got) != want.String() {
				t.Errorf("json=%v:\n got %s\nwant %s", json, got, want.String())
			}
		}
	}
}

// Buffered lines reach the output by the next flush, and close writes out
// the rest; a record after close goes straight out.
func TestAccessLogFlushes(t *testing.T) {
	t.Parallel()
	out := &lockedBuffer{}
	a := newAccessLog(out, "text")
	a.record(time.Now(), "GET", "/one", 200, 1, time.Millisecond, 1, "r", "", "")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "path=/one") {
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was not flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.record(time.Now(), "GET", "/two", 200, 1, time.Millisecond, 1, "r", "", "")
	a.close()
	if !strings.Contains(out.String(), "path=/two") {
		t.Fatal("close did not write out the buffered line")
	}
	a.record(time.Now(), "GET", "/three", 200, 1, time.Millisecond, 1, "r", "", "")
	if !strings.Contains(out.String(), "path=/three") {
		t.Fatal("a line logged after close was not written")
	}
}

func BenchmarkAccessLog(b *testing.B) {
	a := newAccessLog(discardWriter{}, "text")
	defer a.close()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.record(now, "GET", "/", 200, 12, 35*time.Microsecond, 1, "127.0.0.1:5555", "", "")
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

type lockedBuffer = testguest.Buffer

func BenchmarkAccessLogSlog(b *testing.B) {
	l := slog.New(slog.NewTextHandler(discardWriter{}, nil))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("method", "GET"), slog.String("path", "/"), slog.Int("status", 200),
			slog.Int64("bytes", 12), slog.Duration("duration", 35*time.Microsecond), slog.Int("worker", 1), slog.String("remote", "127.0.0.1:5555"))
	}
}

func TestAppendTime(t *testing.T) {
	t.Parallel()
	zones := []*time.Location{time.UTC, time.FixedZone("x", -(3*3600 + 30*60)), time.FixedZone("y", 5*3600)}
	base := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	for _, z := range zones {
		for _, d := range []time.Duration{0, 1, 999 * time.Millisecond, 1500 * time.Millisecond, 2*time.Second + 7*time.Millisecond} {
			now := base.Add(d).In(z)
			if got, want := string(appendTime(nil, now)), now.Format(timeFormat); got != want {
				t.Errorf("appendTime(%v) = %s, want %s", now, got, want)
			}
		}
	}
}

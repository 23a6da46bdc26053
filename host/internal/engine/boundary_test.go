package engine_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// watBytes renders b as a WAT string literal body.
func watBytes(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, `\%02x`, c)
	}
	return s.String()
}

// responseGuest returns a guest that answers every request with rec,
// placed at 4096.
func responseGuest(t *testing.T, rec []byte) []byte {
	t.Helper()
	data := fmt.Sprintf(`(data (i32.const 4096) "%s")`, watBytes(rec))
	return testguest.WAT(t, watGuest("", versionOK+data, fmt.Sprintf("i64.const %d", uint64(4096)<<32|uint64(len(rec)))))
}

func handleOnce(t *testing.T, bin []byte, kind abi.Kind, mod func(*engine.Options)) (abi.Response, error) {
	t.Helper()
	inst := instance(t, bin, 1, mod)
	return inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: kind, Method: "GET", Path: "/"}})
}

func TestRequestReadChecksTheWholeRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, args string
		fault      bool
	}{
		// The record is a few dozen bytes; the buffer runs to 4 GiB.
		{name: "0, 0xFFFFFFFF", args: `(i32.const 0) (i32.const -1)`, fault: true},
		// One byte past the single 64 KiB page.
		{name: "buffer ends past memory", args: `(i32.const 0xFF00) (i32.const 0x101)`, fault: true},
		{name: "buffer ends at memory end", args: `(i32.const 0xFF00) (i32.const 0x100)`},
		{name: "measure at memory end", args: `(i32.const 0x10000) (i32.const 0)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin := testguest.WAT(t, watGuest("", versionOK, `(drop (call $read `+c.args+`)) `+hello))
			resp, err := handleOnce(t, bin, abi.KindHTTP, nil)
			var f *engine.Fault
			switch {
			case c.fault && (!errors.As(err, &f) || f.Kind != engine.Trap || !strings.Contains(err.Error(), "outside memory")):
				t.Fatalf("Handle = %v, want a trap naming the range outside memory", err)
			case !c.fault && (err != nil || string(resp.Body) != "hello"):
				t.Fatalf("Handle = %q, %v; want hello", resp.Body, err)
			}
		})
	}
}

func TestResponseValidation(t *testing.T) {
	t.Parallel()
	rec := func(status uint32, kv ...string) []byte {
		var f []byte
		for i := 0; i+1 < len(kv); i += 2 {
			f = abi.AppendField(f, kv[i], kv[i+1])
		}
		return append(abi.AppendResponseHeader(nil, status, f), "body"...)
	}
	many := func(n int) []string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf("X-H%d", i), "v")
		}
		return kv
	}
	cases := []struct {
		name string
		rec  []byte
		kind abi.Kind
		want string // "" = accepted
	}{
		{name: "200", rec: rec(200, "Content-Type", "text/plain", "X-Tab", "a\tb", "X-Utf8", "caf\xc3\xa9")},
		{name: "999", rec: rec(999)},
		{name: "101", rec: rec(101), want: "response status 101 outside 200–999"},
		{name: "103", rec: rec(103), want: "response status 103 outside 200–999"},
		{name: "0 for HTTP", rec: rec(0), want: "response status 0 outside"},
		{name: "1000", rec: rec(1000), want: "response status 1000 outside"},
		{name: "thrift 0", rec: rec(0), kind: abi.KindThrift},
		{name: "thrift header with a space", rec: rec(0, "odd key", "line\nbreak"), kind: abi.KindThrift},
		{name: "name with space", rec: rec(200, "X-Ok", "1", "Bad Name", "v"), want: `response header "Bad Name": name is not an HTTP token`},
		{name: "empty name", rec: rec(200, "", "v"), want: `response header "": name is not an HTTP token`},
		{name: "name with colon", rec: rec(200, "X-A:b", "v"), want: `response header "X-A:b"`},
		{name: "CRLF in value", rec: rec(200, "X-Split", "a\r\nSet-Cookie: evil=1"), want: `response header "X-Split": value contains control byte 0x0d`},
		{name: "LF in value", rec: rec(200, "X-Lf", "a\nb"), want: `response header "X-Lf": value contains control byte 0x0a`},
		{name: "NUL in value", rec: rec(200, "X-Nul", "a\x00b"), want: `response header "X-Nul": value contains control byte 0x00`},
		{name: "100 headers", rec: rec(200, many(100)...)},
		{name: "101 headers", rec: rec(200, many(101)...), want: "more than 100 header fields (max_response_headers)"},
		{name: "101 thrift headers", rec: rec(0, many(101)...), kind: abi.KindThrift, want: "more than 100 header fields"},
		{name: "header bytes", rec: rec(200, "X-Big", strings.Repeat("v", 1000), "X-Over", "v"), want: `exceed 1005 bytes (max_response_header_bytes) at header "X-Over"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kind := c.kind
			if kind == 0 {
				kind = abi.KindHTTP
			}
			resp, err := handleOnce(t, responseGuest(t, c.rec), kind, func(o *engine.Options) {
				o.MaxResponseHeaders, o.MaxResponseHeaderBytes = 100, 1000+len("X-Big")
			})
			if c.want == "" {
				if err != nil || string(resp.Body) != "body" {
					t.Fatalf("Handle = %q, %v; want the response accepted", resp.Body, err)
				}
				return
			}
			var f *engine.Fault
			if !errors.As(err, &f) || f.Kind != engine.BadResponse || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Handle error = %v, want a bad_response fault containing %q", err, c.want)
			}
		})
	}
}

// logBuffer is a concurrency-safe log destination.
type logBuffer = testguest.Buffer

func countContaining(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func TestGuestLogLimit(t *testing.T) {
	t.Parallel()
	// Logs "line 0123456789" (15 bytes) at INFO as many times as the
	// request's path is long.
	bin := testguest.WAT(t, watGuest(`(import "wasmserve" "log" (func $log (param i32 i32 i32)))`,
		versionOK+`(data (i32.const 8192) "line 0123456789")`, `
    (local $i i32) (local $cnt i32)
    (drop (call $read (i32.const 16384) (local.get 0)))
    (local.set $cnt (i32.load (i32.const 16400)))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $i) (local.get $cnt)))
      (call $log (i32.const 0) (i32.const 8192) (i32.const 15))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    `+hello))
	cases := []struct {
		name           string
		limit          engine.LogLimit
		calls, kept    int
		droppedBytes   int
		wantWarnPerReq bool
	}{
		{name: "lines", limit: engine.LogLimit{Lines: 10}, calls: 1000, kept: 10, droppedBytes: 990 * 15, wantWarnPerReq: true},
		{name: "bytes", limit: engine.LogLimit{Bytes: 100}, calls: 50, kept: 6, droppedBytes: 44 * 15, wantWarnPerReq: true},
		{name: "within", limit: engine.LogLimit{Lines: 10, Bytes: 1000}, calls: 10, kept: 10},
		{name: "unlimited", calls: 300, kept: 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out logBuffer
			inst := instance(t, bin, 2, func(o *engine.Options) {
				o.LogLimit = c.limit
				o.Logger = slog.New(slog.NewTextHandler(&out, nil))
			})
			for req := range 2 { // the budget is per request
				out.Reset()
				_, err := inst.Handle(&engine.Call{Trace: "t-1", Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: strings.Repeat("/", c.calls)}})
				if err != nil {
					t.Fatal(err)
				}
				lines := out.Lines()
				if got := countContaining(lines, `msg="line 0123456789"`); got != c.kept {
					t.Errorf("request %d: %d guest records logged, want %d", req, got, c.kept)
				}
				if got := countContaining(lines, "source=guest trace=t-1"); got != c.kept {
					t.Errorf("request %d: %d records carry source=guest and the trace, want %d:\n%s", req, got, c.kept, strings.Join(lines, "\n"))
				}
				warn := fmt.Sprintf("level=WARN msg=\"guest log limit reached; records dropped (raise guest_log_limit to keep them)\" worker=2 generation=1 phase=request dropped_lines=%d dropped_bytes=%d guest_log_limit=", c.calls-c.kept, c.droppedBytes)
				if got, want := countContaining(lines, warn), map[bool]int{true: 1}[c.wantWarnPerReq]; got != want {
					t.Errorf("request %d: %d WARN lines %q, want %d:\n%s", req, got, warn, want, strings.Join(lines[max(0, len(lines)-3):], "\n"))
				}
			}
		})
	}
}

func TestStderrOfAFailingCallIsOneRecord(t *testing.T) {
	t.Parallel()
	const text = "panic: boom\n\ngoroutine 1 [running]:\nmain.handle()\n"
	guest := func(end string) []byte {
		return testguest.WAT(t, watGuest(
			`(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))`,
			versionOK+fmt.Sprintf(`(data (i32.const 8192) "%s") (data (i32.const 8000) "\00\20\00\00\%02x\00\00\00")`, watBytes([]byte(text)), len(text)),
			`(drop (call $fd_write (i32.const 2) (i32.const 8000) (i32.const 1) (i32.const 8100))) `+end))
	}
	for _, c := range []struct {
		name, end string
		records   []string
	}{
		{name: "trap", end: "unreachable", records: []string{
			`level=WARN msg="panic: boom\n\ngoroutine 1 [running]:\nmain.handle()" worker=1 generation=1 source=guest stream=stderr lines=4`}},
		{name: "success", end: hello, records: []string{
			`level=WARN msg="panic: boom" worker=1 generation=1 source=guest stream=stderr`,
			`level=WARN msg="" worker=1 generation=1 source=guest stream=stderr`,
			`level=WARN msg="goroutine 1 [running]:" worker=1 generation=1 source=guest stream=stderr`,
			`level=WARN msg=main.handle() worker=1 generation=1 source=guest stream=stderr`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out logBuffer
			_, err := handleOnce(t, guest(c.end), abi.KindHTTP, func(o *engine.Options) {
				o.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			})
			if (err != nil) != (c.name == "trap") {
				t.Fatalf("Handle error = %v", err)
			}
			var f *engine.Fault
			if errors.As(err, &f) && f.Message != "panic: boom" {
				t.Errorf("fault message = %q, want the first stderr line", f.Message)
			}
			got := out.Lines()
			if strings.Join(got, "\n") != strings.Join(c.records, "\n") {
				t.Errorf("log records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.records, "\n"))
			}
		})
	}
}

// TestImportsDuringInitialize checks what ABI.md promises for start-up:
// every import works in _initialize as in a request, and request_read
// returns 0 there.
func TestImportsDuringInitialize(t *testing.T) {
	t.Parallel()
	bin := testguest.WAT(t, `(module
  (import "wasmserve" "request_read" (func $read (param i32 i32) (result i32)))
  (import "wasmserve" "config_get" (func $cfg (param i32 i32 i32 i32) (result i32)))
  (import "wasmserve" "log" (func $log (param i32 i32 i32)))
  (import "wasmserve" "generation" (func $gen (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 8000) "greeting")
  (data (i32.const 8800) "\c8\00\00\00\00\00\00\00")
  (func (export "_initialize")
    ;; body: u32 request_read result | u32 generation | config value
    (i32.store (i32.const 8808) (call $read (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 8812) (i32.wrap_i64 (call $gen)))
    (i32.store (i32.const 9004) (call $cfg (i32.const 8000) (i32.const 8) (i32.const 8816) (i32.const 64)))
    (call $log (i32.const 0) (i32.const 8816) (i32.load (i32.const 9004))))
  (func (export "wasmserve_abi_version") (result i32) (i32.const 1))
  (func (export "wasmserve_handle") (param i32) (result i64)
    (i64.or (i64.const 0x0000226000000000)
            (i64.extend_i32_u (i32.add (i32.const 16) (i32.load (i32.const 9004)))))))`)
	var out logBuffer
	resp, err := handleOnce(t, bin, abi.KindHTTP, func(o *engine.Options) {
		o.Generation = 7
		o.Config = []engine.ConfigEntry{{Key: "greeting", Value: "from init"}}
		o.Logger = slog.New(slog.NewTextHandler(&out, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "\x00\x00\x00\x00\x07\x00\x00\x00from init"
	if string(resp.Body) != want {
		t.Errorf("body %q, want %q (request_read 0, generation 7, the config value)", resp.Body, want)
	}
	if n := countContaining(out.Lines(), `msg="from init" worker=1 generation=7 source=guest`); n != 1 {
		t.Errorf("%d guest records logged during _initialize, want 1:\n%s", n, strings.Join(out.Lines(), "\n"))
	}
}

// TestGuestLogLimitAtStartUp: records logged while an instance starts
// have their own budget, reported once, before the first request's.
func TestGuestLogLimitAtStartUp(t *testing.T) {
	t.Parallel()
	bin := testguest.WAT(t, `(module
  (import "wasmserve" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 8000) "init line")
  (data (i32.const 8800) "\c8\00\00\00\00\00\00\00")
  (func (export "_initialize") (local $i i32)
    (loop $more
      (call $log (i32.const 0) (i32.const 8000) (i32.const 9))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 20)))))
  (func (export "wasmserve_abi_version") (result i32) (i32.const 1))
  (func (export "wasmserve_handle") (param i32) (result i64) (i64.const 0x0000226000000008)))`)
	var out logBuffer
	if _, err := handleOnce(t, bin, abi.KindHTTP, func(o *engine.Options) {
		o.LogLimit = engine.LogLimit{Lines: 5}
		o.Logger = slog.New(slog.NewTextHandler(&out, nil))
	}); err != nil {
		t.Fatal(err)
	}
	lines := out.Lines()
	if n := countContaining(lines, `msg="init line"`); n != 5 {
		t.Errorf("%d start-up records logged, want 5", n)
	}
	if n := countContaining(lines, "phase=start-up dropped_lines=15 dropped_bytes=135 guest_log_limit=\"5 lines\""); n != 1 {
		t.Errorf("%d start-up drop reports, want 1:\n%s", n, strings.Join(lines, "\n"))
	}
}

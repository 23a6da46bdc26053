//go:build !wasip1

// Package conformance runs one table of host ABI behaviours against every
// example guest, through the real wasmserve binary, so that ABI.md is tested
// as a contract whatever language a guest is written in.
//
// A guest opts in with a conformance.json next to its app.ini:
//
//	{"language": "c", "module": "hello.wasm", "abi2_module": "hello-abi2.wasm",
//	 "not_applicable": {"behaviour": "why"}}
//
// Every example implements the same routes (README.md, "Conformance suite"). A behaviour
// listed under not_applicable is reported as such, never skipped silently.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// Bounds for a loaded two-core machine running the race detector.
const (
	startTimeout   = 3 * time.Minute // compile (first run, no cache) and instantiate
	requestTimeout = 60 * time.Second
	logTimeout     = 30 * time.Second
	guestTimeout   = 2 * time.Second // request_timeout given to every guest
)

// manifest is a guest's conformance.json.
type manifest struct {
	Language      string            `json:"language"`
	Module        string            `json:"module"`
	ABI2Module    string            `json:"abi2_module"`
	NotApplicable map[string]string `json:"not_applicable"`
	// OutsideSuite, when set, says why the example serves no conformance
	// routes (it shows one feature, such as gateway-go's outbound calls,
	// and has its own tests); the suite names it and its reason.
	OutsideSuite string `json:"outside_suite"`
}

type guest struct {
	name string // example directory name
	dir  string
	m    manifest
}

// behaviour is one guarantee of the host, checked through one guest.
type behaviour struct {
	name string
	run  func(t *testing.T, s *server)
}

// behaviours run in order against one server per guest: those that replace
// instances come after the counter, and shutting_down is last.
var behaviours = []behaviour{
	{"hello", func(t *testing.T, s *server) {
		r := s.get(t, "/")
		r.want(t, 200, "hello, world")
		if ct := r.h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q, want text/plain; charset=utf-8", ct)
		}
	}},
	{"not_found", func(t *testing.T, s *server) {
		s.get(t, "/no/such/route").want(t, 404, "not found")
	}},
	{"outbound_denied_by_default", func(t *testing.T, s *server) {
		// ABI.md "Outbound calls": with no http.allow nothing is reachable;
		// the guest gets -10 and a message naming the URL and the key.
		r := s.get(t, "/fetch?url=http://127.0.0.2:9/x")
		if r.code != 502 || !strings.Contains(r.body, "http.allow") || !strings.Contains(r.body, "http://127.0.0.2:9/x") {
			t.Errorf("GET /fetch?url=http://127.0.0.2:9/x = %d %q, want 502 naming the URL and http.allow", r.code, r.body)
		}
	}},
	{"status_and_reason", func(t *testing.T, s *server) {
		for _, c := range []struct {
			code   int
			status string
		}{{201, "201 Created"}, {204, "204 No Content"}, {418, "418 I'm a teapot"}, {503, "503 Service Unavailable"}} {
			r := s.get(t, "/status/"+strconv.Itoa(c.code))
			r.want(t, c.code, "")
			if r.status != c.status {
				t.Errorf("status line %q, want %q", r.status, c.status)
			}
		}
	}},
	{"status_invalid", func(t *testing.T, s *server) {
		// ABI.md: an HTTP status outside 200–999, informational ones
		// included, is a bad_response fault answered with 500.
		// (103 and other informational codes are exercised by the engine
		// tests: a net/http handler's WriteHeader(103) is not final.)
		for _, code := range []string{"1000", "99", "101"} {
			s.get(t, "/status/"+code).want(t, 500, "guest failed: bad_response\n")
			s.logs.waitFor(t, func(r logRecord) bool {
				return r.Msg == "guest fault; replacing instance" && r.Kind == "bad_response" &&
					strings.Contains(r.Error, "response status "+code+" outside 200–999")
			}, "a bad_response fault record naming status "+code)
		}
		s.get(t, "/").want(t, 200, "hello, world")
	}},
	{"headers_multi_valued", func(t *testing.T, s *server) {
		r := s.get(t, "/headers")
		r.want(t, 200, "headers")
		if got := r.h.Values("X-Multi"); !slices.Equal(got, []string{"one", "two"}) {
			t.Errorf("X-Multi %q, want [one two]", got)
		}
	}},
	{"echo_request", func(t *testing.T, s *server) {
		h := http.Header{}
		h.Add("X-Test-One", "a")
		h.Add("X-Test-Multi", "1")
		h.Add("X-Test-Multi", "2, with comma")
		h.Add("X-Other", "not echoed")
		r := s.do(t, "PUT", "/echo?a=1&b=%20x&c", h, []byte("payload"))
		r.want(t, 200, "payload")
		for name, want := range map[string][]string{
			"X-Echo-Method": {"PUT"},
			"X-Echo-Path":   {"/echo"},
			"X-Echo-Query":  {"a=1&b=%20x&c"},
			"X-Test-One":    {"a"},
			"X-Test-Multi":  {"1", "2, with comma"},
			"X-Other":       nil,
		} {
			if got := r.h.Values(name); !slices.Equal(got, want) {
				t.Errorf("%s %q, want %q", name, got, want)
			}
		}
	}},
	{"echo_methods", func(t *testing.T, s *server) {
		for _, m := range []string{"GET", "POST", "DELETE", "PATCH", "OPTIONS"} {
			r := s.do(t, m, "/echo", nil, nil)
			r.want(t, 200, "")
			if got := r.h.Get("X-Echo-Method"); got != m {
				t.Errorf("X-Echo-Method %q, want %q", got, m)
			}
		}
	}},
	{"echo_binary_body", func(t *testing.T, s *server) {
		body := make([]byte, 512)
		for i := range body {
			body[i] = byte(i) // every byte value, NUL included, twice
		}
		s.do(t, "POST", "/echo", nil, body).wantBytes(t, 200, body)
	}},
	{"echo_empty_body", func(t *testing.T, s *server) {
		r := s.do(t, "POST", "/echo", nil, []byte{})
		r.want(t, 200, "")
		if r.h.Get("Content-Length") != "0" {
			t.Errorf("Content-Length %q, want 0", r.h.Get("Content-Length"))
		}
	}},
	{"echo_1mib_body", func(t *testing.T, s *server) {
		body := make([]byte, 1<<20)
		rand.New(rand.NewSource(1)).Read(body)
		for i := 0; i < 3; i++ { // buffers are reused across requests
			s.do(t, "POST", "/echo", nil, body).wantBytes(t, 200, body)
		}
		s.do(t, "POST", "/echo", nil, []byte("small after large")).want(t, 200, "small after large")
	}},
	{"config_present", func(t *testing.T, s *server) {
		s.get(t, "/config/greeting").want(t, 200, "hello, world")
	}},
	{"config_missing", func(t *testing.T, s *server) {
		s.get(t, "/config/no-such-key").want(t, 404, "missing")
	}},
	{"config_dotted_key", func(t *testing.T, s *server) {
		s.get(t, "/config/noodles.blah").want(t, 200, "one, two, three")
	}},
	{"log_levels", func(t *testing.T, s *server) {
		s.get(t, "/log").want(t, 200, "logged")
		for _, l := range []struct{ level, msg string }{
			{"DEBUG", "conformance debug"}, {"INFO", "conformance info"},
			{"WARN", "conformance warn"}, {"ERROR", "conformance error"},
		} {
			s.logs.waitFor(t, func(r logRecord) bool {
				return r.Msg == l.msg && r.Level == l.level && r.Worker != nil && r.Source == "guest"
			}, fmt.Sprintf("%s record %q with a worker id and source=guest", l.level, l.msg))
		}
	}},
	{"counter_per_instance", func(t *testing.T, s *server) {
		// Each instance keeps its own counter; the debug header names the
		// worker that served a request.
		last := map[string]int{}
		for i := 0; i < 8; i++ {
			r := s.get(t, "/counter")
			r.want(t, 200, r.body)
			n, err := strconv.Atoi(r.body)
			if err != nil {
				t.Fatalf("counter body %q is not a decimal number", r.body)
			}
			w := r.h.Get("X-Wasmserve-Worker")
			if n != last[w]+1 {
				t.Fatalf("worker %q counted %d after %d", w, n, last[w])
			}
			last[w] = n
		}
	}},
	{"trap_then_recovery", func(t *testing.T, s *server) {
		s.get(t, "/panic").want(t, 500, "guest failed: trap\n")
		s.logs.waitFor(t, func(r logRecord) bool {
			return r.Msg == "guest fault; replacing instance" && r.Kind == "trap"
		}, "a trap fault record")
		// Whatever the guest wrote to stderr while failing (a panic
		// message and its stack) is one record, logged before the fault.
		if n := s.logs.count(func(r logRecord) bool { return r.Stream == "stderr" }); n > 1 {
			t.Errorf("the failing call's stderr became %d records, want at most 1", n)
		}
		for i := 0; i < 4; i++ {
			s.get(t, "/").want(t, 200, "hello, world")
		}
	}},
	{"runaway_loop_timeout", func(t *testing.T, s *server) {
		start := time.Now()
		s.get(t, "/spin").want(t, 504, "guest exceeded request_timeout\n")
		if d := time.Since(start); d < guestTimeout {
			t.Errorf("504 after %v, before request_timeout of %v", d, guestTimeout)
		}
		for i := 0; i < 4; i++ {
			s.get(t, "/").want(t, 200, "hello, world")
		}
	}},
	{"memory_limit", func(t *testing.T, s *server) {
		s.get(t, "/grow").want(t, 500, "guest failed: memory_limit\n")
		for i := 0; i < 4; i++ {
			s.get(t, "/").want(t, 200, "hello, world")
		}
	}},
	{"kv_store", func(t *testing.T, s *server) {
		// The guest's /kv route runs the same script in every language on
		// the store "default" that writeINI configures (memory, values of
		// at most 16 bytes): set, get, incr, cas, exists, delete, a value
		// over the limit, a store that does not exist and its message.
		s.get(t, "/kv").want(t, 200, "get=v1 incr=4 cas=1,0 exists=1 delete=1 gone=-1 large=-5 nostore=-4 msg=ok")
	}},
	{"shutting_down", func(t *testing.T, s *server) {
		s.get(t, "/shutting-down").want(t, 200, "false")
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		s.logs.waitFor(t, func(r logRecord) bool { return strings.HasPrefix(r.Msg, "shutting down") }, "shutting down record")
		// The drain keeps serving; instances now see shutting_down() = 1.
		s.get(t, "/shutting-down").want(t, 200, "true")
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil { // SIGINT during the drain stops at once
			t.Fatal(err)
		}
		select {
		case <-s.exited:
		case <-time.After(requestTimeout):
			t.Fatal("server still running after a second SIGTERM")
		}
	}},
}

// abiMismatch is checked with its own server: a module declaring ABI version
// 2 is refused at start-up, before listening.
const abiMismatch = "abi_version_mismatch"

func TestConformance(t *testing.T) {
	gs := loadGuests(t)
	if len(gs) == 0 {
		t.Fatal("no guests/examples/*/conformance.json with an HTTP app.ini")
	}
	bin := testguest.Binary(t)
	for _, g := range gs {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			testguest.Example(t, g.name)
			na := 0
			applicable := func(t *testing.T, name string) bool {
				if why, ok := g.m.NotApplicable[name]; ok {
					t.Logf("not applicable: %s", why)
					na++
					return false
				}
				return true
			}
			t.Run(abiMismatch, func(t *testing.T) {
				if applicable(t, abiMismatch) {
					testABIMismatch(t, bin, g)
				}
			})
			t.Run(requestIsolation, func(t *testing.T) {
				if applicable(t, requestIsolation) {
					testRequestIsolation(t, bin, g)
				}
			})
			s := startServer(t, bin, g, g.m.Module)
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					if applicable(t, b.name) {
						b.run(t, s)
					}
				})
			}
			t.Logf("conformance %s (%s): %d behaviours, %d not applicable", g.name, g.m.Language, len(behaviours)+1, na)
		})
	}
}

func testABIMismatch(t *testing.T, bin string, g guest) {
	s := launch(t, bin, g, g.m.ABI2Module)
	select {
	case <-s.exited:
	case <-time.After(startTimeout):
		t.Fatalf("server with an ABI version 2 module still running after %v", startTimeout)
	}
	if s.exitCode == 0 {
		t.Errorf("exit code 0, want non-zero")
	}
	out := s.logs.text()
	if want := "guest declares ABI version 2, host implements version 1"; !strings.Contains(out, want) {
		t.Errorf("output does not contain %q:\n%s", want, out)
	}
	if s.logs.has(func(r logRecord) bool { return r.Msg == "listening" }) {
		t.Errorf("server listened before refusing the module:\n%s", out)
	}
}

// TestManifests checks that every example guest takes part in the suite and
// that its manifest names only known behaviours.
func TestManifests(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(testguest.Root(), "guests", "examples", "*", "Makefile"))
	known := map[string]bool{abiMismatch: true, requestIsolation: true}
	for _, b := range behaviours {
		known[b.name] = true
	}
	langs := map[string]bool{}
	for _, mk := range dirs {
		dir := filepath.Dir(mk)
		m, err := readManifest(dir)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(dir), err)
			continue
		}
		langs[m.Language] = true
		for b := range m.NotApplicable {
			if !known[b] {
				t.Errorf("%s: not_applicable names unknown behaviour %q", filepath.Base(dir), b)
			}
		}
	}
	for _, l := range []string{"go", "c", "rust", "assemblyscript", "wat"} {
		if !langs[l] {
			t.Errorf("no example guest in language %q", l)
		}
	}
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, "conformance.json"))
	if err != nil {
		return m, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("conformance.json: %w", err)
	}
	if m.Language == "" || m.Module == "" || m.ABI2Module == "" {
		return m, fmt.Errorf("conformance.json: language, module and abi2_module are required")
	}
	return m, nil
}

var httpFactory = regexp.MustCompile(`(?m)^\s*factory\s*=\s*http\s*$`)

func loadGuests(t testing.TB) []guest {
	files, err := filepath.Glob(filepath.Join(testguest.Root(), "guests", "examples", "*", "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gs []guest
	for _, f := range files {
		dir := filepath.Dir(f)
		ini, err := os.ReadFile(filepath.Join(dir, "app.ini"))
		if err != nil || !httpFactory.Match(ini) {
			continue
		}
		m, err := readManifest(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if m.OutsideSuite != "" {
			t.Logf("%s: outside the suite: %s", filepath.Base(dir), m.OutsideSuite)
			continue
		}
		gs = append(gs, guest{name: filepath.Base(dir), dir: dir, m: m})
	}
	return gs
}

// serverKeys replace the guest's own server settings, so that every guest
// runs under the same limits.
var serverKeys = []string{
	"workers = 2",
	"request_timeout = " + strconv.Itoa(int(guestTimeout/time.Second)) + " seconds",
	"max_memory = 16 MiB",
	"drain_time = 5 minutes",
	"stop_timeout = 1 second",
	"log.format = json",
	"compilation_cache = " + testguest.CacheDir(),
}

// appKVKeys replace the guest's own key-value stores: the kv_store
// behaviour runs on this one.
var appKVKeys = []string{
	"kv.default.backend = memory",
	"kv.default.max_value_size = 16",
}

// writeINI copies the guest's app.ini with serverKeys and extra (which
// wins over serverKeys) in its server section, appKVKeys in its app section and module as the app's
// factory, resolved against the guest's directory.
func writeINI(t testing.TB, g guest, module string, extra ...string) string {
	src, err := os.ReadFile(filepath.Join(g.dir, "app.ini"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	section := ""
	override := map[string]bool{}
	for _, kv := range serverKeys {
		override[strings.TrimSpace(strings.SplitN(kv, "=", 2)[0])] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") {
			section = strings.Trim(trim, "[]")
			out.WriteString(line + "\n")
			if strings.HasPrefix(section, "server:") {
				keys := slices.DeleteFunc(slices.Clone(serverKeys), func(kv string) bool {
					return overridden(extra, strings.TrimSpace(strings.SplitN(kv, "=", 2)[0]))
				})
				out.WriteString(strings.Join(append(keys, extra...), "\n") + "\n")
			}
			if strings.HasPrefix(section, "app:") {
				out.WriteString(strings.Join(appKVKeys, "\n") + "\n")
			}
			continue
		}
		key := strings.TrimSpace(strings.SplitN(trim, "=", 2)[0])
		switch {
		case strings.HasPrefix(section, "server:") && (override[key] || overridden(extra, key)):
			continue
		case strings.HasPrefix(section, "app:") && strings.HasPrefix(key, "kv."):
			continue
		case strings.HasPrefix(section, "app:") && key == "factory":
			line = "factory = " + filepath.Join(g.dir, module)
		}
		out.WriteString(line + "\n")
	}
	path := filepath.Join(t.TempDir(), "app.ini")
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type server struct {
	cmd      *exec.Cmd
	sock     string
	client   *http.Client
	logs     *logBuffer
	exited   chan struct{}
	exitCode int
}

// launch starts wasmserve for module on a unix socket, with --debug so that
// DEBUG records and the X-Wasmserve-Worker header are on.
func launch(t testing.TB, bin string, g guest, module string, extra ...string) *server {
	dir, err := os.MkdirTemp("", "wsconf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &server{sock: filepath.Join(dir, "s.sock"), logs: newLogBuffer(), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--debug", "--bind", "unix:"+s.sock, writeINI(t, g, module, extra...))
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.exitCode = s.cmd.ProcessState.ExitCode()
		s.logs.Write(nil)
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", g.name, s.logs.text())
		}
	})
	s.client = &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", s.sock)
			},
			DisableCompression: true,
		},
	}
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

func startServer(t testing.TB, bin string, g guest, module string, extra ...string) *server {
	s := launch(t, bin, g, module, extra...)
	deadline := time.After(startTimeout)
	for {
		ch := s.logs.changed()
		if s.logs.has(func(r logRecord) bool { return r.Msg == "serving" }) {
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("%s exited with code %d before serving:\n%s", g.name, s.exitCode, s.logs.text())
		case <-deadline:
			t.Fatalf("%s not serving after %v:\n%s", g.name, startTimeout, s.logs.text())
		case <-ch:
		}
	}
}

type response struct {
	code   int
	status string
	h      http.Header
	body   string
}

func (s *server) get(t *testing.T, path string) response {
	t.Helper()
	return s.do(t, "GET", path, nil, nil)
}

func (s *server) do(t *testing.T, method, path string, h http.Header, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://guest"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, status: resp.Status, h: resp.Header, body: string(b)}
}

func (r response) want(t *testing.T, code int, body string) {
	t.Helper()
	if r.code != code || r.body != body {
		t.Fatalf("got %d %q, want %d %q", r.code, clip(r.body), code, clip(body))
	}
}

func (r response) wantBytes(t *testing.T, code int, body []byte) {
	t.Helper()
	if r.code != code || r.body != string(body) {
		t.Fatalf("got %d with a %d-byte body, want %d with the %d bytes sent (equal: %v)",
			r.code, len(r.body), code, len(body), r.body == string(body))
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// logRecord is the part of a JSON log record the suite reads.
type logRecord struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Worker *int   `json:"worker"`
	Kind   string `json:"kind"`
	Error  string `json:"error"`
	Source string `json:"source"`
	Stream string `json:"stream"`
}

// logBuffer collects the server's output and wakes waiters on every write.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{wake: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.wake)
	b.wake = make(chan struct{})
	return len(p), nil
}

// changed returns a channel closed at the next write.
func (b *logBuffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wake
}

func (b *logBuffer) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) has(match func(logRecord) bool) bool {
	for _, line := range strings.Split(b.text(), "\n") {
		var r logRecord
		if json.Unmarshal([]byte(line), &r) == nil && match(r) {
			return true
		}
	}
	return false
}

// count returns how many records match.
func (b *logBuffer) count(match func(logRecord) bool) int {
	n := 0
	for _, line := range strings.Split(b.text(), "\n") {
		var r logRecord
		if json.Unmarshal([]byte(line), &r) == nil && match(r) {
			n++
		}
	}
	return n
}

// waitFor waits until a record matches, failing after logTimeout.
func (b *logBuffer) waitFor(t *testing.T, match func(logRecord) bool, what string) {
	t.Helper()
	deadline := time.After(logTimeout)
	for {
		ch := b.changed()
		if b.has(match) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s in the server log after %v", what, logTimeout)
		}
	}
}

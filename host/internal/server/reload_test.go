package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// newAnswerBound is how soon after a file change the new generation must
// answer. It is a liveness bound, not a latency figure: a cold compile of
// hello-go (net/http linked, instrumented) beside the rest of the suite
// under -race on two cores has taken over 15 s.
const newAnswerBound = waitTimeout

// buildB is a second module to swap with hello-go: it answers "build-B"
// to every request, whatever the config says.
const buildB = `(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00build-B")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64) i64.const 0x4000000000F))`

// reloadProc is a wasmserve process serving a module and INI of its own,
// in a private directory, on 127.0.0.1.
type reloadProc struct {
	*proc
	dir, ini, mod string
	url, admin    string
	client        *http.Client
}

// reloadINI returns an INI for module with the given greeting and extra
// server keys.
func reloadINI(module, greeting, server string) string {
	return fmt.Sprintf("[server:main]\nfactory = http\nbind = 127.0.0.1:0\nworkers = 2\ndrain_time = 0 seconds\n"+
		"access_log = false\ncompilation_cache = %s\n%s\n[app:main]\nfactory = %s\ngreeting = %s\n",
		testguest.CacheDir(), server, module, greeting)
}

// startReload writes module's bytes to dir/app.wasm and an INI naming it
// to dir/app.ini, unless setup already laid the directory out, and starts
// wasmserve with args.
func startReload(t *testing.T, module []byte, greeting, server string, env []string, args ...string) *reloadProc {
	t.Helper()
	dir := t.TempDir()
	p := &reloadProc{dir: dir, ini: filepath.Join(dir, "app.ini"), mod: filepath.Join(dir, "app.wasm")}
	writeFile(t, p.mod, module)
	writeFile(t, p.ini, []byte(reloadINI("app.wasm", greeting, server)))
	p.start(t, env, args...)
	return p
}

func (p *reloadProc) start(t *testing.T, env []string, args ...string) {
	t.Helper()
	p.proc = wasmserve(t, p.ini, env, nil, args...)
	p.log.waitFor(t, startTimeout, 1, "msg=listening")
	m := regexp.MustCompile(`msg=listening address=(\S+)`).FindStringSubmatch(p.log.String())
	if m == nil {
		t.Fatalf("no listening address in the log:\n%s", p.log.String())
	}
	p.url = "http://" + m[1]
	p.log.waitFor(t, startTimeout, 1, "msg=serving")
	if m := regexp.MustCompile(`msg="admin listening" address=(\S+)`).FindStringSubmatch(p.log.String()); m != nil {
		p.admin = "http://" + m[1]
	}
	p.client = &http.Client{Timeout: waitTimeout}
	t.Cleanup(p.client.CloseIdleConnections)
}

// get returns the status, body and headers of GET path, failing the test
// on a transport error.
func (p *reloadProc) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := p.client.Get(p.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// waitAnswer polls GET / until it answers want and returns how long that
// took; every answer before must be 200 from one of allowed.
func (p *reloadProc) waitAnswer(t *testing.T, want string, allowed ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, body, _ := p.get(t, "/")
		if code == 200 && body == want {
			return time.Since(start)
		}
		if code != 200 || !contains(allowed, body) {
			t.Fatalf("GET / = %d %q while waiting for %q", code, body, want)
		}
		if time.Since(start) > newAnswerBound {
			t.Fatalf("GET / still answers %q %s after a change; want %q", body, newAnswerBound, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver writes data beside path and renames it over path.
func renameOver(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// helloGo returns the bytes of the hello-go example, built from source.
func helloGo(t *testing.T) []byte {
	return readFile(t, testguest.Module(t, "hello-go", "hello.wasm"))
}

// TestReloadTriggers makes each kind of file change that deployments make
// while wasmserve runs with --reload, then a second, marker change to the
// INI: the first change's answer appears, then the marker's, after exactly
// two reloads, so each change made exactly one.
func TestReloadTriggers(t *testing.T) {
	t.Parallel()
	hello, b := helloGo(t), testguest.WAT(t, buildB)
	cases := []struct {
		name  string
		start []byte // module at start
		// change makes the change and returns the answer it leads to.
		change func(t *testing.T, p *reloadProc) string
	}{
		{"module written in place in many writes", b, func(t *testing.T, p *reloadProc) string {
			f, err := os.OpenFile(p.mod, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for rest := hello; len(rest) > 0; {
				n := min(len(rest), 64<<10)
				if _, err := f.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			return "A"
		}},
		{"module renamed over", hello, func(t *testing.T, p *reloadProc) string {
			renameOver(t, p.mod, b)
			return "build-B"
		}},
		{"module deleted and created", hello, func(t *testing.T, p *reloadProc) string {
			if err := os.Remove(p.mod); err != nil {
				t.Fatal(err)
			}
			writeFile(t, p.mod, b)
			return "build-B"
		}},
		{"ini edited by sed -i", hello, func(t *testing.T, p *reloadProc) string {
			out, err := exec.Command("sed", "-i", "s/^greeting = A$/greeting = sed/", p.ini).CombinedOutput()
			if err != nil {
				t.Fatalf("sed: %v\n%s", err, out)
			}
			return "sed"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startReload(t, tc.start, "A", "", nil, "--reload")
			first := "A"
			if string(tc.start) == string(b) {
				first = "build-B"
			}
			p.waitAnswer(t, first)
			p.log.waitFor(t, waitTimeout, 1, `msg="watching for changes"`)
			want := tc.change(t, p)
			p.waitAnswer(t, want, first)
			p.expectOneReloadEach(t, want)
		})
	}
	t.Run("configmap symlink swap", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		mod := filepath.Join(dir, "app.wasm")
		writeFile(t, mod, hello)
		cm := filepath.Join(dir, "config")
		configMapVersion(t, cm, "v1", reloadINI(mod, "A", ""))
		p := &reloadProc{dir: dir, ini: filepath.Join(cm, "app.ini"), mod: mod}
		p.start(t, nil, "--reload")
		p.waitAnswer(t, "A")
		p.log.waitFor(t, waitTimeout, 1, `msg="watching for changes"`)
		configMapVersion(t, cm, "v2", reloadINI(mod, "swapped", ""))
		p.waitAnswer(t, "swapped", "A")
		// The marker change is the next ConfigMap version.
		configMapVersion(t, cm, "v3", reloadINI(mod, "marker", ""))
		p.waitAnswer(t, "marker", "swapped")
		p.expectReloads(t, 2)
	})
}

// expectOneReloadEach makes a marker change, waits for its answer and
// checks that the change before it and the marker made one successful
// reload each. The marker is a new greeting in the INI, or, when build-B
// (which ignores the greeting) serves, hello-go renamed over the module.
func (p *reloadProc) expectOneReloadEach(t *testing.T, before string) {
	t.Helper()
	want := "marker"
	if before == "build-B" {
		want = "A"
		renameOver(t, p.mod, helloGo(t))
	} else {
		ini := string(readFile(t, p.ini))
		marked := regexp.MustCompile(`(?m)^greeting = .*$`).ReplaceAllString(ini, "greeting = marker")
		renameOver(t, p.ini, []byte(marked))
	}
	p.waitAnswer(t, want, before)
	p.expectReloads(t, 2)
}

// expectReloads checks that n reloads started and succeeded, none failed.
func (p *reloadProc) expectReloads(t *testing.T, n int) {
	t.Helper()
	p.log.waitFor(t, waitTimeout, n, `msg="reload succeeded"`)
	if got, ok, failed := p.log.count(`msg="reload starting"`), p.log.count(`msg="reload succeeded"`), p.log.count(`msg="reload failed`); got != n || ok != n || failed != 0 {
		t.Fatalf("%d reloads started, %d succeeded, %d failed; want %d, %d, 0", got, ok, failed, n, n)
	}
}

// configMapVersion lays out dir as Kubernetes mounts a ConfigMap with one
// key, app.ini: app.ini is a symlink to ..data/app.ini, and ..data a
// symlink, swapped atomically for each version, to a timestamped
// directory.
func configMapVersion(t *testing.T, dir, version, ini string) {
	t.Helper()
	v := "..2026_11_25_" + version
	if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, v, "app.ini"), []byte(ini))
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		if err := os.Symlink("..data/app.ini", filepath.Join(dir, "app.ini")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(v, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		os.RemoveAll(filepath.Join(dir, old))
	}
}

// TestReloadSIGHUP reloads a server running without --reload on SIGHUP:
// the app config change reaches the guest, server section changes are
// logged and ignored, systemd hears RELOADING=1 then READY=1, a missing
// module fails the reload while the old generation serves, and no file is
// watched.
func TestReloadSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	p := startReload(t, helloGo(t), "before", "", []string{"NOTIFY_SOCKET=" + notifyPath}, "--debug")
	readStates(t, notify, func(s []string) bool { return count(s, "READY=1") == 1 })

	ini := strings.Replace(string(readFile(t, p.ini)), "greeting = before", "greeting = after\nextra = 42", 1)
	ini = strings.Replace(ini, "bind = 127.0.0.1:0", "bind = 127.0.0.1:1", 1)
	ini = strings.Replace(ini, "workers = 2", "workers = 3", 1)
	renameOver(t, p.ini, []byte(ini))
	if _, body, _ := p.get(t, "/"); body != "before" {
		t.Fatalf("before SIGHUP / answered %q", body)
	}
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload succeeded"`)
	if _, body, h := p.get(t, "/"); body != "after" || h.Get("X-Wasmserve-Generation") != "2" {
		t.Errorf("after SIGHUP / answered %q from generation %q; want \"after\" from 2", body, h.Get("X-Wasmserve-Generation"))
	}
	if _, body, _ := p.get(t, "/config/extra"); body != "42" {
		t.Errorf("new app config key: %q, want 42", body)
	}
	if _, body, _ := p.get(t, "/generation"); body != "2" {
		t.Errorf("guest generation %q, want 2", body)
	}
	if p.log.count("ignored until restart", "keys=", "bind", "workers") != 1 {
		t.Errorf("no warning naming the changed server keys bind and workers")
	}
	if n := p.log.count("msg=\"workers ready\"", "generation=2", "workers=2"); n != 1 {
		t.Errorf("generation 2 did not keep workers = 2 (server section half-applied?)")
	}
	got := readStates(t, notify, func(s []string) bool { return count(s, "READY=1") == 1 })
	if len(got) != 2 || !strings.HasPrefix(got[0], "RELOADING=1\nMONOTONIC_USEC=") || got[1] != "READY=1" {
		t.Errorf("sd_notify around the reload: %q, want RELOADING=1 with MONOTONIC_USEC, then READY=1", got)
	}

	// A module that has disappeared fails the reload; the old one serves.
	good := readFile(t, p.mod)
	if err := os.Remove(p.mod); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload failed`)
	if p.log.count(`msg="reload failed`, `step="read config"`, "file="+p.ini, p.mod, "no such file") != 1 {
		t.Errorf("reload failure not logged with its step, file and cause:\n%s", p.log.String())
	}
	for range 5 {
		if code, body, h := p.get(t, "/"); code != 200 || body != "after" || h.Get("X-Wasmserve-Generation") != "2" {
			t.Fatalf("after a failed reload: %d %q from generation %q", code, body, h.Get("X-Wasmserve-Generation"))
		}
	}
	writeFile(t, p.mod, good)
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 2, `msg="reload succeeded"`)
	if _, body, _ := p.get(t, "/generation"); body != "3" {
		t.Errorf("generation after a failed and a good reload: %q, want 3 (failures don't count)", body)
	}
	if p.log.count(`msg="watching for changes"`) != 0 {
		t.Error("files watched without --reload")
	}
}

// TestReloadFollowsModulePath switches the INI to another module file:
// the watch moves to it, and the old file no longer matters.
func TestReloadFollowsModulePath(t *testing.T) {
	t.Parallel()
	hello := helloGo(t)
	p := startReload(t, hello, "A", "", nil, "--reload")
	p.log.waitFor(t, waitTimeout, 1, `msg="watching for changes"`)
	other := filepath.Join(p.dir, "other.wasm")
	writeFile(t, other, testguest.WAT(t, buildB))
	renameOver(t, p.ini, []byte(reloadINI("other.wasm", "A", "")))
	p.waitAnswer(t, "build-B", "A")
	p.log.waitFor(t, waitTimeout, 2, `msg="watching for changes"`)
	renameOver(t, p.mod, testguest.WAT(t, buildB)) // no longer served: no reload
	renameOver(t, other, hello)
	p.waitAnswer(t, "A", "build-B")
	p.expectReloads(t, 2)
}

// TestReloadFiftyBounded reloads 50 times in a row: every previous
// generation is closed (its instances and wazero runtime), the serving
// generation has exactly `workers` instances, and the process's resident
// memory, memory mappings (wazero maps compiled code per runtime) and
// goroutines stay bounded.
func TestReloadFiftyBounded(t *testing.T) {
	t.Parallel()
	p := startReload(t, helloGo(t), "x", "admin.bind = 127.0.0.1:0", nil)
	if p.admin == "" {
		t.Fatal("no admin listener in the log")
	}
	pid := p.cmd.Process.Pid
	goroutines := func(i int) int {
		p.signal(t, syscall.SIGUSR1)
		p.log.waitFor(t, waitTimeout, i, "SIGUSR1: goroutine stacks")
		all := regexp.MustCompile(`SIGUSR1: goroutine stacks" goroutines=(\d+)`).FindAllStringSubmatch(p.log.String(), -1)
		n, _ := strconv.Atoi(all[len(all)-1][1])
		return n
	}
	type usage struct{ rss, maps, goroutines int }
	measure := func(i int) usage {
		u := usage{maps: procMaps(t, pid), goroutines: goroutines(i)}
		u.rss = procRSS(t, pid)
		return u
	}
	var base usage
	for i := 1; i <= 50; i++ {
		p.signal(t, syscall.SIGHUP)
		p.log.waitFor(t, waitTimeout, i, `msg="reload succeeded"`)
		if i == 10 {
			p.log.waitFor(t, waitTimeout, i, `msg="previous generation closed"`)
			base = measure(1)
		}
	}
	p.log.waitFor(t, waitTimeout, 50, `msg="previous generation closed"`)
	if n := p.log.count(`msg="reload failed`); n != 0 {
		t.Fatalf("%d reloads failed", n)
	}
	if _, body, _ := p.get(t, "/generation"); body != "51" {
		t.Fatalf("after 50 reloads the guest reports generation %q, want 51", body)
	}
	metrics := get(t, p.admin+"/metrics")
	instances := 0
	for _, m := range regexp.MustCompile(`(?m)^wasmserve_instances\{state="\w+"\} (\d+)$`).FindAllStringSubmatch(metrics, -1) {
		n, _ := strconv.Atoi(m[1])
		instances += n
	}
	if instances != 2 {
		t.Errorf("serving generation has %d instances, want workers = 2", instances)
	}
	if !strings.Contains(metrics, "\nwasmserve_generation 51\n") || !strings.Contains(metrics, `wasmserve_reloads_total{result="success"} 50`) {
		t.Errorf("metrics lack generation 51 and 50 successful reloads")
	}
	end := measure(2)
	t.Logf("after 10 reloads: %+v; after 50: %+v", base, end)
	// A leaked generation of this guest holds at least its 10 MiB module:
	// 40 of them would far exceed this bound (leaked compiled code or
	// instance memory shows in the mappings count below). What stays below it is the Go heap
	// settling at the peak of two generations alive at once (the old one
	// draining while the new one compiles), which the runtime keeps mapped
	// for a while after it is freed.
	if grown := end.rss - base.rss; grown > 128<<20 {
		t.Errorf("RSS grew by %d MiB over 40 reloads", grown>>20)
	}
	if grown := end.maps - base.maps; grown > 40 {
		t.Errorf("memory mappings grew by %d over 40 reloads (%d to %d)", grown, base.maps, end.maps)
	}
	if grown := end.goroutines - base.goroutines; grown > 10 {
		t.Errorf("goroutines grew by %d over 40 reloads (%d to %d)", grown, base.goroutines, end.goroutines)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: waitTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// procRSS returns the resident set size of process pid, in bytes.
func procRSS(t *testing.T, pid int) int {
	t.Helper()
	for _, l := range strings.Split(string(readFile(t, fmt.Sprintf("/proc/%d/status", pid))), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// procMaps returns the number of memory mappings of process pid.
func procMaps(t *testing.T, pid int) int {
	t.Helper()
	return strings.Count(string(readFile(t, fmt.Sprintf("/proc/%d/maps", pid))), "\n")
}

// TestReloadLatency measures the time from a file change to the first
// response from the new module, with --reload (so including the watcher's
// quiet period): the Go example compiled without and with the compilation
// cache, and a small WAT guest. Figures are logged (go test -v), not
// asserted beyond the new-answer bound.
func TestReloadLatency(t *testing.T) {
	t.Parallel()
	hello, b := helloGo(t), testguest.WAT(t, buildB)
	cache := t.TempDir() // empty: the first compile of hello-go is cold
	dir := t.TempDir()
	p := &reloadProc{dir: dir, ini: filepath.Join(dir, "app.ini"), mod: filepath.Join(dir, "app.wasm")}
	writeFile(t, p.mod, b)
	writeFile(t, p.ini, []byte(strings.Replace(reloadINI("app.wasm", "A", ""), testguest.CacheDir(), cache, 1)))
	p.start(t, nil, "--reload")
	p.log.waitFor(t, waitTimeout, 1, `msg="watching for changes"`)
	p.waitAnswer(t, "build-B")
	swap := func(n int, data []byte, want, was string) (time.Duration, string) {
		renameOver(t, p.mod, data)
		d := p.waitAnswer(t, want, was)
		p.log.waitFor(t, waitTimeout, n, `msg="reload succeeded"`)
		lines := regexp.MustCompile(`msg="reload succeeded".* compile_time=(\S+) cache_hit=(\S+)`).FindAllStringSubmatch(p.log.String(), -1)
		l := lines[len(lines)-1]
		return d, "compile_time=" + l[1] + " cache_hit=" + l[2]
	}
	cold, coldInfo := swap(1, hello, "A", "build-B")
	t.Logf("write to first response, hello-go, cold cache: %v (%s)", cold.Round(time.Millisecond), coldInfo)
	for i := 0; i < 3; i++ {
		wat, watInfo := swap(2+2*i, b, "build-B", "A")
		t.Logf("write to first response, WAT guest: %v (%s)", wat.Round(time.Millisecond), watInfo)
		warm, warmInfo := swap(3+2*i, hello, "A", "build-B")
		t.Logf("write to first response, hello-go, warm cache: %v (%s)", warm.Round(time.Millisecond), warmInfo)
	}
	t.Logf("watcher quiet period included in each figure: %v", 300*time.Millisecond)
}

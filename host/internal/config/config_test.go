package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the current results")

// testEnv is the environment golden files see.
var testEnv = map[string]string{
	"HOME":           "/home/app",
	"XDG_CACHE_HOME": "/cache",
	"APP_PORT":       "8080",
	"EMPTY":          "",
}

func lookupTestEnv(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }

// TestGolden runs testdata/*.txt. Each file is an INI file, a line
// "-- want --", and the error Parse returns or a dump of the Config.
// Leading comment lines set options:
//
//	# bind: ADDR     Options.Bind
//	# set: KEY=VALUE Options.Set (a flag)
//	# env: NAME=VAL  an environment variable
//	# default: K=V   Options.Defaults
//	# server: NAME   Options.ServerName
//	# app: NAME      Options.AppName
//	# dump: all      dump every server key, not only those off their default
//
// The file is parsed as "app.ini" in this directory; the directory's
// absolute path appears as $WD in the results.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ini, want, ok := strings.Cut(string(data), "-- want --\n")
			if !ok {
				t.Fatal(`no "-- want --" line`)
			}
			env := map[string]string{}
			opts := Options{LookupEnv: func(k string) (string, bool) {
				if v, ok := env[k]; ok {
					return v, true
				}
				return lookupTestEnv(k)
			}}
			all := false
			for line := range strings.Lines(ini) {
				name, value, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), ": ")
				if !strings.HasPrefix(line, "# ") || !ok {
					break
				}
				switch name {
				case "bind":
					opts.Bind = value
				case "set": // KEY=VALUE, as a flag sets it
					k, v, _ := strings.Cut(value, "=")
					if opts.Set == nil {
						opts.Set = map[string]string{}
					}
					opts.Set[k] = v
				case "default": // KEY=VALUE, Options.Defaults (--reload's drain_time)
					k, v, _ := strings.Cut(value, "=")
					if opts.Defaults == nil {
						opts.Defaults = map[string]string{}
					}
					opts.Defaults[k] = v
				case "env": // NAME=VALUE, added to the environment
					k, v, _ := strings.Cut(value, "=")
					env[k] = v
				case "server":
					opts.ServerName = value
				case "app":
					opts.AppName = value
				case "dump":
					all = value == "all"
				}
			}
			var got string
			if c, err := Parse("app.ini", []byte(ini), opts); err != nil {
				got = err.Error()
			} else {
				got = dump(c, all)
			}
			got = strings.ReplaceAll(got, wd, "$WD")
			if *update {
				if err := os.WriteFile(file, []byte(ini+"-- want --\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want = strings.TrimSuffix(want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// dump renders c one key per line: the server keys that are off their
// default (or all of them), then the app section.
func dump(c *Config, all bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[server:%s]\n", c.ServerName)
	for _, k := range serverKeys {
		v := k.format(&c.Server)
		def := ""
		if k.Default != "" {
			var d Server
			if err := k.set(&d, k.Default); err != nil {
				panic(err)
			}
			def = k.format(&d)
		}
		if all || v != def {
			fmt.Fprintln(&b, strings.TrimSpace(k.Name+" = "+v))
		}
	}
	fmt.Fprintf(&b, "[app:%s]\nmodule = %s\n", c.AppName, c.App.Module)
	for _, m := range c.App.WASI.Dirs {
		fmt.Fprintf(&b, "wasi dir %s -> %s\n", m.Host, m.Guest)
	}
	for _, name := range c.App.WASI.Env {
		fmt.Fprintf(&b, "wasi env %s\n", name)
	}
	for _, kv := range c.App.Values {
		fmt.Fprintf(&b, "value %s = %q\n", kv.Key, kv.Value)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func parseServer(t *testing.T, keys string, opts Options) Server {
	t.Helper()
	c, err := Parse("app.ini", []byte("[server:main]\nfactory = http\n"+keys+"\n[app:main]\nfactory = testdata/guest.module\n"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c.Server
}

func TestComputedDefaults(t *testing.T) {
	t.Parallel()
	procs := max(2, runtime.GOMAXPROCS(0))
	tests := []struct {
		name, keys      string
		workers, maxCon int
	}{
		{"defaults", "", procs, max(100, procs)},
		{"workers", "workers = 3", 3, 100},
		{"many workers", "workers = 300", 300, 300},
		{"max_concurrency caps default workers", "max_concurrency = 1", 1, 1},
		{"both", "workers = 4\nmax_concurrency = 4", 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := parseServer(t, tt.keys, Options{LookupEnv: lookupTestEnv})
			if s.Workers != tt.workers || s.MaxConcurrency != tt.maxCon {
				t.Errorf("workers, max_concurrency = %d, %d; want %d, %d", s.Workers, s.MaxConcurrency, tt.workers, tt.maxCon)
			}
		})
	}
}

func TestCompilationCacheDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"XDG_CACHE_HOME", map[string]string{"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/wasmserve"},
		{"relative XDG_CACHE_HOME is ignored", map[string]string{"XDG_CACHE_HOME": "xdg", "HOME": "/home/u"}, "/home/u/.cache/wasmserve"},
		{"HOME", map[string]string{"HOME": "/home/u"}, "/home/u/.cache/wasmserve"},
		{"neither", nil, filepath.Join(os.TempDir(), fmt.Sprintf("wasmserve-%d", os.Getuid()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if got := parseServer(t, "", Options{LookupEnv: lookup}).CompilationCache; got != tt.want {
				t.Errorf("CompilationCache = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRestartKeys(t *testing.T) {
	t.Parallel()
	opts := Options{LookupEnv: lookupTestEnv}
	base := parseServer(t, "workers = 2", opts)
	tests := []struct {
		name, keys string
		want       []string
	}{
		{"same", "workers = 2", nil},
		{"same value written differently", "workers = 2\nrequest_timeout = 30s\nmax_memory = 65536 KiB", nil},
		{"changed", "workers = 3\nbind = :8000\nadmin.pprof = yes\nlog.format = json", []string{"admin.pprof", "bind", "log.format", "workers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := base.RestartKeys(parseServer(t, tt.keys, opts)); !slices.Equal(got, tt.want) {
				t.Errorf("RestartKeys = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ini string
		kind      error
	}{
		{"syntax", "[server:main\n", ErrSyntax},
		{"no section", "[app:main]\nfactory = testdata/guest.module\n", ErrNoSection},
		{"unknown key", "[server:main]\nfactory = http\nfoo = 1\n[app:main]\nfactory = testdata/guest.module\n", ErrUnknownKey},
		{"missing key", "[server:main]\n[app:main]\nfactory = testdata/guest.module\n", ErrMissingKey},
		{"module missing", "[server:main]\nfactory = http\n[app:main]\nfactory = nope.wasm\n", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("app.ini", []byte(tt.ini), Options{LookupEnv: lookupTestEnv})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tt.kind) {
				t.Fatalf("Parse error = %v, want an *Error wrapping %v", err, tt.kind)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	module := filepath.Join(dir, "app.wasm")
	ini := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(module, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ini, []byte("[server:main]\nfactory = thrift\ncompilation_cache = cache\n[app:main]\nfactory = app.wasm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(ini, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.File != ini || c.App.Module != module || c.Server.CompilationCache != filepath.Join(dir, "cache") {
		t.Errorf("Load = File %q, Module %q, CompilationCache %q", c.File, c.App.Module, c.Server.CompilationCache)
	}
	if _, err := Load(filepath.Join(dir, "nope.ini"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing file) = %v, want os.ErrNotExist", err)
	}
}

func TestKnownServerKeys(t *testing.T) {
	t.Parallel()
	names := KnownServerKeys()
	if len(names) != len(ServerKeys()) || !slices.Contains(names, "max_concurrency") || !slices.Contains(names, "monitoring.gc.stats") {
		t.Errorf("KnownServerKeys() = %q", names)
	}
	seen := map[string]bool{}
	for _, k := range ServerKeys() {
		if seen[k.Name] || k.Name != strings.ToLower(k.Name) || k.Doc == "" {
			t.Errorf("key %q: duplicate, not lower-case, or undocumented", k.Name)
		}
		seen[k.Name] = true
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"max_concurency":   "max_concurrency",
		"wrokers":          "workers",
		"bnd":              "bind",
		"max_req":          "max_requests",
		"admin":            "admin.bind",
		"keepalive_time":   "keepalive",
		"frobnicate":       "",
		"ab":               "",
		"timeout":          "",
		"graceful_timeout": "",
	}
	for name, want := range tests {
		if got := suggest(name); got != want {
			t.Errorf("suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

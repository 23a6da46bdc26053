// Package config reads a wasmserve INI file into a typed, validated Config.
//
// The file follows baseplate-serve: [server:NAME] and [app:NAME] sections,
// [DEFAULT] merged into both, keys case-insensitive, $VAR and ${VAR]
// expanded from the environment (unknown variables stay as written), no
// %(name)s interpolation and no inline comments. Every error names the
// file, the line, the section, the key and the bad value.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"gopkg.in/ini.v1"
)

// Options select the sections to read and override values.
type Options struct {
	ServerName string // default "main"
	AppName    string // default "main"
	// Bind, when set, replaces [server] bind (the --bind flag).
	Bind string
	// LookupEnv expands $VAR; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Config is a validated configuration.
type Config struct {
	File       string // the path as given
	ServerName string
	AppName    string
	Server     Server
	App        App
}

// App is the validated [app:NAME] section.
type App struct {
	// Module is the absolute path of the guest module (factory).
	Module string
	// Values is every key except factory, in file order ([DEFAULT] keys
	// first), with environment variables expanded.
	Values []KV
	WASI   WASI
}

// KV is one config key and value.
type KV struct{ Key, Value string }

// WASI are the capabilities the app section grants the guest.
type WASI struct {
	Dirs []Mount  // wasi.dir: read-only preopened directories
	Env  []string // wasi.env: names of host environment variables passed through
}

// Mount is a host directory visible to the guest.
type Mount struct{ Host, Guest string }

// Get returns the value of key and whether it is set.
func (a App) Get(key string) (string, bool) {
	for _, kv := range a.Values {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Error is a configuration error.
type Error struct {
	File    string
	Line    int    // 0 when not tied to a line
	Section string // e.g. "server:main"
	Key     string
	Value   string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Section != "" {
		fmt.Fprintf(&b, "[%s] ", e.Section)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s = %q: ", e.Key, e.Value)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and validates the file at path.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse validates data as the contents of filename. Relative paths in it
// resolve against filename's directory.
func Parse(filename string, data []byte, opts Options) (*Config, error) {
	if opts.ServerName == "" {
		opts.ServerName = "main"
	}
	if opts.AppName == "" {
		opts.AppName = "main"
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	scan, err := prescan(filename, data)
	if err != nil {
		return nil, err
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		InsensitiveKeys:         true,
		IgnoreInlineComment:     true,
		IgnoreContinuation:      true,
		PreserveSurroundedQuote: true,
		KeyValueDelimiters:      "=:",
		ChildSectionDelimiter:   "\x00",
	}, data)
	if err != nil {
		return nil, &Error{File: filename, Err: fmt.Errorf("syntax error: %w", err)}
	}
	p := &parser{file: filename, f: f, scan: scan, env: opts.LookupEnv}
	cfg := &Config{File: filename, ServerName: opts.ServerName, AppName: opts.AppName}
	if cfg.Server, err = p.server("server:"+opts.ServerName, opts.Bind); err != nil {
		return nil, err
	}
	if cfg.App, err = p.app("app:" + opts.AppName); err != nil {
		return nil, err
	}
	if cfg.Server.Metrics.Endpoint == "" {
		if v, ok := cfg.App.Get("metrics.endpoint"); ok {
			cfg.Server.Metrics.Endpoint = v
		}
	}
	if cfg.Server.Metrics.Namespace == "" {
		if v, ok := cfg.App.Get("metrics.namespace"); ok {
			cfg.Server.Metrics.Namespace = v
		}
	}
	return cfg, nil
}

type parser struct {
	file string
	f    *ini.File
	scan *scan
	env  func(string) (string, bool)
}

// values returns the section's keys merged over [DEFAULT], in order, and
// the set of keys written in the section itself.
func (p *parser) values(name string) ([]KV, map[string]bool, error) {
	sec, err := p.f.GetSection(name)
	if err != nil {
		var have []string
		for _, s := range p.scan.sections {
			if s != ini.DefaultSection {
				have = append(have, "["+s+"]")
			}
		}
		return nil, nil, &Error{File: p.file, Err: fmt.Errorf("no [%s] section (sections: %s)", name, strings.Join(have, ", "))}
	}
	own := map[string]bool{}
	var out []KV
	idx := map[string]int{}
	add := func(k *ini.Key) {
		kv := KV{Key: k.Name(), Value: expandEnv(k.Value(), p.env)}
		if i, ok := idx[kv.Key]; ok {
			out[i] = kv
			return
		}
		idx[kv.Key] = len(out)
		out = append(out, kv)
	}
	if def, err := p.f.GetSection(ini.DefaultSection); err == nil && name != ini.DefaultSection {
		for _, k := range def.Keys() {
			add(k)
		}
	}
	for _, k := range sec.Keys() {
		own[k.Name()] = true
		add(k)
	}
	return out, own, nil
}

func (p *parser) errAt(section, key, value string, err error) *Error {
	return &Error{File: p.file, Line: p.scan.line(section, key), Section: section, Key: key, Value: value, Err: err}
}

func (p *parser) server(name, bind string) (Server, error) {
	var s Server
	vals, own, err := p.values(name)
	if err != nil {
		return s, err
	}
	keys := make([]string, 0, len(own))
	for k := range own {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return p.scan.line(name, keys[i]) < p.scan.line(name, keys[j]) })
	for _, k := range keys {
		if _, ok := lookupKey(k); !ok {
			msg := fmt.Sprintf("unknown key %q", k)
			if sg := suggest(k); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			}
			return s, &Error{File: p.file, Line: p.scan.line(name, k), Section: name, Err: fmt.Errorf("%s", msg)}
		}
	}
	set := map[string]bool{}
	for _, kv := range vals {
		k, ok := lookupKey(kv.Key)
		if !ok {
			continue // a [DEFAULT] key meant for the app
		}
		if err := k.set(&s, kv.Value); err != nil {
			return s, p.errAt(name, kv.Key, kv.Value, err)
		}
		set[kv.Key] = true
	}
	if !set["factory"] {
		return s, &Error{File: p.file, Section: name, Err: fmt.Errorf("missing required key %q", "factory")}
	}
	for _, k := range serverKeys {
		if !set[k.Name] && k.Default != "" {
			if err := k.set(&s, k.Default); err != nil {
				panic("config: bad default for " + k.Name + ": " + err.Error())
			}
		}
	}
	if bind != "" {
		e, err := ParseEndpoint(bind)
		if err != nil {
			return s, &Error{File: "--bind", Value: bind, Err: fmt.Errorf("--bind %q: %w", bind, err)}
		}
		s.Bind = e
	}
	if !set["workers"] {
		s.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if !set["max_concurrency"] {
		s.MaxConcurrency = max(100, s.Workers)
	} else if s.MaxConcurrency < s.Workers {
		v := fmt.Sprint(s.MaxConcurrency)
		return s, p.errAt(name, "max_concurrency", v, fmt.Errorf("must be at least workers (%d)", s.Workers))
	}
	if s.MaxMemory < 65536 {
		return s, p.errAt(name, "max_memory", fmt.Sprint(s.MaxMemory), fmt.Errorf("must be at least 64 KiB"))
	}
	s.MaxMemory &^= 65535
	switch {
	case s.CompilationCache == "off":
		s.CompilationCache = ""
	case s.CompilationCache == "":
		s.CompilationCache = defaultCacheDir()
	case !filepath.IsAbs(s.CompilationCache):
		s.CompilationCache = filepath.Join(dirOf(p.file), s.CompilationCache)
	}
	return s, nil
}

func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "wasmserve")
	}
	if d, err := os.UserHomeDir(); err == nil && d != "" && d != "/" {
		return filepath.Join(d, ".cache", "wasmserve")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("wasmserve-%d", os.Getuid()))
}

func dirOf(file string) string {
	d, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return filepath.Dir(file)
	}
	return d
}

func (p *parser) resolve(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	rel := filepath.Join(dirOf(p.file), path)
	if _, err := os.Stat(rel); err != nil {
		if abs, aerr := filepath.Abs(path); aerr == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	return rel
}

func (p *parser) app(name string) (App, error) {
	var a App
	vals, _, err := p.values(name)
	if err != nil {
		return a, err
	}
	factory := ""
	for _, kv := range vals {
		switch kv.Key {
		case "factory":
			factory = kv.Value
			continue
		case "wasi.dir":
			for _, item := range strings.Split(kv.Value, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				host, guest, _ := strings.Cut(item, ":")
				if guest == "" {
					guest = host
				}
				m := Mount{Host: p.resolve(host), Guest: guest}
				if st, err := os.Stat(m.Host); err != nil || !st.IsDir() {
					if err == nil {
						err = fmt.Errorf("%s is not a directory", m.Host)
					}
					return a, p.errAt(name, kv.Key, kv.Value, err)
				}
				a.WASI.Dirs = append(a.WASI.Dirs, m)
			}
		case "wasi.env":
			for _, n := range strings.Split(kv.Value, ",") {
				n = strings.TrimSpace(n)
				if n == "" {
					continue
				}
				if !validEnvName(n) {
					return a, p.errAt(name, kv.Key, kv.Value, fmt.Errorf("%q is not an environment variable name", n))
				}
				a.WASI.Env = append(a.WASI.Env, n)
			}
		}
		a.Values = append(a.Values, kv)
	}
	if factory == "" {
		return a, &Error{File: p.file, Section: name, Err: fmt.Errorf("missing required key %q", "factory")}
	}
	a.Module = p.resolve(factory)
	if _, err := os.Stat(a.Module); err != nil {
		return a, p.errAt(name, "factory", factory, err)
	}
	return a, nil
}

func validEnvName(n string) bool {
	for i, r := range n {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return n != ""
}

// RestartKeys returns, sorted, the server keys whose values differ between
// s and next: none of them can change without a restart.
func (s Server) RestartKeys(next Server) []string {
	var out []string
	for _, k := range serverKeys {
		if k.value(&s) != k.value(&next) {
			out = append(out, k.Name)
		}
	}
	sort.Strings(out)
	return out
}

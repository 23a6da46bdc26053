// Package config reads a wasmserve INI file into a typed, validated Config.
//
// The file follows baseplate-serve: a [server:NAME] section configures the
// host and an [app:NAME] section the guest. The rules are those of
// Python's configparser as baseplate uses it:
//
//   - [DEFAULT] is merged into every section; a section's own keys win.
//   - Keys are case-insensitive and stored lower-case; "=" or ":" separates
//     a key from its value; values are trimmed of surrounding space and
//     otherwise kept as written: no inline comments ("a = b ; c" is "b ;
//     c"), no quotes, no %(name)s interpolation. A line indented deeper
//     than its key continues the value after a newline.
//   - $VAR and ${VAR} are expanded from the environment in every value;
//     unknown variables stay as written.
//   - A duplicated section or key is an error.
//
// Every error is an *Error naming the file, the line when there is one,
// the section, and the key and value at fault.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Options select the sections to read and override values from the
// command line. The zero Options read [server:main] and [app:main].
type Options struct {
	ServerName string // the server section is [server:ServerName]; "" = "main"
	AppName    string // the app section is [app:AppName]; "" = "main"
	// Bind, when not "", replaces the server section's bind key (the
	// --bind flag). It is validated like bind.
	Bind string
	// LookupEnv expands $VAR and ${VAR} in values, finds the default
	// compilation cache directory and reads the WASMSERVE_<KEY> and PORT
	// overrides; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Set holds command-line values by server key name ("workers",
	// "log.format"); they win over the environment and the file. An
	// invalid value is reported as `--workers "0": CAUSE`.
	Set map[string]string
	// Defaults replaces the built-in default of server keys by name, for
	// values the file, the environment and Set leave unset (--reload's
	// drain_time = 0).
	Defaults map[string]string
}

// Config is a validated configuration. It holds no open resources.
type Config struct {
	File       string // the path as given to Load or Parse
	ServerName string // NAME of the [server:NAME] section read
	AppName    string // NAME of the [app:NAME] section read
	Server     Server
	App        App

	opts    Options           // as given to Parse, for Reload
	origins map[string]string // server key -> where its value came from; see Origin
}

// App is the validated [app:NAME] section.
type App struct {
	// Module is the absolute path of the guest module, the factory key.
	Module string
	// Values is every key of the section but factory, [DEFAULT]'s
	// included, in file order ([DEFAULT]'s first), with lower-case keys
	// and expanded values. wasi.* and metrics.* keys are included.
	Values []KV
	WASI   WASI
	// Clients is what guests may call: the outbound client keys, which
	// are also in Values.
	Clients Clients
	// KV is the key-value stores the kv.NAME.* keys configure (also in
	// Values).
	KV []KVStore
}

// KV is one key and its value.
type KV struct{ Key, Value string }

// WASI is what the app section grants the guest beyond the wasmserve ABI.
type WASI struct {
	Dirs []Mount  // wasi.dir = HOST[:GUEST], ...: preopened directories
	Env  []string // wasi.env = NAME, ...: host environment variables passed through
}

// Mount is a host directory the guest sees at Guest.
type Mount struct {
	Host  string // absolute path of an existing directory
	Guest string // as written; the host path as written when left out
}

// Get returns the value of key (lower-case) in Values and whether it is
// set.
func (a App) Get(key string) (string, bool) {
	for _, kv := range a.Values {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Load reads the file at path and returns Parse's result.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, opts)
}

// Parse parses and validates data as the contents of the file filename:
// errors name filename, and relative paths in the file resolve against
// filepath.Dir(filename). Parse stats the module and wasi.dir
// directories; it opens nothing.
//
// Errors in the file are *Error values. An invalid Options.Bind is
// reported as `--bind "VALUE": CAUSE`.
func Parse(filename string, data []byte, opts Options) (*Config, error) {
	opts.ServerName = cmp.Or(opts.ServerName, "main")
	opts.AppName = cmp.Or(opts.AppName, "main")
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	var bind Endpoint
	if opts.Bind != "" {
		var err error
		if bind, err = ParseEndpoint(opts.Bind); err != nil {
			return nil, fmt.Errorf("--bind %q: %w", opts.Bind, err)
		}
	}
	if err := validateSet(opts.Set); err != nil {
		return nil, err
	}
	if err := validateSet(opts.Defaults); err != nil {
		return nil, err
	}
	f, err := parseINI(filename, data)
	if err != nil {
		return nil, err
	}
	l := &loader{file: filename, dir: absDir(filename), f: f, env: opts.LookupEnv}
	server, err := l.section("server:" + opts.ServerName)
	if err != nil {
		return nil, err
	}
	app, err := l.section("app:" + opts.AppName)
	if err != nil {
		return nil, err
	}
	cfg := &Config{File: filename, ServerName: opts.ServerName, AppName: opts.AppName, opts: opts, origins: map[string]string{}}
	if cfg.Server, err = l.server(server, app, bind, opts, cfg.origins); err != nil {
		return nil, err
	}
	if cfg.App, err = l.app(app); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loader turns the sections of an iniFile into a Config.
type loader struct {
	file string // as given
	dir  string // absolute directory of file
	f    *iniFile
	env  func(string) (string, bool)
}

// section is one section with [DEFAULT] merged in.
type section struct {
	name string
	own  *iniSection
	keys []iniKey // merged and expanded, in line order
}

func (s *section) get(name string) (iniKey, bool) {
	for _, k := range s.keys {
		if k.name == name {
			return k, true
		}
	}
	return iniKey{}, false
}

func (l *loader) section(name string) (*section, error) {
	own := l.f.section(name)
	if own == nil {
		var have []string
		for _, s := range l.f.sections {
			if s.name != defaultSection {
				have = append(have, "["+s.name+"]")
			}
		}
		list := "the file has none"
		if len(have) > 0 {
			list = "sections: " + strings.Join(have, ", ")
		}
		return nil, &Error{File: l.file, Err: errorf(ErrNoSection, "no [%s] section (%s)%s", name, list, sectionHint(l.f, name))}
	}
	return &section{name: name, own: own, keys: l.f.merged(own, l.env)}, nil
}

func (l *loader) errAt(sec *section, k iniKey, err error) *Error {
	return &Error{File: l.file, Line: k.line, Section: sec.name, Key: k.name, Value: k.value, Err: unsetHint(err, k.value, l.env)}
}

func (l *loader) missing(sec *section, key string) *Error {
	return &Error{File: l.file, Section: sec.name, Key: key, Err: errorf(ErrMissingKey, "missing required key %q", key)}
}

// server validates the server section. app supplies metrics.* keys the
// server section leaves out; opts.Set and the environment override the
// file (see applyOverrides); bind, unless zero, replaces bind. origins
// receives where each key's value came from.
func (l *loader) server(sec, app *section, bind Endpoint, opts Options, origins map[string]string) (Server, error) {
	var s Server
	set := map[string]bool{}
	for _, kv := range sortedByLine(sec.keys) {
		k, ok := lookupKey(kv.name)
		if !ok {
			if sec.own.key(kv.name) == nil {
				continue // a [DEFAULT] key meant for the app
			}
			msg := fmt.Sprintf("unknown key %q", kv.name)
			if sg := suggest(kv.name); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			}
			return s, l.errAt(sec, kv, errorf(ErrUnknownKey, "%s", msg))
		}
		if err := k.set(&s, kv.value); err != nil {
			return s, l.errAt(sec, kv, err)
		}
		set[kv.name] = true
		origins[kv.name] = fmt.Sprintf("%s:%d", l.file, kv.line)
	}
	if !set["factory"] {
		return s, l.missing(sec, "factory")
	}
	for _, name := range []string{"metrics.endpoint", "metrics.namespace"} {
		if kv, ok := app.get(name); ok && !set[name] {
			k, _ := lookupKey(name)
			if err := k.set(&s, kv.value); err != nil {
				return s, l.errAt(app, kv, err)
			}
			set[name] = true
			origins[name] = fmt.Sprintf("%s:%d", l.file, kv.line)
		}
	}
	if err := l.applyOverrides(&s, set, origins, opts); err != nil {
		return s, err
	}
	if !bind.IsZero() {
		s.Bind, set["bind"], origins["bind"] = bind, true, "--bind"
	}
	for _, k := range serverKeys {
		if set[k.Name] {
			continue
		}
		if v, ok := opts.Defaults[k.Name]; ok {
			if err := k.set(&s, v); err != nil {
				return s, fmt.Errorf("default %s = %q: %w", k.Name, v, err)
			}
			set[k.Name] = k.Name == "workers" || k.Name == "max_concurrency"
			continue
		}
		if k.Default != "" {
			if err := k.set(&s, k.Default); err != nil {
				panic(fmt.Sprintf("config: default %q of %s: %v", k.Default, k.Name, err))
			}
		}
	}
	if !set["workers"] {
		s.Workers = max(2, runtime.GOMAXPROCS(0))
		if set["max_concurrency"] {
			s.Workers = min(s.Workers, s.MaxConcurrency)
		}
	}
	if !set["max_concurrency"] {
		s.MaxConcurrency = max(100, s.Workers)
	} else if s.MaxConcurrency < s.Workers {
		msg := fmt.Errorf("must be at least workers (%d, from %s)", s.Workers, cmp.Or(origins["workers"], "default"))
		if o := origins["max_concurrency"]; o != "" && !strings.HasPrefix(o, l.file+":") {
			return s, fmt.Errorf("%s max_concurrency = %d: %w", o, s.MaxConcurrency, msg)
		}
		kv, _ := sec.get("max_concurrency")
		if kv.name == "" {
			kv, _ = app.get("max_concurrency")
		}
		return s, l.errAt(sec, kv, msg)
	}
	switch s.CompilationCache {
	case "off":
		s.CompilationCache = ""
	case "":
		s.CompilationCache = defaultCacheDir(l.env)
	default:
		s.CompilationCache = l.abs(s.CompilationCache)
	}
	return s, nil
}

// app validates the app section.
func (l *loader) app(sec *section) (App, error) {
	var a App
	factory, ok := sec.get("factory")
	if !ok {
		return a, l.missing(sec, "factory")
	}
	if factory.value == "" {
		return a, l.errAt(sec, factory, errors.New("empty module path"))
	}
	for _, kv := range sec.keys {
		switch kv.name {
		case "factory":
			continue
		case "wasi.dir":
			for _, item := range splitList(kv.value) {
				host, guest, _ := strings.Cut(item, ":")
				if host == "" {
					return a, l.errAt(sec, kv, fmt.Errorf("empty host directory in %q", item))
				}
				m := Mount{Host: l.abs(host), Guest: cmp.Or(guest, host)}
				if err := isDir(m.Host); err != nil {
					return a, l.errAt(sec, kv, err)
				}
				a.WASI.Dirs = append(a.WASI.Dirs, m)
			}
		case "wasi.env":
			for _, name := range splitList(kv.value) {
				if !validEnvName(name) {
					return a, l.errAt(sec, kv, fmt.Errorf("%q is not an environment variable name", name))
				}
				a.WASI.Env = append(a.WASI.Env, name)
			}
		}
		a.Values = append(a.Values, KV{Key: kv.name, Value: kv.value})
	}
	var err error
	if a.Clients, err = l.clients(sec); err != nil {
		return a, err
	}
	if a.KV, err = l.kvStores(sec); err != nil {
		return a, err
	}
	a.Module = l.resolve(factory.value)
	if err := isFile(a.Module); err != nil {
		if errors.Is(err, os.ErrNotExist) && len(unsetVars(factory.value, l.env)) == 0 {
			err = fmt.Errorf("%w (build the module first, e.g. with make, or fix the path: a relative path resolves against %s, then the working directory)", err, l.dir)
		}
		return a, l.errAt(sec, factory, err)
	}
	return a, nil
}

// abs resolves path against the INI file's directory.
func (l *loader) abs(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(l.dir, path)
}

// resolve is abs(path), unless nothing exists there but path exists
// relative to the working directory: then it is that.
func (l *loader) resolve(path string) string {
	p := l.abs(path)
	if _, err := os.Stat(p); err != nil && !filepath.IsAbs(path) {
		if cwd, err := filepath.Abs(path); err == nil {
			if _, err := os.Stat(cwd); err == nil {
				return cwd
			}
		}
	}
	return p
}

func absDir(file string) string {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return filepath.Dir(file)
	}
	return dir
}

// defaultCacheDir is $XDG_CACHE_HOME/wasmserve, else
// $HOME/.cache/wasmserve, else a per-user directory under os.TempDir.
func defaultCacheDir(lookup func(string) (string, bool)) string {
	if d, _ := lookup("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "wasmserve")
	}
	if d, _ := lookup("HOME"); filepath.IsAbs(d) && d != "/" {
		return filepath.Join(d, ".cache", "wasmserve")
	}
	return filepath.Join(os.TempDir(), "wasmserve-"+strconv.Itoa(os.Getuid()))
}

func isDir(path string) error {
	st, err := os.Stat(path)
	if err == nil && !st.IsDir() {
		err = fmt.Errorf("%s is not a directory", path)
	}
	return err
}

func isFile(path string) error {
	st, err := os.Stat(path)
	if err == nil && st.IsDir() {
		err = fmt.Errorf("%s is a directory", path)
	}
	return err
}

// splitList splits a comma-separated value into trimmed, non-empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func sortedByLine(keys []iniKey) []iniKey {
	return slices.SortedStableFunc(slices.Values(keys), func(a, b iniKey) int { return cmp.Compare(a.line, b.line) })
}

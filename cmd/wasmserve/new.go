package main

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"text/template"
)

//go:embed all:skeleton
var skeletons embed.FS

// sourceDir is the wasmserve source tree the binary was built from, set by
// the Makefile with -ldflags "-X main.sourceDir=…". See findSource.
var sourceDir string

// modulePath is the wasmserve Go module.
const modulePath = "github.com/wasmserve/wasmserve"

// language is one language `wasmserve new` writes.
type language struct {
	name  string // for people
	tool  string // the command the build needs
	build string // the Debian packages (or setup) that provide it
}

var languages = map[string]language{
	"go":   {"Go", "go", "Go 1.24 or later (https://go.dev/dl/)"},
	"c":    {"C", "clang", "the Debian packages clang lld wasi-libc libclang-rt-14-dev-wasm32"},
	"rust": {"Rust", "rustc", "the Debian packages rustc libstd-rust-dev-wasm32"},
	"as":   {"AssemblyScript", "npm", "the Debian package npm"},
	"wat":  {"WebAssembly text", "wat2wasm", "the Debian package wabt"},
}

var languageAliases = map[string]string{"golang": "go", "assemblyscript": "as", "ts": "as", "wast": "wat"}

const newUsage = `usage: wasmserve new [--source DIR] LANG DIR

Creates a working app in DIR (which must not exist, or be empty): its source,
a Makefile (and Cargo.toml for Rust), app.ini and test.sh. Then:

  make -C DIR                  build DIR/app.wasm
  wasmserve check DIR/app.ini  validate it without serving
  wasmserve DIR/app.ini        serve it on http://127.0.0.1:8080/
  make -C DIR test             serve it on a private socket and check GET /

LANG is go, c, rust, as (AssemblyScript) or wat (WebAssembly text).
The SDK files are copied into DIR. A Go app's go.mod points at the Go SDK
in the wasmserve source tree (--source DIR, else the tree this binary was
built from or sits in; a released binary uses the released module).

flags:
`

// newApp runs `wasmserve new`.
func newApp(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "the wasmserve source tree to take the SDKs from")
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, newUsage)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return 0
			}
			fmt.Fprint(stderr, newUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprint(stderr, newUsage)
		fs.PrintDefaults()
		return 2
	}
	lang := strings.ToLower(pos[0])
	if a, ok := languageAliases[lang]; ok {
		lang = a
	}
	l, ok := languages[lang]
	if !ok {
		fmt.Fprintf(stderr, "wasmserve new: unknown language %q: want go, c, rust, as or wat\n", pos[0])
		return 2
	}
	files, err := writeSkeleton(lang, pos[1], *source)
	if err != nil {
		fmt.Fprintf(stderr, "wasmserve new: %v\n", err)
		return 1
	}
	dir := pos[1]
	fmt.Fprintf(stdout, "created a %s app in %s: %s\n", l.name, dir, strings.Join(files, ", "))
	if _, err := exec.LookPath(l.tool); err != nil {
		fmt.Fprintf(stdout, "note: %s is not on PATH; building needs %s\n", l.tool, l.build)
	}
	fmt.Fprintf(stdout, "next:\n  make -C %[1]s\n  wasmserve check %[2]s\n  wasmserve %[2]s\n  make -C %[1]s test\n", dir, filepath.Join(dir, "app.ini"))
	return 0
}

// skeletonData fills the templates.
type skeletonData struct {
	Name       string // the directory's base name
	Lang       string // the language's name, for people
	Module     string // the Go module path
	Crate      string // the Rust crate name
	GoVersion  string // the go directive of go.mod
	SDKVersion string // the version of the wasmserve module go.mod requires
	Source     string // the wasmserve source tree; "" when not found
	Wasmserve  string // the absolute path of this binary
}

// writeSkeleton writes the skeleton of lang into dir and returns the
// files written, relative to dir.
func writeSkeleton(lang, dir, source string) ([]string, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s exists and is not empty: choose a new directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if source == "" {
		source = findSource()
	} else if source, err = filepath.Abs(source); err != nil || !isSourceTree(source) {
		return nil, fmt.Errorf("--source %s: not a wasmserve source tree (no go.mod for %s there)", source, modulePath)
	}
	d := skeletonData{
		Name:      filepath.Base(abs),
		Lang:      languages[lang].name,
		Source:    source,
		GoVersion: goVersion(source),
	}
	d.Module = sanitize(d.Name, "-._")
	d.Crate = strings.ReplaceAll(sanitize(d.Name, "_-"), "-", "_")
	if d.Crate[0] < 'a' || d.Crate[0] > 'z' {
		d.Crate = "app_" + d.Crate
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			d.Wasmserve = exe
		}
	}
	if lang == "go" {
		if d.SDKVersion = "v0.0.0-00010101000000-000000000000"; source == "" {
			bi, ok := debug.ReadBuildInfo()
			if !ok || bi.Main.Path != modulePath || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
				return nil, fmt.Errorf("cannot find the wasmserve source tree for the Go SDK: pass --source DIR (a checkout of %s)", modulePath)
			}
			d.SDKVersion = bi.Main.Version
		}
	}
	out := map[string][]byte{}
	for _, sub := range []string{"skeleton/common", "skeleton/" + lang} {
		err := fs.WalkDir(skeletons, sub, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			text, err := skeletons.ReadFile(p)
			if err != nil {
				return err
			}
			t, err := template.New(p).Option("missingkey=error").Parse(string(text))
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := t.Execute(&b, d); err != nil {
				return err
			}
			// .tmpl keeps go.mod and .go files from being part of this module.
			rel := strings.TrimSuffix(strings.TrimPrefix(p, sub+"/"), ".tmpl")
			switch rel {
			case "gitignore":
				rel = ".gitignore"
			}
			out[rel] = b.Bytes()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("skeleton: %w", err)
		}
	}
	sdk, err := sdkFiles(lang, source)
	if err != nil {
		return nil, fmt.Errorf("SDK files: %w", err)
	}
	maps.Copy(out, sdk)
	if lang == "go" && source != "" {
		// The source tree's go.sum covers every module its Go SDK can
		// need, so that the first build works offline.
		if sum, err := os.ReadFile(filepath.Join(source, "go.sum")); err == nil {
			out["go.sum"] = sum
		}
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(abs, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if path.Ext(name) == ".sh" || bytes.HasPrefix(out[name], []byte("#!")) {
			mode = 0o755
		}
		if err := os.WriteFile(p, out[name], mode); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// findSource returns the wasmserve source tree this binary belongs to, or
// "": the directory set at build time (sourceDir), else the first
// directory holding the wasmserve go.mod above the executable (bin/wasmserve
// in a checkout), else above the working directory, else the module cache
// copy of the released version the binary was built from.
func findSource() string {
	if sourceDir != "" && isSourceTree(sourceDir) {
		return sourceDir
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isSourceTree(dir) {
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == modulePath && strings.HasPrefix(bi.Main.Version, "v") {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			dir := filepath.Join(strings.TrimSpace(string(out)), modulePath+"@"+bi.Main.Version)
			if isSourceTree(dir) {
				return dir
			}
		}
	}
	return ""
}

// isSourceTree reports whether dir holds the wasmserve go.mod and the Go
// guest SDK.
func isSourceTree(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "module "+modulePath {
			_, err := os.Stat(filepath.Join(dir, "abi", "guest"))
			return err == nil
		}
	}
	return false
}

// goVersion is the go directive of the source tree's go.mod, else the
// release of the toolchain that built this binary.
func goVersion(source string) string {
	if data, err := os.ReadFile(filepath.Join(source, "go.mod")); err == nil && source != "" {
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
				return v
			}
		}
	}
	v := strings.TrimPrefix(runtime.Version(), "go")
	if i := strings.IndexAny(v, " -"); i >= 0 {
		v = v[:i]
	}
	return v
}

// sanitize lower-cases name and replaces what is not a letter, a digit or
// one of extra with '-', giving "app" for an empty result.
func sanitize(name, extra string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', strings.ContainsRune(extra, r):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-._")
	if s == "" {
		return "app"
	}
	return s
}

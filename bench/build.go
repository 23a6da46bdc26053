package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// builds holds the paths of everything the bench runs, built from source.
type builds struct {
	wasmserve    string
	native       string
	httpwasm     string
	thriftNative string
	thriftLoad   string
	hwGuest      string
	cpuGuest     string
	shaGo        string // the CPU-bound guests (bench/guests/sha-*)
	shaC         string
	spinGuest    string
	guests       []guest // wasmserve HTTP example guests that exist
}

type guest struct {
	name   string // e.g. "go", "c"
	module string
}

func sh(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func build(o *options) (*builds, error) {
	b := &builds{
		wasmserve:    filepath.Join(o.root, "bin", "wasmserve"),
		native:       filepath.Join(o.work, "native"),
		httpwasm:     filepath.Join(o.work, "httpwasm"),
		hwGuest:      filepath.Join(o.work, "httpwasm.wasm"),
		cpuGuest:     filepath.Join(o.work, "cpu.wasm"),
		thriftNative: filepath.Join(o.work, "thriftnative"),
		thriftLoad:   filepath.Join(o.work, "thriftload"),
		shaGo:        filepath.Join(o.work, "sha-go.wasm"),
		shaC:         filepath.Join(o.work, "sha-c.wasm"),
		spinGuest:    filepath.Join(o.work, "spin.wasm"),
	}
	if err := sh(o.root, "make", "--no-print-directory", "build"); err != nil {
		return nil, err
	}
	bench := filepath.Join(o.root, "bench")
	for _, c := range [][]string{
		{"go", "build", "-o", b.native, "./native"},
		{"go", "build", "-o", b.httpwasm, "./httpwasm"},
		{"go", "build", "-o", b.thriftNative, "./thriftnative"},
		{"go", "build", "-o", b.thriftLoad, "./thriftload"},
		{"wat2wasm", "-o", b.hwGuest, "guests/httpwasm.wat"},
		{"wat2wasm", "-o", b.cpuGuest, "guests/cpu.wat"},
		{"wat2wasm", "-o", b.spinGuest, "guests/spin.wat"},
		{"env", "GOOS=wasip1", "GOARCH=wasm", "go", "build", "-trimpath", "-buildmode=c-shared", "-o", b.shaGo, "./guests/sha-go"},
		{"clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall", "-Wextra", "-Werror",
			"-I" + filepath.Join(o.root, "guests", "sdk", "c"), "-s", "-o", b.shaC, "guests/sha-c/sha.c"},
	} {
		if err := sh(bench, c[0], c[1:]...); err != nil {
			return nil, err
		}
	}
	for _, g := range []struct{ name, dir string }{{"wat", "hello-wat"}, {"c", "hello-c"}, {"rust", "hello-rust"}, {"as", "hello-as"}, {"go", "hello-go"}} {
		m := filepath.Join(o.root, "guests", "examples", g.dir, "hello.wasm")
		if _, err := os.Stat(m); err == nil {
			b.guests = append(b.guests, guest{g.name, m})
		}
	}
	return b, nil
}

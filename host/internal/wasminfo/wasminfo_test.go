package wasminfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func wat(t *testing.T, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	os.WriteFile(in, []byte(src), 0o644)
	if msg, err := exec.Command("wat2wasm", "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm (Debian package wabt): %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseReactor(t *testing.T) {
	t.Parallel()
	info, err := Parse(wat(t, `(module
		(import "wasmserve" "request_read" (func (param i32 i32) (result i32)))
		(memory (export "memory") 2 10)
		(func (export "wasmserve_abi_version") (result i32) (i32.const 7))
		(func (export "wasmserve_handle") (param i32) (result i64) (i64.const 0)))`))
	if err != nil {
		t.Fatal(err)
	}
	if info.IsCommand() || info.ABIVersion != 7 {
		t.Errorf("IsCommand = %v, ABIVersion = %d; want false, 7", info.IsCommand(), info.ABIVersion)
	}
	if m := info.Memory; m == nil || m.Min != 2 || !m.HasMax || m.Max != 10 || m.Imported {
		t.Errorf("Memory = %+v", info.Memory)
	}
	if len(info.Imports) != 1 || info.Imports[0] != (Import{"wasmserve", "request_read", KindFunc, "(i32, i32) -> (i32)"}) {
		t.Errorf("Imports = %+v", info.Imports)
	}
	if e, ok := info.Export("wasmserve_handle"); !ok || e.Kind != KindFunc || e.Type != "(i32) -> (i64)" {
		t.Errorf("wasmserve_handle export = %+v, %v", e, ok)
	}
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	info, err := Parse(wat(t, `(module (import "env" "memory" (memory 1)) (func (export "_start")))`))
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsCommand() || info.Memory == nil || !info.Memory.Imported {
		t.Fatalf("IsCommand = %v, Memory = %+v", info.IsCommand(), info.Memory)
	}
	msg := info.CommandError("m.wasm").Error()
	for _, want := range []string{"m.wasm is a WASI command", "-buildmode=c-shared", "cdylib", "-mexec-model=reactor", "--exportStart _initialize"} {
		if !strings.Contains(msg, want) {
			t.Errorf("CommandError lacks %q: %s", want, msg)
		}
	}
	info.Producer = "rust"
	if msg := info.CommandError("m.wasm").Error(); !strings.Contains(msg, "reactor — Rust:") {
		t.Errorf("a Rust command's hint does not lead with Rust: %s", msg)
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for name, data := range map[string][]byte{
		"not wasm":  []byte("[server:main]\n"),
		"version 2": []byte("\x00asm\x02\x00\x00\x00"),
		"truncated": []byte("\x00asm\x01\x00\x00\x00\x07\x05\x01"),
		"long leb":  []byte("\x00asm\x01\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff"),
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

// FuzzParse: Parse never panics, whatever the bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x01\x7f\x00\x07\x05\x01\x01m\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data)
	})
}

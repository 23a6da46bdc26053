// Package wasminfo reads what a WebAssembly binary declares — imports,
// exports, memory, custom sections — without compiling it, so that the
// command line can describe a module and explain why it cannot be served
// (a WASI command instead of a reactor) before paying for compilation.
package wasminfo

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmserve/wasmserve/abi"
)

// Kinds of import and export.
const (
	KindFunc   = "func"
	KindTable  = "table"
	KindMemory = "memory"
	KindGlobal = "global"
	KindTag    = "tag"
)

// Import is one import of the module.
type Import struct {
	Module, Name, Kind string
	Type               string // a function's signature, e.g. "(i32, i32) -> (i32)"; "" for other kinds
}

// Export is one export of the module.
type Export struct {
	Name, Kind string
	Type       string // a function's signature; "" for other kinds
	index      uint32
}

// Memory is the module's linear memory, in 64 KiB pages.
type Memory struct {
	Min, Max uint32
	HasMax   bool
	Imported bool
}

// Info is what a module declares.
type Info struct {
	Size     int // bytes
	Imports  []Import
	Exports  []Export
	Memory   *Memory  // nil when the module has none
	Custom   []string // names of custom sections, in order
	Producer string   // "go", "rust", "clang", "assemblyscript" or "" when unknown
	// ABIVersion is the constant returned by wasmserve_abi_version when
	// its body is a plain i32.const; 0 when it is computed at run time.
	ABIVersion int32
}

// ErrNotWasm is returned by Parse for bytes without the \0asm magic.
var ErrNotWasm = errors.New("not a WebAssembly module (no \\0asm magic number)")

// IsWasm reports whether data starts with the WebAssembly magic number.
func IsWasm(data []byte) bool { return bytes.HasPrefix(data, []byte("\x00asm")) }

// Parse reads the sections of a WebAssembly binary. It checks the
// structure it reads, not the code: a module Parse accepts can still
// fail to compile.
func Parse(data []byte) (*Info, error) {
	if !IsWasm(data) {
		return nil, ErrNotWasm
	}
	if len(data) < 8 || data[4] != 1 || data[5] != 0 || data[6] != 0 || data[7] != 0 {
		return nil, errors.New("unsupported WebAssembly binary version (want 1)")
	}
	info := &Info{Size: len(data)}
	var (
		types     []string
		funcTypes []uint32 // type index of every function, imported ones first
		imported  uint32   // number of imported functions
		bodies    [][]byte
	)
	r := &reader{b: data[8:]}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		payload := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		s := &reader{b: payload}
		switch id {
		case 0:
			name := s.name()
			info.Custom = append(info.Custom, name)
			switch {
			case name == "go:buildid" || name == "go.buildid":
				info.Producer = "go"
			case name == "producers" && info.Producer == "":
				switch p := string(s.b); {
				case strings.Contains(p, "rustc"):
					info.Producer = "rust"
				case strings.Contains(p, "clang"):
					info.Producer = "clang"
				}
			case strings.HasPrefix(name, "sourceMappingURL") || name == "as-types":
				info.Producer = "assemblyscript"
			}
		case 1:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if s.byte() != 0x60 {
					s.fail("function type does not start with 0x60")
					break
				}
				params := s.valtypes()
				results := s.valtypes()
				types = append(types, "("+params+") -> ("+results+")")
			}
		case 2:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				im := Import{Module: s.name(), Name: s.name()}
				switch s.byte() {
				case 0:
					im.Kind = KindFunc
					t := s.u32()
					funcTypes = append(funcTypes, t)
					imported++
					if int(t) < len(types) {
						im.Type = types[t]
					}
				case 1:
					im.Kind = KindTable
					s.byte()
					s.limits()
				case 2:
					im.Kind = KindMemory
					min, max, hasMax := s.limits()
					info.Memory = &Memory{Min: min, Max: max, HasMax: hasMax, Imported: true}
				case 3:
					im.Kind = KindGlobal
					s.byte()
					s.byte()
				case 4:
					im.Kind = KindTag
					s.byte()
					s.u32()
				default:
					s.fail("unknown import kind")
				}
				info.Imports = append(info.Imports, im)
			}
		case 3:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				funcTypes = append(funcTypes, s.u32())
			}
		case 5:
			if n := s.u32(); n > 0 {
				min, max, hasMax := s.limits()
				info.Memory = &Memory{Min: min, Max: max, HasMax: hasMax}
			}
		case 7:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				ex := Export{Name: s.name()}
				kind := s.byte()
				ex.index = s.u32()
				ex.Kind = [...]string{KindFunc, KindTable, KindMemory, KindGlobal, KindTag, "?"}[min(int(kind), 5)]
				info.Exports = append(info.Exports, ex)
			}
		case 10:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				bodies = append(bodies, s.bytes(int(s.u32())))
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, s.err)
		}
	}
	for i := range info.Exports {
		ex := &info.Exports[i]
		if ex.Kind != KindFunc || int(ex.index) >= len(funcTypes) {
			continue
		}
		if t := funcTypes[ex.index]; int(t) < len(types) {
			ex.Type = types[t]
		}
		if ex.Name == abi.ExportABIVersion && ex.index >= imported {
			if b := int(ex.index - imported); b < len(bodies) {
				info.ABIVersion = constBody(bodies[b])
			}
		}
	}
	return info, nil
}

// constBody returns N for a function body that is "i32.const N; end"
// with no locals, else 0.
func constBody(body []byte) int32 {
	r := &reader{b: body}
	if r.u32() != 0 || r.byte() != 0x41 {
		return 0
	}
	v := r.s32()
	if r.byte() != 0x0b || !r.done() || r.err != nil {
		return 0
	}
	return v
}

// Export returns the export called name.
func (i *Info) Export(name string) (Export, bool) {
	for _, e := range i.Exports {
		if e.Name == name {
			return e, true
		}
	}
	return Export{}, false
}

// IsCommand reports whether the module is a WASI command (it exports
// _start) rather than a wasmserve reactor (it exports wasmserve_handle).
func (i *Info) IsCommand() bool {
	_, start := i.Export("_start")
	_, handle := i.Export(abi.ExportHandle)
	return start && !handle
}

// CommandError explains that the module at path is a WASI command and how
// to build a reactor instead, leading with the flag for the language that
// produced it when it is known.
func (i *Info) CommandError(path string) error {
	hints := map[string]string{
		"go":             "Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared",
		"rust":           `Rust: a library with crate-type = ["cdylib"] (rustc --crate-type cdylib), not a binary`,
		"clang":          "C: clang --target=wasm32-wasi -mexec-model=reactor",
		"assemblyscript": "AssemblyScript: asc --exportStart _initialize",
	}
	order := []string{"go", "rust", "clang", "assemblyscript"}
	var list []string
	if h, ok := hints[i.Producer]; ok {
		list = append(list, h)
	}
	for _, p := range order {
		if p != i.Producer {
			list = append(list, hints[p])
		}
	}
	return fmt.Errorf("%s is a WASI command (it exports _start and no %s): wasmserve serves reactors, which export %s; rebuild it as a reactor — %s",
		path, abi.ExportHandle, abi.ExportHandle, strings.Join(list, "; "))
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) done() bool { return len(r.b) == 0 || r.err != nil }

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("unexpected end of section")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail("length past the end of the data")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("integer too long")
	return 0
}

func (r *reader) s32() int32 {
	var v int64
	shift := 0
	for shift < 35 {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 && shift < 64 {
				v |= -1 << shift
			}
			return int32(v)
		}
	}
	r.fail("integer too long")
	return 0
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() (min, max uint32, hasMax bool) {
	flags := r.byte()
	min = r.u32()
	if flags&1 != 0 {
		max, hasMax = r.u32(), true
	}
	return
}

func (r *reader) valtypes() string {
	n := r.u32()
	var out []string
	for ; n > 0 && r.err == nil; n-- {
		switch t := r.byte(); t {
		case 0x7f:
			out = append(out, "i32")
		case 0x7e:
			out = append(out, "i64")
		case 0x7d:
			out = append(out, "f32")
		case 0x7c:
			out = append(out, "f64")
		case 0x7b:
			out = append(out, "v128")
		case 0x70:
			out = append(out, "funcref")
		case 0x6f:
			out = append(out, "externref")
		default:
			out = append(out, fmt.Sprintf("0x%02x", t))
		}
	}
	return strings.Join(out, ", ")
}

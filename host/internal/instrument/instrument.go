// Package instrument rewrites a WebAssembly module so that the host can
// interrupt it: every function that loops or calls gets a check at its
// entry, and every loop header a check, that count down a budget and call a
// host import when it runs out.
//
// The rewrite adds, after every existing entry of its kind:
//
//   - an import of a function () -> i32, module ImportModule, name
//     ImportName (so every defined function's index grows by one; calls,
//     ref.func, element segments, exports, the start function and the name
//     section are renumbered);
//   - a mutable i32 global, the budget, starting at Options.Budget;
//   - a function that charges Chunk ticks to the budget;
//   - in each function with a loop, an i32 local counting down the loop
//     iterations left before the next charge;
//   - a custom section named SectionName holding Version, so that the bytes
//     (and with them any compilation cache keyed by the bytes) change when
//     the rewrite does.
//
// At a function entry the budget drops by 1, plus Chunk if the function has
// a loop (paying for its first Chunk iterations); each further Chunk loop
// iterations cost Chunk more. When the budget reaches 0 the guest calls the
// import, whose result is the new budget. Between two calls the guest thus
// runs at most about Budget loop iterations or function entries, whatever
// its shape (nested loops, recursion, calls through tables).
//
// Names beginning with ReservedPrefix are reserved: a module that imports
// or exports one is refused with ErrReserved.
package instrument

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Names and constants of the rewrite.
const (
	// Version changes whenever the rewrite's output or the meaning of the
	// import does.
	Version = 1
	// ImportModule and ImportName name the added import, () -> i32.
	ImportModule = "wasmserve"
	ImportName   = "__wasmserve_interrupt"
	// ReservedPrefix starts every name the rewrite adds.
	ReservedPrefix = "__wasmserve_"
	// GlobalExportPrefix, followed by the global's index, names the export
	// of a mutable global the module does not export itself
	// (Options.ExportGlobals).
	GlobalExportPrefix = "__wasmserve_global_"
	// SectionName is the custom section holding the rewrite's version.
	SectionName = "wasmserve.instrument"
	// Chunk is how many loop iterations a function runs between two charges
	// to the budget.
	Chunk = 256
	// DefaultBudget is the budget's initial value when Options.Budget is 0.
	DefaultBudget = 1 << 20
)

// Options configure Instrument.
type Options struct {
	// Budget is the budget global's initial value; 0 means DefaultBudget.
	Budget int32
	// ExportGlobals exports every defined mutable global the module does
	// not export, as GlobalExportPrefix + its index.
	ExportGlobals bool
}

// Result is an instrumented module and what the rewrite learnt about it.
type Result struct {
	// Binary is the instrumented module.
	Binary []byte
	// Functions counts the defined functions, Checked those given an entry
	// check, Loops the loop headers given a check.
	Functions, Checked, Loops int
	// Globals lists the module's defined mutable globals (the budget
	// excluded) with the export name that reaches each; with
	// Options.ExportGlobals every one has a name.
	Globals []Global
	// NotRestorable gives the reasons, if any, why resetting an instance's
	// memory and mutable globals does not restore it exactly (tables or
	// segments written at run time, imported or shared memory, ...).
	NotRestorable []string
}

// Global is a defined mutable global.
type Global struct {
	Index  uint32 // in the module's global index space
	Type   byte   // value type: 0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64, 0x7b v128, 0x70 funcref, 0x6f externref
	Export string // an export name, "" if the module exports it under none
}

// ErrReserved is wrapped by the error of a module that imports or exports a
// name beginning with ReservedPrefix.
var ErrReserved = errors.New("reserved name")

// ErrMalformed is wrapped by the error of a module the rewrite cannot decode.
var ErrMalformed = errors.New("malformed module")

// Error is an instruction the rewrite cannot handle.
type Error struct {
	Func   uint32 // function index, as in the original module
	Offset int    // byte offset in the function's body
	What   string // e.g. "opcode 0x12 (return_call, tail calls)"
}

func (e *Error) Error() string {
	return fmt.Sprintf("function %d, byte %#x of its body: cannot instrument %s", e.Func, e.Offset, e.What)
}

type section struct {
	id      byte
	content []byte
}

type module struct {
	opts        Options
	res         *Result
	sections    []section
	paramCounts []uint32 // per type
	funcTypes   []uint32 // per defined function
	funcImports uint32
	globImports uint32
	globDefs    uint32
	tickType    int64 // index of a () -> i32 type, -1 if none yet
	newTypes    []byte
	// indices in the rewritten module
	importIdx, tickIdx, budgetIdx uint32
	exportNames                   map[uint32]string // global index -> export name
	scratch                       []byte            // reused by the rewrite of each body
	notRestore                    map[string]bool
}

// Instrument rewrites bin as the package comment describes. It refuses,
// with an error naming what and where, modules it cannot decode or holding
// an instruction it does not know (including proposals wazero does not
// enable by default: threads, tail calls, exceptions, relaxed SIMD).
func Instrument(bin []byte, opts Options) (*Result, error) {
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	m := &module{opts: opts, res: &Result{}, tickType: -1, exportNames: map[uint32]string{}, notRestore: map[string]bool{}}
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%w: no \\0asm magic", ErrMalformed)
	}
	if string(bin[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("%w: binary format version %x, want 1", ErrMalformed, bin[4:8])
	}
	r := &reader{b: bin, off: 8}
	for !r.done() {
		id := r.byte()
		content := r.bytes(r.u32())
		m.sections = append(m.sections, section{id, content})
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: sections: %v", ErrMalformed, r.err)
	}
	// Decode what the rewrite of the others needs, in dependency order.
	for _, id := range []byte{1, 2, 3, 6, 7} {
		for _, s := range m.sections {
			if s.id == id {
				if err := m.scan(s); err != nil {
					return nil, err
				}
			}
		}
	}
	if m.tickType < 0 {
		m.tickType = int64(len(m.paramCounts))
		m.newTypes = append(m.newTypes, 0x60, 0x00, 0x01, 0x7f)
	}
	m.importIdx = m.funcImports
	m.tickIdx = m.funcImports + 1 + uint32(len(m.funcTypes))
	m.budgetIdx = m.globImports + m.globDefs
	m.res.Functions = len(m.funcTypes)
	out, err := m.emit()
	if err != nil {
		return nil, err
	}
	m.res.Binary = out
	for i := range m.res.Globals {
		g := &m.res.Globals[i]
		if name, ok := m.exportNames[g.Index]; ok {
			g.Export = name
		} else if opts.ExportGlobals {
			g.Export = GlobalExportPrefix + strconv.Itoa(int(g.Index))
		}
	}
	for reason := range m.notRestore {
		m.res.NotRestorable = append(m.res.NotRestorable, reason)
	}
	sortStrings(m.res.NotRestorable)
	return m.res, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func reserved(name string) bool { return strings.HasPrefix(name, ReservedPrefix) }

// scan decodes the sections whose contents the rewrite of others needs.
func (m *module) scan(s section) error {
	r := &reader{b: s.content}
	switch s.id {
	case 1: // type
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if form := r.byte(); form != 0x60 && r.err == nil {
				return fmt.Errorf("%w: type %d: form %#x, want 0x60 (func)", ErrMalformed, i, form)
			}
			np := r.u32()
			r.bytes(np)
			nr := r.u32()
			res := r.bytes(nr)
			if np == 0 && len(res) == 1 && res[0] == 0x7f && m.tickType < 0 {
				m.tickType = int64(i)
			}
			m.paramCounts = append(m.paramCounts, np)
		}
	case 2: // import
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			mod, name := r.name(), r.name()
			if r.err == nil && reserved(name) {
				return fmt.Errorf("%w: the module imports %s.%s; names beginning %q are the host's", ErrReserved, mod, name, ReservedPrefix)
			}
			switch kind := r.byte(); kind {
			case 0:
				if t := r.u32(); t >= uint32(len(m.paramCounts)) && r.err == nil {
					r.fail("import of type %d of %d", t, len(m.paramCounts))
				}
				m.funcImports++
			case 1:
				r.byte()
				m.limits(r, false)
			case 2:
				m.notRestore["imported memory "+mod+"."+name] = true
				m.limits(r, true)
			case 3:
				r.byte()
				r.byte()
				m.globImports++
			default:
				r.fail("import kind %#x", kind)
			}
		}
	case 3: // function
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.funcTypes = append(m.funcTypes, r.u32())
		}
	case 6: // global: counted here, rewritten in emit
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			t, mut := r.byte(), r.byte()
			if mut == 1 {
				m.res.Globals = append(m.res.Globals, Global{Index: m.globImports + i, Type: t})
			}
			m.expr(r, nil)
			m.globDefs++
		}
	case 7: // export
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			name := r.name()
			kind := r.byte()
			idx := r.u32()
			if r.err == nil && reserved(name) {
				return fmt.Errorf("%w: the module exports %q; names beginning %q are the host's", ErrReserved, name, ReservedPrefix)
			}
			if kind == 3 {
				if _, ok := m.exportNames[idx]; !ok {
					m.exportNames[idx] = name
				}
			}
		}
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over", len(r.b)-r.off)
	}
	if r.err != nil {
		return fmt.Errorf("%w: section %d: %v", ErrMalformed, s.id, r.err)
	}
	return nil
}

func (m *module) limits(r *reader, memory bool) {
	flags := r.byte()
	if memory && flags&2 != 0 {
		m.notRestore["shared memory"] = true
	}
	r.skipLEB(10)
	if flags&1 != 0 {
		r.skipLEB(10)
	}
}

// rank orders the known sections as the binary format requires.
func rank(id byte) int {
	switch id {
	case 12: // data count
		return 10
	case 10: // code
		return 11
	case 11: // data
		return 12
	}
	return int(id)
}

func (m *module) emit() ([]byte, error) {
	size := 0
	for _, s := range m.sections {
		size += len(s.content) + 6
	}
	out := make([]byte, 0, size+size/4+256)
	out = append(out, "\x00asm\x01\x00\x00\x00"...)
	// Sections the rewrite adds to, created where the module has none.
	need := []byte{1, 2, 3, 6, 7, 10}
	have := map[byte]bool{}
	for _, s := range m.sections {
		have[s.id] = true
	}
	emitted := map[byte]bool{}
	addMissing := func(before int) error {
		for _, id := range need {
			if !have[id] && !emitted[id] && rank(id) < before {
				emitted[id] = true
				c, err := m.rewrite(section{id: id})
				if err != nil {
					return err
				}
				out = appendSection(out, id, c)
			}
		}
		return nil
	}
	for _, s := range m.sections {
		if s.id != 0 {
			if err := addMissing(rank(s.id)); err != nil {
				return nil, err
			}
		}
		c, err := m.rewrite(s)
		if err != nil {
			return nil, err
		}
		if c == nil && s.id == 0 {
			continue // a name section the rewrite drops
		}
		out = appendSection(out, s.id, c)
	}
	if err := addMissing(1 << 30); err != nil {
		return nil, err
	}
	var tag []byte
	tag = appendName(tag, SectionName)
	tag = append(tag, fmt.Sprintf("v%d chunk=%d budget=%d", Version, Chunk, m.opts.Budget)...)
	return appendSection(out, 0, tag), nil
}

// rewrite returns a section's new content; s.content is nil for a section
// the module lacks and the rewrite adds.
func (m *module) rewrite(s section) ([]byte, error) {
	r := &reader{b: s.content}
	var out []byte
	switch s.id {
	case 0:
		return m.custom(s.content), nil
	case 1: // type
		n := uint32(0)
		if s.content != nil {
			n = r.u32()
		}
		if len(m.newTypes) == 0 {
			return s.content, nil
		}
		out = appendU32(out, n+1)
		out = append(out, r.b[r.off:]...)
		return append(out, m.newTypes...), nil
	case 2: // import
		n := uint32(0)
		if s.content != nil {
			n = r.u32()
		}
		out = appendU32(out, n+1)
		out = append(out, r.b[r.off:]...)
		out = appendName(out, ImportModule)
		out = appendName(out, ImportName)
		out = append(out, 0)
		return appendU32(out, uint32(m.tickType)), nil
	case 3: // function
		out = appendU32(out, uint32(len(m.funcTypes))+1)
		for _, t := range m.funcTypes {
			out = appendU32(out, t)
		}
		return appendU32(out, uint32(m.tickType)), nil
	case 6: // global
		out = appendU32(out, m.globDefs+1)
		if s.content != nil {
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				out = append(out, r.byte(), r.byte())
				out = m.expr(r, out)
			}
		}
		out = append(out, 0x7f, 0x01, 0x41)
		out = appendI32(out, m.opts.Budget)
		out = append(out, 0x0b)
	case 7: // export
		var body []byte
		n := uint32(0)
		if s.content != nil {
			n = r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				body = appendName(body, r.name())
				kind := r.byte()
				idx := r.u32()
				switch kind {
				case 0:
					idx = m.fn(idx)
				case 3:
					if idx >= m.globImports+m.globDefs {
						r.fail("export of global %d of %d", idx, m.globImports+m.globDefs)
					}
				}
				body = appendU32(append(body, kind), idx)
			}
		}
		if m.opts.ExportGlobals {
			for _, g := range m.res.Globals {
				if _, ok := m.exportNames[g.Index]; !ok {
					body = appendName(body, GlobalExportPrefix+strconv.Itoa(int(g.Index)))
					body = appendU32(append(body, 3), g.Index)
					n++
				}
			}
		}
		out = append(appendU32(out, n), body...)
	case 8: // start
		out = appendU32(out, m.fn(r.u32()))
	case 9: // element
		out = m.elements(r)
	case 10: // code
		return m.code(r)
	case 4, 5: // table, memory: checked, unchanged
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if s.id == 4 {
				r.byte()
			}
			m.limits(r, s.id == 5)
		}
		out = s.content
	case 11: // data: checked, unchanged
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			switch flags := r.u32(); flags {
			case 0:
				m.expr(r, nil)
			case 1:
			case 2:
				r.u32()
				m.expr(r, nil)
			default:
				r.fail("data segment flags %d", flags)
			}
			r.bytes(r.u32())
		}
		out = s.content
	default: // data count and unknown ids: unchanged
		return s.content, nil
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over", len(r.b)-r.off)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: section %d: %v", ErrMalformed, s.id, r.err)
	}
	return out, nil
}

// fn maps a function index of the original module to the rewritten one.
// An index out of range maps to one past the rewritten module's functions,
// so that an invalid module stays invalid.
func (m *module) fn(idx uint32) uint32 {
	if n := m.funcImports + uint32(len(m.funcTypes)); idx >= n {
		return n + 2
	}
	if idx >= m.funcImports {
		return idx + 1
	}
	return idx
}

func (m *module) elements(r *reader) []byte {
	n := r.u32()
	out := appendU32(nil, n)
	funcs := func() {
		k := r.u32()
		out = appendU32(out, k)
		for j := uint32(0); j < k && r.err == nil; j++ {
			out = appendU32(out, m.fn(r.u32()))
		}
	}
	exprs := func() {
		k := r.u32()
		out = appendU32(out, k)
		for j := uint32(0); j < k && r.err == nil; j++ {
			out = m.expr(r, out)
		}
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		out = appendU32(out, flags)
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			break
		}
		// Bit 0: passive or declarative; bit 1: explicit table index (if
		// active) and element kind or type; bit 2: expressions, not
		// function indices.
		switch flags & 3 {
		case 0: // active, table 0: offset
			out = m.expr(r, out)
		case 1, 3: // passive, declarative: kind or type
			out = append(out, r.byte())
		case 2: // active, explicit table: table, offset, kind or type
			out = appendU32(out, r.u32())
			out = m.expr(r, out)
			out = append(out, r.byte())
		}
		if flags&4 == 0 {
			funcs()
		} else {
			exprs()
		}
	}
	return out
}

// expr copies a constant expression, renumbering ref.func; out may be nil
// to only skip it.
func (m *module) expr(r *reader, out []byte) []byte {
	c := &coder{m: m, r: r, out: out, constant: true}
	c.run()
	return c.out
}

// custom returns a custom section's new content, nil to drop it.
func (m *module) custom(content []byte) []byte {
	r := &reader{b: content}
	name := r.name()
	if r.err != nil || name != "name" {
		if r.err == nil && name == SectionName {
			return nil // an older rewrite's tag: replaced by ours
		}
		return content
	}
	// The name section: renumber function names (1) and local names (2),
	// keep the module name (0), drop the others (they index labels and
	// other spaces the rewrite does not track). Drop it all if malformed.
	out := appendName(nil, name)
	for !r.done() {
		id := r.byte()
		sub := &reader{b: r.bytes(r.u32())}
		if r.err != nil {
			return nil
		}
		switch id {
		case 0:
			out = appendSection(out, id, sub.b)
		case 1, 2:
			var b []byte
			n := sub.u32()
			b = appendU32(b, n)
			for i := uint32(0); i < n && sub.err == nil; i++ {
				b = appendU32(b, m.fn(sub.u32()))
				if id == 1 {
					b = appendName(b, sub.name())
					continue
				}
				k := sub.u32()
				b = appendU32(b, k)
				for j := uint32(0); j < k && sub.err == nil; j++ {
					b = appendU32(b, sub.u32())
					b = appendName(b, sub.name())
				}
			}
			if sub.err != nil || sub.off != len(sub.b) {
				return nil
			}
			out = appendSection(out, id, b)
		}
	}
	return out
}

// code rewrites the code section and appends the tick function.
func (m *module) code(r *reader) ([]byte, error) {
	n := uint32(0)
	if r.b != nil {
		n = r.u32()
	}
	if int(n) != len(m.funcTypes) {
		return nil, fmt.Errorf("%w: code section has %d bodies for %d functions", ErrMalformed, n, len(m.funcTypes))
	}
	out := make([]byte, 0, len(r.b)+len(r.b)/8+64)
	out = appendU32(out, n+1)
	var buf []byte
	for i := uint32(0); i < n; i++ {
		body := r.bytes(r.u32())
		if r.err != nil {
			return nil, fmt.Errorf("%w: code section: %v", ErrMalformed, r.err)
		}
		var err error
		buf, err = m.body(m.funcImports+i, m.funcTypes[i], body, buf[:0])
		if err != nil {
			return nil, err
		}
		out = appendU32(out, uint32(len(buf)))
		out = append(out, buf...)
	}
	if r.off != len(r.b) {
		return nil, fmt.Errorf("%w: code section: %d bytes left over", ErrMalformed, len(r.b)-r.off)
	}
	// The tick function: charge Chunk ticks, refill when the budget runs
	// out, and return Chunk for the caller's loop counter.
	tick := []byte{0x01, 0x01, 0x7f} // one i32 local
	tick = m.charge(tick, Chunk, 0)
	tick = append(tick, 0x41)
	tick = appendI32(tick, Chunk)
	tick = append(tick, 0x0b)
	out = appendU32(out, uint32(len(tick)))
	return append(out, tick...), nil
}

// charge appends: budget -= n; if budget <= 0 { budget = interrupt() },
// using the i32 local scratch to read the global once.
func (m *module) charge(b []byte, n int32, scratch uint32) []byte {
	b = appendU32(append(b, 0x23), m.budgetIdx) // global.get
	b = appendI32(append(b, 0x41), n)           // i32.const n
	b = append(b, 0x6b)                         // i32.sub
	b = appendU32(append(b, 0x22), scratch)     // local.tee
	b = appendU32(append(b, 0x24), m.budgetIdx) // global.set
	b = appendU32(append(b, 0x20), scratch)     // local.get
	b = append(b, 0x41, 0x00, 0x4c, 0x04, 0x40) // i32.const 0; i32.le_s; if
	b = appendU32(append(b, 0x10), m.importIdx) // call interrupt
	b = appendU32(append(b, 0x24), m.budgetIdx) // global.set
	return append(b, 0x0b)                      // end
}

// body rewrites one function body into out.
func (m *module) body(fidx, typ uint32, body []byte, out []byte) ([]byte, error) {
	if int(typ) >= len(m.paramCounts) {
		return nil, fmt.Errorf("%w: function %d has type %d of %d", ErrMalformed, fidx, typ, len(m.paramCounts))
	}
	r := &reader{b: body}
	groups := r.u32()
	locals := uint64(m.paramCounts[typ])
	for g := uint32(0); g < groups && r.err == nil; g++ {
		locals += uint64(r.u32())
		r.byte()
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: function %d locals: %v", ErrMalformed, fidx, r.err)
	}
	if locals >= 1<<32-1 {
		return nil, fmt.Errorf("%w: function %d has %d locals", ErrMalformed, fidx, locals)
	}
	declared := body[:r.off]
	c := &coder{m: m, r: r, fidx: fidx, counter: uint32(locals), out: m.scratch[:0]}
	c.run()
	m.scratch = c.out
	if c.err != nil {
		return nil, c.err
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: function %d: %v", ErrMalformed, fidx, r.err)
	}
	if c.loops == 0 && !c.calls {
		// Straight-line code: it ends after a bounded number of
		// instructions, and whoever calls it is checked.
		return append(append(out, declared...), c.out...), nil
	}
	// One more i32 local: the loop counter, and scratch for the entry's
	// charge.
	out = appendU32(out, groups+1)
	dr := &reader{b: declared}
	dr.u32()
	out = append(out, declared[dr.off:]...)
	out = append(out, 0x01, 0x7f)
	m.res.Checked++
	m.res.Loops += c.loops
	cost := int32(1)
	if c.loops > 0 {
		cost += Chunk
	}
	out = m.charge(out, cost, c.counter)
	if c.loops > 0 {
		out = append(out, 0x41)
		out = appendI32(out, Chunk)
		out = appendU32(append(out, 0x21), c.counter) // local.set counter
	}
	return append(out, c.out...), nil
}

package instrument

import "fmt"

// coder copies an instruction sequence, renumbering function indices and,
// in a function body, adding a check after every loop header.
type coder struct {
	m        *module
	r        *reader
	out      []byte
	constant bool   // a constant expression: stop after its final end
	fidx     uint32 // function index, for errors
	counter  uint32 // index of the loop counter local
	loops    int
	calls    bool
	from     int // start of the input not yet copied to out
	err      error
}

func (c *coder) unsupported(start int, format string, args ...any) {
	if c.err == nil {
		c.err = &Error{Func: c.fidx, Offset: start, What: fmt.Sprintf(format, args...)}
	}
}

func (c *coder) notRestorable(what string) {
	if !c.constant {
		c.m.notRestore[what] = true
	}
}

func (c *coder) run() {
	r := c.r
	depth := 0
	c.from = r.off
	for c.err == nil && r.err == nil {
		if !c.constant && r.off >= len(r.b) {
			c.flush(r.off)
			return
		}
		start := r.off
		op := r.byte()
		if r.err != nil {
			return
		}
		switch {
		case op == 0x00, op == 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b,
			op >= 0x45 && op <= 0xc4, op == 0xd1:
			// no immediates
		case op == 0x0b: // end
			if depth == 0 && c.constant {
				c.flush(r.off)
				return
			}
			depth--
		case op == 0x02, op == 0x04: // block, if
			c.blockType(start)
			depth++
		case op == 0x03: // loop: copy it, then add the check
			c.blockType(start)
			depth++
			if !c.constant {
				c.flush(r.off)
				c.loops++
				c.loopCheck()
				continue
			}
		case op == 0x0c, op == 0x0d, op == 0x25, op == 0x3f, op == 0x40:
			r.u32()
		case op >= 0x20 && op <= 0x22: // local.get, local.set, local.tee
			if idx := r.u32(); idx >= c.counter && !c.constant && r.err == nil {
				c.invalid(start, "local %d of %d", idx, c.counter)
			}
		case op == 0x23, op == 0x24: // global.get, global.set
			if idx := r.u32(); idx >= c.m.globImports+c.m.globDefs && r.err == nil {
				c.invalid(start, "global %d of %d", idx, c.m.globImports+c.m.globDefs)
			}
		case op == 0x26: // table.set
			r.u32()
			c.notRestorable("table.set")
		case op == 0x0e: // br_table
			n := r.u32()
			for i := uint64(0); i <= uint64(n) && r.err == nil; i++ {
				r.u32()
			}
		case op == 0x10, op == 0xd2: // call, ref.func
			idx := r.u32()
			if op == 0x10 {
				c.calls = true
			}
			if n := c.m.funcImports + uint32(len(c.m.funcTypes)); idx >= n && r.err == nil {
				c.invalid(start, "function %d of %d", idx, n)
			}
			c.flush(start)
			c.out = appendU32(append(c.out, op), c.m.fn(idx))
			c.from = r.off
			continue
		case op == 0x11: // call_indirect
			if t := r.u32(); t >= uint32(len(c.m.paramCounts)) && r.err == nil {
				c.invalid(start, "type %d of %d", t, len(c.m.paramCounts))
			}
			r.u32()
			c.calls = true
		case op == 0x1c: // select t*
			r.bytes(r.u32())
		case op >= 0x28 && op <= 0x3e: // loads and stores
			c.memarg()
		case op == 0x41:
			r.skipLEB(5)
		case op == 0x42:
			r.skipLEB(10)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0: // ref.null
			r.byte()
		case op == 0xfc:
			c.prefixFC(start)
		case op == 0xfd:
			c.prefixFD(start)
		default:
			c.unsupported(start, "opcode %#02x%s", op, opName(op))
		}
	}
}

// flush copies the input up to end, unchanged, to out.
func (c *coder) flush(end int) {
	c.out = append(c.out, c.r.b[c.from:end]...)
	c.from = end
}

// invalid records an index out of range: the module is invalid, and the
// rewrite must not make it valid by adding what the index names.
func (c *coder) invalid(start int, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: function %d, byte %#x of its body: %s", ErrMalformed, c.fidx, start, fmt.Sprintf(format, args...))
	}
}

// blockType skips a block type, checking a type index.
func (c *coder) blockType(start int) {
	if t := c.r.s33(); t >= int64(len(c.m.paramCounts)) && c.r.err == nil {
		c.invalid(start, "block type %d of %d", t, len(c.m.paramCounts))
	}
}

func (c *coder) memarg() {
	c.r.u32()       // alignment
	c.r.skipLEB(10) // offset
}

// loopCheck appends: counter -= 1; if counter == 0 { counter = tick() }.
func (c *coder) loopCheck() {
	b := appendU32(append(c.out, 0x20), c.counter) // local.get
	b = append(b, 0x41, 0x01, 0x6b)                // i32.const 1; i32.sub
	b = appendU32(append(b, 0x22), c.counter)      // local.tee
	b = append(b, 0x45, 0x04, 0x40)                // i32.eqz; if
	b = appendU32(append(b, 0x10), c.m.tickIdx)    // call tick
	b = appendU32(append(b, 0x21), c.counter)      // local.set
	c.out = append(b, 0x0b)                        // end
}

func (c *coder) prefixFC(start int) {
	r := c.r
	sub := r.u32()
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init
		r.u32()
		r.u32()
	case sub == 9: // data.drop
		r.u32()
		c.notRestorable("data.drop")
	case sub == 10: // memory.copy
		r.u32()
		r.u32()
	case sub == 11: // memory.fill
		r.u32()
	case sub == 12: // table.init
		r.u32()
		r.u32()
		c.notRestorable("table.init")
	case sub == 13: // elem.drop
		r.u32()
		c.notRestorable("elem.drop")
	case sub == 14: // table.copy
		r.u32()
		r.u32()
		c.notRestorable("table.copy")
	case sub == 15: // table.grow
		r.u32()
		c.notRestorable("table.grow")
	case sub == 16: // table.size
		r.u32()
	case sub == 17: // table.fill
		r.u32()
		c.notRestorable("table.fill")
	default:
		c.unsupported(start, "opcode 0xfc %d", sub)
	}
}

func (c *coder) prefixFD(start int) {
	r := c.r
	sub := r.u32()
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load zero
		c.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		c.memarg()
		r.byte()
	case sub <= 255:
		// no immediates
	default:
		c.unsupported(start, "opcode 0xfd %d (relaxed SIMD is not enabled)", sub)
	}
}

func opName(op byte) string {
	switch op {
	case 0x06, 0x07, 0x08, 0x09, 0x0a, 0x18, 0x19, 0x1f:
		return " (exception handling is not enabled)"
	case 0x12, 0x13:
		return " (tail calls are not enabled)"
	case 0x14, 0x15, 0xd3, 0xd4, 0xd5, 0xd6:
		return " (typed function references are not enabled)"
	case 0xfe:
		return " (threads are not enabled)"
	}
	return " (unknown)"
}

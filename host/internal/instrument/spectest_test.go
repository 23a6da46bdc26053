package instrument_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/host/internal/instrument"
)

// The WebAssembly spec test suite shipped inside the wazero module: every
// script runs twice, once on the original modules and once on their
// instrumented versions (with a tiny budget, so the interrupt import runs
// often), and every action must give the same result on both.

type script struct {
	Commands []command `json:"commands"`
}

type command struct {
	Type       string `json:"type"`
	Line       int    `json:"line"`
	Name       string `json:"name"`
	Filename   string `json:"filename"`
	As         string `json:"as"`
	ModuleType string `json:"module_type"`
	Action     struct {
		Type   string  `json:"type"`
		Module string  `json:"module"`
		Field  string  `json:"field"`
		Args   []value `json:"args"`
	} `json:"action"`
}

type value struct {
	Type     string `json:"type"`
	LaneType string `json:"lane_type"`
	Value    any    `json:"value"`
}

func wazeroDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("go list wazero: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestSpecSuiteBehavesTheSame(t *testing.T) {
	t.Parallel()
	base := filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest")
	spectest, err := os.ReadFile(filepath.Join(base, "testdata", "spectest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	t.Cleanup(func() {
		t.Logf("%d scripts, %d actions compared, %d interrupt calls", total, specActions.Load(), specInterrupts.Load())
		if specActions.Load() < 10000 || specInterrupts.Load() < 1000 {
			t.Errorf("only %d actions compared and %d interrupt calls", specActions.Load(), specInterrupts.Load())
		}
	})
	for _, v := range []string{"v1", "v2"} {
		dir := filepath.Join(base, v, "testdata")
		scripts, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(scripts) == 0 {
			t.Fatalf("no spec scripts in %s (%v)", dir, err)
		}
		total += len(scripts)
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			for _, s := range scripts {
				name := strings.TrimSuffix(filepath.Base(s), ".json")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					runScript(t, dir, s, spectest)
				})
			}
		})
	}
	if total < 100 {
		t.Fatalf("only %d spec scripts", total)
	}
}

// side is one of the two runs of a script.
type side struct {
	name       string
	instrument bool
	rt         wazero.Runtime
	modules    map[string]api.Module
	last       api.Module
	interrupts *atomic.Int64
}

func newSide(t *testing.T, ctx context.Context, name string, instr bool, spectest []byte) *side {
	s := &side{name: name, instrument: instr, modules: map[string]api.Module{}, interrupts: new(atomic.Int64)}
	s.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(specCache))
	t.Cleanup(func() { s.rt.Close(ctx) })
	if _, err := s.rt.InstantiateWithConfig(ctx, spectest, wazero.NewModuleConfig()); err != nil {
		t.Fatalf("instantiate spectest module: %v", err)
	}
	if instr {
		_, err := s.rt.NewHostModuleBuilder(instrument.ImportModule).NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				s.interrupts.Add(1)
				stack[0] = specBudget
			}), nil, []api.ValueType{api.ValueTypeI32}).
			Export(instrument.ImportName).Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

const specBudget = 7

var (
	specCache                   = wazero.NewCompilationCache()
	specActions, specInterrupts atomic.Int64
)

// load compiles bin (instrumented on the instrumented side); the error is
// the instrumenter's or wazero's.
func (s *side) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	if s.instrument {
		res, err := instrument.Instrument(bin, instrument.Options{Budget: specBudget, ExportGlobals: true})
		if err != nil {
			return nil, err
		}
		bin = res.Binary
	}
	return s.rt.CompileModule(ctx, bin)
}

func (s *side) instantiate(ctx context.Context, bin []byte, name string) (api.Module, error) {
	cm, err := s.compile(ctx, bin)
	if err != nil {
		return nil, err
	}
	return s.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(name))
}

// outcome is an action's result in a comparable form.
type outcome string

func (s *side) act(ctx context.Context, c *command) outcome {
	m := s.last
	if c.Action.Module != "" {
		m = s.modules[c.Action.Module]
	}
	if m == nil {
		return "no module"
	}
	switch c.Action.Type {
	case "invoke":
		fn := m.ExportedFunction(c.Action.Field)
		if fn == nil {
			return outcome("no export " + c.Action.Field)
		}
		args, err := encodeArgs(c.Action.Args)
		if err != nil {
			return outcome("bad args: " + err.Error())
		}
		res, err := fn.Call(ctx, args...)
		if err != nil {
			msg, _, _ := strings.Cut(err.Error(), "\n")
			return outcome("error: " + msg)
		}
		return formatResults(fn.Definition().ResultTypes(), res)
	case "get":
		g := m.ExportedGlobal(c.Action.Field)
		if g == nil {
			return outcome("no global " + c.Action.Field)
		}
		return formatResults([]api.ValueType{g.Type()}, []uint64{g.Get()})
	}
	return outcome("unknown action " + c.Action.Type)
}

func formatResults(types []api.ValueType, res []uint64) outcome {
	var b strings.Builder
	i := 0
	for _, t := range types {
		switch t {
		case api.ValueTypeExternref, 0x70: // funcref
			// References are host pointers: compare only null or not.
			fmt.Fprintf(&b, "%s:%v ", api.ValueTypeName(t), res[i] == 0)
			i++
		case 0x7b: // v128
			fmt.Fprintf(&b, "v128:%x:%x ", res[i], res[i+1])
			i += 2
		default:
			fmt.Fprintf(&b, "%s:%x ", api.ValueTypeName(t), res[i])
			i++
		}
	}
	return outcome(b.String())
}

func encodeArgs(vals []value) ([]uint64, error) {
	var out []uint64
	for _, v := range vals {
		switch v.Type {
		case "i32", "f32", "i64", "f64":
			s, _ := v.Value.(string)
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %q", v.Type, s)
			}
			out = append(out, n)
		case "externref", "funcref":
			s, _ := v.Value.(string)
			if s == "null" || s == "" {
				out = append(out, 0)
				continue
			}
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, err
			}
			out = append(out, n+1)
		case "v128":
			lanes, _ := v.Value.([]any)
			var buf [16]byte
			if len(lanes) == 0 {
				return nil, errors.New("v128 without lanes")
			}
			width := 16 / len(lanes)
			for i, l := range lanes {
				s, _ := l.(string)
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("v128 lane %q", s)
				}
				switch width {
				case 1:
					buf[i] = byte(n)
				case 2:
					binary.LittleEndian.PutUint16(buf[2*i:], uint16(n))
				case 4:
					binary.LittleEndian.PutUint32(buf[4*i:], uint32(n))
				case 8:
					binary.LittleEndian.PutUint64(buf[8*i:], n)
				}
			}
			out = append(out, binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:]))
		default:
			return nil, fmt.Errorf("value type %q", v.Type)
		}
	}
	return out, nil
}

func runScript(t *testing.T, dir, path string, spectest []byte) {
	ctx := context.Background()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc script
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	orig := newSide(t, ctx, "original", false, spectest)
	inst := newSide(t, ctx, "instrumented", true, spectest)
	sides := []*side{orig, inst}
	read := func(c *command) []byte {
		b, err := os.ReadFile(filepath.Join(dir, c.Filename))
		if err != nil {
			t.Fatalf("line %d: %v", c.Line, err)
		}
		return b
	}
	checked := 0
	for i := 0; i < len(sc.Commands); i++ {
		c := &sc.Commands[i]
		where := fmt.Sprintf("%s:%d %s", filepath.Base(path), c.Line, c.Type)
		switch c.Type {
		case "module":
			bin := read(c)
			reg := ""
			if i+1 < len(sc.Commands) && sc.Commands[i+1].Type == "register" {
				reg = sc.Commands[i+1].As
				i++
			}
			var errs [2]error
			for k, s := range sides {
				m, err := s.instantiate(ctx, bin, reg)
				errs[k] = err
				s.last = m
				if c.Name != "" {
					s.modules[c.Name] = m
				}
			}
			if (errs[0] == nil) != (errs[1] == nil) {
				t.Fatalf("%s %s: original: %v; instrumented: %v", where, c.Filename, errs[0], errs[1])
			}
		case "register":
			for _, s := range sides {
				m := s.last
				if c.Name != "" {
					m = s.modules[c.Name]
				}
				if m == nil {
					t.Fatalf("%s: register of a missing module", where)
				}
				// A module instantiated without a name can be registered
				// only by instantiating it again; the scripts register
				// right after the module command, handled above.
				t.Fatalf("%s: register %q of an already instantiated module is not supported", where, c.As)
			}
		case "assert_return", "action", "assert_trap", "assert_exhaustion", "assert_exception":
			a, b := orig.act(ctx, c), inst.act(ctx, c)
			if a != b {
				t.Fatalf("%s %s%v: original: %s; instrumented: %s", where, c.Action.Field, c.Action.Args, a, b)
			}
			checked++
		case "assert_invalid", "assert_malformed", "assert_unlinkable", "assert_uninstantiable":
			if c.ModuleType == "text" {
				continue
			}
			bin := read(c)
			var errs [2]error
			for k, s := range sides {
				_, errs[k] = s.instantiate(ctx, bin, "")
			}
			if (errs[0] == nil) != (errs[1] == nil) {
				t.Fatalf("%s %s: original: %v; instrumented: %v", where, c.Filename, errs[0], errs[1])
			}
		default:
			t.Fatalf("%s: unknown command", where)
		}
	}
	specActions.Add(int64(checked))
	specInterrupts.Add(inst.interrupts.Load())
}

package engine

import (
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/instrument"
)

type signature struct{ params, results []api.ValueType }

func (s signature) String() string {
	f := func(ts []api.ValueType) string {
		out := "("
		for i, t := range ts {
			if i > 0 {
				out += ", "
			}
			out += api.ValueTypeName(t)
		}
		return out + ")"
	}
	return f(s.params) + " -> " + f(s.results)
}

var exports = []struct {
	name     string
	sig      signature
	required bool
}{
	{abi.ExportABIVersion, signature{nil, []api.ValueType{i32}}, true},
	{abi.ExportHandle, signature{[]api.ValueType{i32}, []api.ValueType{i64}}, true},
	{abi.ExportInit, signature{nil, []api.ValueType{i32}}, false},
	{abi.ExportInitialize, signature{nil, nil}, false},
}

func validate(cm wazero.CompiledModule, limitPages uint32) error {
	fns := cm.ExportedFunctions()
	for _, e := range exports {
		d, ok := fns[e.name]
		if !ok {
			if e.required {
				return fmt.Errorf("missing required export %q %s (ABI v%d)", e.name, e.sig, abi.Version)
			}
			continue
		}
		got := signature{d.ParamTypes(), d.ResultTypes()}
		if !slices.Equal(got.params, e.sig.params) || !slices.Equal(got.results, e.sig.results) {
			return fmt.Errorf("export %q has signature %s, want %s", e.name, got, e.sig)
		}
	}
	mems := cm.ExportedMemories()
	mem, ok := mems[abi.ExportMemory]
	if !ok {
		return fmt.Errorf("missing required export %q (memory)", abi.ExportMemory)
	}
	if limitPages > 0 && mem.Min() > limitPages {
		return fmt.Errorf("initial memory of %d KiB exceeds max_memory of %d KiB", mem.Min()*64, limitPages*64)
	}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		got := signature{d.ParamTypes(), d.ResultTypes()}
		switch mod {
		case "wasi_snapshot_preview1":
			continue
		case "env":
			if name == "abort" {
				continue
			}
		case abi.ModuleName:
			if name == instrument.ImportName {
				continue // added by the instrumentation, refused in the guest's own imports
			}
			if want, ok := hostSignature(name); ok {
				if !slices.Equal(got.params, want.params) || !slices.Equal(got.results, want.results) {
					return fmt.Errorf("import %s.%s has signature %s, want %s", mod, name, got, want)
				}
				continue
			}
			return fmt.Errorf("imports %s.%s, which ABI v%d does not define", mod, name, abi.Version)
		}
		return fmt.Errorf("imports %s.%s %s, which the host does not provide", mod, name, got)
	}
	return nil
}

func hostSignature(name string) (signature, bool) {
	for _, f := range hostFuncs {
		if f.name == name {
			return signature{f.params, f.results}, true
		}
	}
	return signature{}, false
}

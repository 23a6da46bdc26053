package instrument_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmserve/wasmserve/host/internal/instrument"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// FuzzInstrument: the rewrite never panics, and whenever wazero accepts the
// input it accepts the output (or the input used a reserved name).
func FuzzInstrument(f *testing.F) {
	f.Add(wat2wasm(f, benchWAT))
	root := testguest.Root()
	for _, p := range []string{"hello-wat/hello.wasm"} {
		if b, err := os.ReadFile(filepath.Join(root, "guests", "examples", p)); err == nil {
			f.Add(b)
		}
	}
	for _, p := range []string{"v2/testdata/br_table.0.wasm", "v2/testdata/simd_lane.0.wasm", "v2/testdata/elem.5.wasm", "v2/testdata/call_indirect.0.wasm", "v2/testdata/ref_func.0.wasm"} {
		if b, err := os.ReadFile(filepath.Join(wazeroDir(f), "internal", "integration_test", "spectest", p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	valid := func(bin []byte) (err error) {
		defer func() {
			if p := recover(); p != nil {
				// wazero's validation panics on some malformed modules:
				// count them as refused.
				err = fmt.Errorf("wazero panicked: %v", p)
			}
		}()
		cm, err := rt.CompileModule(ctx, bin)
		if err == nil {
			cm.Close(ctx)
		}
		return err
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		res, err := instrument.Instrument(bin, instrument.Options{Budget: 100, ExportGlobals: true})
		if err != nil {
			if !plausible(bin) {
				return // wazero would allocate a vector of the count given before refusing it
			}
			if !errors.Is(err, instrument.ErrReserved) && valid(bin) == nil {
				t.Fatalf("wazero accepts the module, the rewrite refuses it: %v", err)
			}
			return
		}
		if valid(bin) != nil {
			return
		}
		if err := valid(res.Binary); err != nil {
			t.Fatalf("wazero accepts the module but not its rewrite: %v", err)
		}
	})
}

// plausible reports whether every vector section's count is at most its
// length in bytes.
func plausible(bin []byte) bool {
	if len(bin) < 8 {
		return false
	}
	b := bin[8:]
	for len(b) > 0 {
		id := b[0]
		size, n := leb(b[1:])
		if n == 0 || uint64(len(b)-1-n) < size {
			return false
		}
		content := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id >= 1 && id <= 11 && id != 8 {
			count, k := leb(content)
			if k == 0 || count > uint64(len(content)) {
				return false
			}
		}
	}
	return true
}

func leb(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

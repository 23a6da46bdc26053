package engine_test

import (
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// TestSDKQueryAndJSONHelpers calls the JSON endpoint of the C and Rust
// examples, built on their SDKs' query-string and JSON-escape helpers, with
// names that need decoding and escaping, and decodes the answer as JSON.
func TestSDKQueryAndJSONHelpers(t *testing.T) {
	t.Parallel()
	names := []string{
		"plain",
		"two words",
		`quote " and backslash \`,
		"line\nbreak\ttab\x01\x1f",
		"café ☕ 𝄞",
		"a&b=c+d%",
	}
	for _, guest := range []string{"hello-c", "hello-rust"} {
		t.Run(guest, func(t *testing.T) {
			t.Parallel()
			inst := instance(t, nil, 1, func(o *engine.Options) {
				o.Path = testguest.Module(t, guest, "hello.wasm")
				o.MaxMemory = 16 << 20
				o.Config = []engine.ConfigEntry{{Key: "greeting", Value: `hi "there"`}}
			})
			queries := map[string]string{"": "world", "other=1&name=": ""}
			for _, n := range names {
				queries["x=1&name="+url.QueryEscape(n)+"&name=second"] = n
			}
			for q, want := range queries {
				resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/json", Query: q}})
				if err != nil {
					t.Fatalf("GET /json?%s: %v", q, err)
				}
				var got struct {
					Greeting, Name string
					Counter        *int
				}
				if err := json.Unmarshal(resp.Body, &got); err != nil || resp.Status != 200 {
					t.Fatalf("GET /json?%s = %d %q: not JSON: %v", q, resp.Status, resp.Body, err)
				}
				if got.Greeting != `hi "there"` || got.Name != want || got.Counter == nil {
					t.Errorf("GET /json?%s = %+v (%s), want greeting %q, name %q and a counter", q, got, resp.Body, `hi "there"`, want)
				}
			}
		})
	}
}

// TestRustSDKCargo builds the Rust SDK and hello-rust with Cargo, offline,
// using the rustc guests/sdk/rust/wasm-rustc.sh finds (and the cargo next
// to it), runs the SDK's unit tests on the host, and serves a request
// from the module Cargo built.
func TestRustSDKCargo(t *testing.T) {
	t.Parallel()
	root := testguest.Root()
	out, err := exec.Command("sh", filepath.Join(root, "guests/sdk/rust/wasm-rustc.sh")).Output()
	if err != nil {
		t.Fatalf("wasm-rustc.sh: %v", err)
	}
	rustc, target, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	cargo := filepath.Join(filepath.Dir(rustc), "cargo")
	targetDir := t.TempDir()
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(cargo, args...)
		cmd.Dir = filepath.Join(root, dir)
		cmd.Env = append(cmd.Environ(), "RUSTC="+rustc, "CARGO_TARGET_DIR="+targetDir)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s in %s: %v\n%s", cargo, strings.Join(args, " "), dir, err, msg)
		}
	}
	run("guests/sdk/rust", "test", "--offline", "--quiet")
	run("guests/examples/hello-rust", "build", "--offline", "--release", "--target", target)
	inst := instance(t, nil, 1, func(o *engine.Options) {
		o.Path = filepath.Join(targetDir, target, "release", "hello.wasm")
		o.MaxMemory = 16 << 20
	})
	resp, err := inst.Handle(&engine.Call{Request: &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"}})
	if err != nil || string(resp.Body) != "hello, world" {
		t.Fatalf("GET / = %q, %v; want hello, world", resp.Body, err)
	}
}

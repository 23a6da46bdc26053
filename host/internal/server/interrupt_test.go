package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// loopingGuest answers "build-B" but loops forever in the given start-up
// phase: "start", "_initialize" or "wasmserve_init".
func loopingGuest(phase string) string {
	loop := `(loop $forever (global.set $n (i32.add (global.get $n) (i32.const 1))) (br $forever))`
	fn := map[string]string{
		"start":          `(func $spin ` + loop + `) (start $spin)`,
		"_initialize":    `(func (export "_initialize") ` + loop + `)`,
		"wasmserve_init": `(func (export "wasmserve_init") (result i32) ` + loop + ` (i32.const 0))`,
	}[phase]
	return strings.Replace(buildB, `(memory (export "memory") 1)`,
		`(memory (export "memory") 1) (global $n (mut i32) (i32.const 0)) `+fn, 1)
}

func TestStartUpLoopExitsNamingThePhase(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{"start", "_initialize", "wasmserve_init"} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			mod := filepath.Join(t.TempDir(), "loop.wasm")
			if err := os.WriteFile(mod, testguest.WAT(t, loopingGuest(phase)), 0o644); err != nil {
				t.Fatal(err)
			}
			p := wasmserve(t, writeINIModule(t, "bind = 127.0.0.1:0\nworkers = 2\ninit_timeout = 500 milliseconds", mod), nil, nil)
			if code := p.exit(t); code == 0 {
				t.Fatalf("exit status 0 with a looping %s", phase)
			}
			want := phase + " exceeded init_timeout of 500ms"
			if p.log.count(want, "phase="+phase, "worker=", "limit=500ms") == 0 {
				t.Errorf("no log line saying %q with the phase, worker and limit:\n%s", want, p.log.String())
			}
		})
	}
}

func TestReloadToALoopingInitKeepsTheOldGeneration(t *testing.T) {
	t.Parallel()
	p := startReload(t, testguest.WAT(t, buildB), "", "init_timeout = 500 milliseconds", nil, "--debug")
	if code, body, _ := p.get(t, "/"); code != 200 || body != "build-B" {
		t.Fatalf("GET / = %d %q before the reload", code, body)
	}
	renameOver(t, p.mod, testguest.WAT(t, loopingGuest("wasmserve_init")))
	p.signal(t, syscall.SIGHUP)
	p.log.waitFor(t, waitTimeout, 1, `msg="reload failed`)
	if p.log.count("wasmserve_init exceeded init_timeout of 500ms") == 0 {
		t.Errorf("the failed reload does not name the phase and limit:\n%s", p.log.String())
	}
	for range 3 {
		if code, body, h := p.get(t, "/"); code != 200 || body != "build-B" || h.Get("X-Wasmserve-Generation") != "1" {
			t.Fatalf("after the failed reload: %d %q from generation %q, want build-B from 1", code, body, h.Get("X-Wasmserve-Generation"))
		}
	}
}

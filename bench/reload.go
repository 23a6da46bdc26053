package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchReload measures the time from writing a new module to the first
// response from the new generation (compilation cache off and warm, for the
// Go guest and a small guest), and request latency while reloading.
func benchReload(o *options, b *builds, r *report) error {
	var sb strings.Builder
	sb.WriteString("## Reload\n\nTime from renaming a new module over the served one (`--reload`, 300 ms settle time included) to the first response from the new generation; median of the runs.\n\n| guest | compilation cache | write → new generation answers |\n|---|---|---|\n")
	for _, g := range b.guests {
		if g.name != "go" && g.name != "wat" && g.name != "c" {
			continue
		}
		for _, cache := range []string{"off", "warm"} {
			d, err := reloadLatency(o, b, g, cache)
			if err != nil {
				return err
			}
			fmt.Fprintf(&sb, "| %s | %s | %s |\n", g.name, cache, d.Round(time.Millisecond))
		}
	}
	if err := reloadUnderLoad(o, b, r); err != nil {
		return err
	}
	r.notes = append(r.notes, sb.String())
	fmt.Println("reload done")
	return nil
}

func reloadLatency(o *options, b *builds, g guest, cache string) (time.Duration, error) {
	dir, err := os.MkdirTemp(o.work, "reload-")
	if err != nil {
		return 0, err
	}
	mod := filepath.Join(dir, "app.wasm")
	bin, err := os.ReadFile(g.module)
	if err != nil {
		return 0, err
	}
	os.WriteFile(mod, bin, 0o644)
	cacheDir := "off"
	if cache == "warm" {
		cacheDir = filepath.Join(o.work, "cache")
	}
	ini := filepath.Join(dir, "app.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[server:main]\nfactory = http\nworkers = 2\naccess_log = false\ndrain_time = 0\ncompilation_cache = %s\n[app:main]\nfactory = app.wasm\n", cacheDir)), 0o644)
	s, err := start(o, "reload "+g.name+" "+cache, b.wasmserve, "--reload", "--debug", "--bind", "127.0.0.1:PORT", ini)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	runs := 3
	if o.smoke {
		runs = 1
	}
	var ds []float64
	for i := 0; i < runs; i++ {
		want := fmt.Sprint(i + 2)
		tmp := mod + ".tmp"
		os.WriteFile(tmp, bin, 0o644)
		t0 := time.Now()
		if err := os.Rename(tmp, mod); err != nil {
			return 0, err
		}
		for {
			resp, err := http.Get("http://" + s.addr + "/")
			if err == nil {
				resp.Body.Close()
				if resp.Header.Get("X-Wasmserve-Generation") == want {
					break
				}
			}
			if time.Since(t0) > 60*time.Second {
				return 0, fmt.Errorf("reload of %s (cache %s) not served within 60s", g.name, cache)
			}
			time.Sleep(2 * time.Millisecond)
		}
		ds = append(ds, float64(time.Since(t0)))
	}
	return time.Duration(median(resultsOf(ds)).rps), nil
}

func resultsOf(v []float64) []result {
	out := make([]result, len(v))
	for i, x := range v {
		out[i].rps = x
	}
	return out
}

// reloadUnderLoad compares request latency in steady state with latency
// while the server reloads (SIGHUP) every second.
func reloadUnderLoad(o *options, b *builds, r *report) error {
	var mod string
	for _, g := range b.guests {
		if g.name == "go" {
			mod = g.module
		}
	}
	ini := wasmserveINI(o, "reload-load", "http", mod, "")
	s, err := start(o, "wasmserve (go guest), steady", b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
	if err != nil {
		return err
	}
	defer s.stop()
	steady, err := wrk(o, s, "/", 0)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.cmd.Process.Signal(syscall.SIGHUP)
			}
		}
	}()
	during, err := wrk(o, s, "/", 0)
	close(done)
	if err != nil {
		return err
	}
	r.tables = append(r.tables, table{title: "Requests during reloads (SIGHUP every second)", unit: "requests/s", rows: []row{
		{name: "wasmserve (go guest), steady", r: steady},
		{name: "wasmserve (go guest), reloading", r: during},
	}})
	return nil
}

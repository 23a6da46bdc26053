package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var (
	reCompile = regexp.MustCompile(`msg="module compiled".* compile_time=(\S+) cache_hit=(\w+)`)
	reReady   = regexp.MustCompile(`msg="workers ready".* workers=(\d+) .*elapsed=(\S+)`)
)

// benchInstances measures, per guest language, module size, compile time
// with a cold and a warm compilation cache, instantiation time per worker
// and memory per worker.
func benchInstances(o *options, b *builds, r *report) error {
	var sb strings.Builder
	sb.WriteString("## Instance costs\n\nPer guest: module size; compile time with an empty and with a warm on-disk compilation cache; time to instantiate and initialise the pool, per worker (16 workers); resident memory per worker (RSS with 17 workers minus RSS with 1, over 16; within noise for the small guests).\n\n| guest | module | compile (cold) | compile (cached) | instantiate per worker | memory per worker |\n|---|---|---|---|---|---|\n")
	for _, g := range b.guests {
		st, err := os.Stat(g.module)
		if err != nil {
			return err
		}
		cache := filepath.Join(o.work, "cache-"+g.name)
		os.RemoveAll(cache)
		var cold, warm, inst time.Duration
		var rss [2]int64
		for i, workers := range []int{1, 17} {
			ini := filepath.Join(o.work, "inst-"+g.name+".ini")
			os.WriteFile(ini, []byte(fmt.Sprintf("[server:main]\nfactory = http\nworkers = %d\naccess_log = false\ncompilation_cache = %s\ndrain_time = 0\n[app:main]\nfactory = %s\n", workers, cache, g.module)), 0o644)
			s, err := start(o, "instances "+g.name, b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
			if err != nil {
				return err
			}
			rss[i] = s.rss()
			logb, _ := os.ReadFile(s.log)
			s.stop()
			c, n, e := parseStartup(string(logb))
			if i == 0 {
				cold = c
			} else {
				warm = c
				if n > 0 {
					inst = e / time.Duration(n)
				}
			}
		}
		fmt.Fprintf(&sb, "| %s | %.1f KiB | %s | %s | %s | %.2f MiB |\n", g.name, float64(st.Size())/1024,
			cold.Round(10*time.Microsecond), warm.Round(10*time.Microsecond), inst.Round(time.Microsecond), float64(rss[1]-rss[0])/16/(1<<20))
	}
	r.notes = append(r.notes, sb.String())
	fmt.Println("instance costs done")
	return nil
}

func parseStartup(log string) (compile time.Duration, workers int, elapsed time.Duration) {
	if m := reCompile.FindStringSubmatch(log); m != nil {
		compile, _ = time.ParseDuration(m[1])
	}
	if m := reReady.FindStringSubmatch(log); m != nil {
		fmt.Sscan(m[1], &workers)
		total, _ := time.ParseDuration(m[2])
		elapsed = total - compile
	}
	return
}

package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// benchIsolation serves GET / from each example guest with its shipped
// app.ini twice: as shipped (isolation = worker) and with isolation =
// request (set through the environment, WASMSERVE_ISOLATION), so that the
// cost of resetting an instance after every request is measured side by
// side, per language.
func benchIsolation(o *options, b *builds, r *report) error {
	var targets []httpTarget
	for _, g := range b.guests {
		ini := filepath.Join(filepath.Dir(g.module), "app.ini")
		targets = append(targets,
			httpTarget{g.name + " guest, isolation = worker", []string{b.wasmserve, "--bind", "127.0.0.1:PORT", ini}},
			httpTarget{g.name + " guest, isolation = request", []string{"env", "WASMSERVE_ISOLATION=request", b.wasmserve, "--bind", "127.0.0.1:PORT", ini}})
	}
	servers, stop, err := startAll(o, targets, func(*server) error { return nil })
	defer stop()
	if err != nil {
		return err
	}
	runs := make([][]result, len(servers))
	for round := 0; round < o.rounds; round++ {
		for _, i := range order(round, len(servers)) {
			res, err := wrk(o, servers[i], "/", 0)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], res)
		}
	}
	tab := table{title: "Isolation: GET / per guest, worker vs request mode", unit: "requests/s"}
	var ratios []string
	for i, s := range servers {
		tab.rows = append(tab.rows, row{name: s.name, r: median(runs[i])})
		if i%2 == 1 {
			w, q := tab.rows[i-1].r, tab.rows[i].r
			ratios = append(ratios, fmt.Sprintf("%s %.2f× (CPU/req %s → %s)", strings.SplitN(s.name, " ", 2)[0], q.rps/w.rps, w.cpuPerRq.Round(100), q.cpuPerRq.Round(100)))
		}
	}
	tab.note = "Each example with its shipped app.ini, as shipped and with `WASMSERVE_ISOLATION=request`. " +
		"Requests/s in request mode over worker mode: " + strings.Join(ratios, "; ") + "."
	r.tables = append(r.tables, tab)
	fmt.Println("isolation done")
	return nil
}

package main

import "fmt"

// benchTimeout compares a CPU-bound guest with request_timeout off and on:
// with it on, wazero checks for cancellation at every loop header.
func benchTimeout(o *options, b *builds, r *report) error {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, c := range []struct{ name, extra string }{
		{"request_timeout = 0 (off)", "request_timeout = 0"},
		{"request_timeout = 30 seconds", "request_timeout = 30 seconds"},
	} {
		ini := wasmserveINI(o, "cpu-"+slug(c.name), "http", b.cpuGuest, c.extra)
		s, err := start(o, c.name, b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	runs := make([][]result, len(servers))
	for round := 0; round < o.rounds; round++ {
		for _, i := range order(round, len(servers)) {
			s := servers[i]
			res, err := wrk(o, s, "/", 0)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], res)
		}
	}
	t := table{title: "Timeout cost (CPU-bound guest, 2M-iteration loop)", unit: "requests/s"}
	for i, s := range servers {
		t.rows = append(t.rows, row{name: s.name, r: median(runs[i])})
	}
	r.tables = append(r.tables, t)
	fmt.Println("timeout cost done")
	return nil
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// shaPath is the CPU-bound request: the SHA-256 chain of a 16 KiB body,
// 4 rounds (64 KiB hashed per request).
const (
	shaPath = "/sha?n=4"
	shaBody = 16 << 10
)

// benchCPU compares a realistic CPU-bound request (bench/guests/sha-go and
// sha-c: a SHA-256 chain over the body) in a Go and a C guest, with
// request_timeout off and on, against the same work in native Go.
func benchCPU(o *options, b *builds, r *report) error {
	// Native Go's crypto/sha256 uses the CPU's SHA instructions, which
	// WebAssembly does not have; the second native row turns them off.
	targets := []httpTarget{
		{"native Go net/http", []string{b.native, "-addr", "127.0.0.1:PORT"}},
		{"native Go net/http, GODEBUG=cpu.sha=off", []string{"env", "GODEBUG=cpu.sha=off", b.native, "-addr", "127.0.0.1:PORT"}},
	}
	for _, g := range []struct{ name, module string }{{"go", b.shaGo}, {"c", b.shaC}} {
		for _, c := range []struct{ name, extra string }{
			{"request_timeout = 0", "request_timeout = 0"},
			{"request_timeout = 30 seconds", "request_timeout = 30 seconds"},
		} {
			ini := wasmserveINI(o, "sha-"+g.name+"-"+slug(c.name), "http", g.module, c.extra)
			t := httpTarget{fmt.Sprintf("wasmserve (%s guest, %s)", g.name, c.name), []string{b.wasmserve, "--bind", "127.0.0.1:PORT", ini}}
			targets = append(targets, t)
		}
	}
	servers := make([]*server, 0, len(targets))
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var want []byte
	for _, t := range targets {
		s, err := start(o, t.name, t.argv...)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		got, err := shaAnswer(s)
		if err != nil {
			return err
		}
		if want == nil {
			want = got
		} else if !bytes.Equal(got, want) {
			return fmt.Errorf("%s: POST %s answered %q, native Go %q", s.name, shaPath, got, want)
		}
	}
	runs := make([][]result, len(servers))
	for round := 0; round < o.rounds; round++ {
		for _, i := range order(round, len(servers)) {
			res, err := wrk(o, servers[i], shaPath, shaBody)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], res)
		}
	}
	t := table{title: "CPU-bound request: SHA-256 chain over a 16 KiB body, 4 rounds", unit: "requests/s"}
	for i, s := range servers {
		t.rows = append(t.rows, row{name: s.name, r: median(runs[i])})
	}
	r.tables = append(r.tables, t)
	fmt.Println("cpu-bound done")
	return nil
}

// shaAnswer POSTs the bench's body (as wrk sends it) to shaPath.
func shaAnswer(s *server) ([]byte, error) {
	resp, err := http.Post("http://"+s.addr+shaPath, "application/octet-stream", bytes.NewReader(bytes.Repeat([]byte("x"), shaBody)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: POST %s: status %d, %v: %s", s.name, shaPath, resp.StatusCode, err, body)
	}
	return body, nil
}

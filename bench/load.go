package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// result is one load run against one server.
type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	cpuPerRq time.Duration
	rss      int64
}

var (
	reRPS  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reReqs = regexp.MustCompile(`(\d+) requests in`)
	reSock = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2 = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	rePct  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
)

// wrk loads url for d with conns connections; body, if set, is POSTed.
func wrk(o *options, s *server, path string, body int) (result, error) {
	// --timeout: a slow response (a CPU-bound guest behind 15 queued
	// requests) counts in the latencies instead of vanishing as an error.
	args := []string{"-t1", fmt.Sprintf("-c%d", o.conns), fmt.Sprintf("-d%ds", int(o.duration.Seconds())), "--latency", "--timeout", "30s"}
	if body > 0 {
		script := filepath.Join(o.work, fmt.Sprintf("post%d.lua", body))
		if _, err := os.Stat(script); err != nil {
			os.WriteFile(script, []byte(fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", body)), 0o644)
		}
		args = append(args, "-s", script)
	}
	args = append(args, "http://"+s.addr+path)
	cpu0 := s.cpu()
	argv := pinned(o, loadCPU, append([]string{"wrk"}, args...)...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v\n%s", s.name, err, out)
	}
	cpu := s.cpu() - cpu0
	text := string(out)
	var r result
	if m := reRPS.FindStringSubmatch(text); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	n := 0
	if m := reReqs.FindStringSubmatch(text); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	if m := reSock.FindStringSubmatch(text); m != nil {
		for _, v := range m[1:] {
			k, _ := strconv.Atoi(v)
			r.errors += k
		}
	}
	if m := reNon2.FindStringSubmatch(text); m != nil {
		k, _ := strconv.Atoi(m[1])
		r.errors += k
	}
	for _, m := range rePct.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if n > 0 {
		r.cpuPerRq = cpu / time.Duration(n)
	}
	r.rss = s.rss()
	if n == 0 {
		return r, fmt.Errorf("wrk %s: %w:\n%s", s.name, errNoRequests, strings.TrimSpace(text))
	}
	return r, nil
}

// errNoRequests is wrk's error when not a single request completed.
var errNoRequests = errors.New("no requests completed")

// order returns the order in which round runs n servers: forward in even
// rounds, backward in odd ones, so that no server always runs first or
// right after the same neighbour.
func order(round, n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
		if round%2 == 1 {
			idx[i] = n - 1 - i
		}
	}
	return idx
}

// median returns the run with the median requests/s; its other figures
// are the medians of theirs.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	m := result{
		rps:      pick(func(r result) float64 { return r.rps }),
		p50:      time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99:      time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
		cpuPerRq: time.Duration(pick(func(r result) float64 { return float64(r.cpuPerRq) })),
		rss:      int64(pick(func(r result) float64 { return float64(r.rss) })),
	}
	for _, r := range rs {
		m.errors += r.errors
	}
	return m
}

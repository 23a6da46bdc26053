package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// benchKV compares kv_incr through a guest (guests/examples/counter-go,
// POST /incr/KEY) with a native Go program doing the same increments on the
// same backend (bench/kvnative): an embedded bbolt file each, one Redis
// server both use, and process memory.
func benchKV(o *options, b *builds, r *report) error {
	native := filepath.Join(o.work, "kvnative")
	if err := sh(filepath.Join(o.root, "bench"), "go", "build", "-o", native, "./kvnative"); err != nil {
		return err
	}
	redisPort := freePort()
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort)
	rs := exec.Command("redis-server", "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", o.work)
	if err := rs.Start(); err != nil {
		return fmt.Errorf("redis-server (Debian package redis-server): %w", err)
	}
	defer func() { rs.Process.Kill(); rs.Wait() }()
	if err := waitTCP("127.0.0.1:"+strconv.Itoa(redisPort), 20*time.Second); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	module := filepath.Join(o.root, "guests", "examples", "counter-go", "counter.wasm")
	// A guest waiting on Redis or on the disk holds its worker, as a
	// gunicorn sync worker does: the I/O-bound cases run 8 workers, the
	// memory case (CPU-bound) 2.
	for _, c := range []struct {
		backend, kv, flags string
		workers            int
	}{
		{"embedded", "kv.default.path = " + filepath.Join(o.work, "guest.db"), "-path=" + filepath.Join(o.work, "native.db"), 8},
		{"redis", "kv.default.url = " + redisURL + "\nkv.default.pool_size = 10", "-url=" + redisURL, 8},
		{"memory", "", "", 2},
	} {
		ini := filepath.Join(o.work, "kv-"+c.backend+".ini")
		text := fmt.Sprintf("[server:main]\nfactory = http\nworkers = %d\naccess_log = false\nrequest_timeout = 0\n"+
			"compilation_cache = %s\ndrain_time = 0\n[app:main]\nfactory = %s\nkv.default.backend = %s\nkv.default.prefix = counter:\n%s\n",
			c.workers, filepath.Join(o.work, "cache"), module, c.backend, c.kv)
		if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
			return err
		}
		args := []string{native, "-addr", "127.0.0.1:PORT", "-backend", c.backend}
		if c.flags != "" {
			args = append(args, c.flags)
		}
		nat, err := start(o, "native Go ("+c.backend+")", args...)
		if err != nil {
			return err
		}
		ws, err := start(o, "wasmserve, counter-go guest ("+c.backend+")", b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
		if err != nil {
			nat.stop()
			return err
		}
		servers := []*server{nat, ws}
		runs := make([][]result, len(servers))
		for round := 0; round < o.rounds; round++ {
			for i, s := range servers {
				res, err := wrk(o, s, "/incr/bench", 1)
				if err != nil {
					nat.stop()
					ws.stop()
					return err
				}
				runs[i] = append(runs[i], res)
			}
		}
		nat.stop()
		ws.stop()
		t := table{title: fmt.Sprintf("kv_incr, %s store (wasmserve workers = %d)", c.backend, c.workers), unit: "increments/s"}
		for i, s := range servers {
			t.rows = append(t.rows, row{name: s.name, r: median(runs[i])})
		}
		r.tables = append(r.tables, t)
	}
	fmt.Println("kv done")
	return nil
}

// waitTCP waits until addr accepts a connection.
func waitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

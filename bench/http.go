package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
)

// httpTarget is one HTTP server in the comparison.
type httpTarget struct {
	name string
	argv []string
}

func httpTargets(o *options, b *builds) []httpTarget {
	// The native server twice: the second copy's ratio shows the run's
	// noise.
	t := []httpTarget{
		{"native Go net/http", []string{b.native, "-addr", "127.0.0.1:PORT"}},
		{"native Go net/http (second copy: the run's noise)", []string{b.native, "-addr", "127.0.0.1:PORT"}},
	}
	// Each example as shipped: its own app.ini, only the address changed
	// (--bind overrides the INI's bind).
	for _, g := range b.guests {
		ini := filepath.Join(filepath.Dir(g.module), "app.ini")
		t = append(t, httpTarget{"wasmserve (" + g.name + " guest, shipped app.ini)", []string{b.wasmserve, "--bind", "127.0.0.1:PORT", ini}})
	}
	t = append(t, httpTarget{"http-wasm-host-go v0.7.0", []string{b.httpwasm, "-addr", "127.0.0.1:PORT", "-guest", b.hwGuest}})
	if _, err := exec.LookPath("gunicorn"); err == nil {
		wsgi := filepath.Join(o.root, "bench", "wsgi")
		t = append(t,
			httpTarget{"gunicorn sync -w 4", []string{"gunicorn", "--chdir", wsgi, "-w", "4", "-k", "sync", "-b", "127.0.0.1:PORT", "--log-level", "warning", "hello:app"}},
			httpTarget{"gunicorn gevent -w 2", []string{"gunicorn", "--chdir", wsgi, "-w", "2", "-k", "gevent", "-b", "127.0.0.1:PORT", "--log-level", "warning", "hello:app"}},
		)
	}
	return t
}

// httpCase is one workload.
type httpCase struct {
	title string
	path  string
	body  int // POST body size; 0 = GET
}

// startAll starts every target and checks it with verify; stop stops
// those that started, also when err is set.
func startAll(o *options, targets []httpTarget, verify func(*server) error) (servers []*server, stop func(), err error) {
	stop = func() {
		for _, s := range servers {
			s.stop()
		}
	}
	for _, t := range targets {
		s, err := start(o, t.name, t.argv...)
		if err != nil {
			return servers, stop, err
		}
		servers = append(servers, s)
		if err := verify(s); err != nil {
			return servers, stop, err
		}
	}
	return servers, stop, nil
}

func benchHTTP(o *options, b *builds, r *report) error {
	servers, stop, err := startAll(o, httpTargets(o, b), verify)
	defer stop()
	if err != nil {
		return err
	}
	for _, c := range []httpCase{{"HTTP hello", "/", 0}, {"HTTP echo 64 KiB", "/echo", 64 << 10}} {
		runs := make([][]result, len(servers))
		for round := 0; round < o.rounds; round++ {
			for _, i := range order(round, len(servers)) {
				s := servers[i]
				res, err := wrk(o, s, c.path, c.body)
				if err != nil {
					return err
				}
				runs[i] = append(runs[i], res)
			}
		}
		tab := table{title: c.title, unit: "requests/s"}
		for i, s := range servers {
			tab.rows = append(tab.rows, row{name: s.name, r: median(runs[i])})
		}
		r.tables = append(r.tables, tab)
		fmt.Printf("%s done\n", c.title)
	}
	return nil
}

// verify checks that the server answers the hello and echo routes with the
// same bytes as every other.
func verify(s *server) error {
	resp, err := http.Get("http://" + s.addr + "/")
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello, world" {
		return fmt.Errorf("%s: GET / answered %q, want %q", s.name, body, "hello, world")
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	resp, err = http.Post("http://"+s.addr+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, payload) {
		return fmt.Errorf("%s: POST /echo answered %d bytes (%q…), want the 64 KiB body back", s.name, len(body), strings.TrimSpace(string(body[:min(len(body), 40)])))
	}
	return nil
}

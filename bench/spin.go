package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// benchSpin measures hello requests on one worker while another worker
// runs a long guest loop (bench/guests/spin.wat), with request_timeout off
// and on: a guest loop that the Go runtime cannot preempt makes a garbage
// collection, and with it every goroutine, wait for the loop's end.
func benchSpin(o *options, b *builds, r *report) error {
	spin := 2 * time.Second
	lo := *o
	lo.duration = time.Second // inside the spin
	if o.smoke {
		spin = 1500 * time.Millisecond
	}
	t := table{title: "One request spins: hello on the other worker while a request runs a 2 s guest loop", unit: "requests/s",
		note: "wrk runs 1 s, 200 ms after the spinning request began. A row with 0 requests/s answered nothing during the run: its p50 and p99 stand for \"at least the run's length\"."}
	for _, c := range []struct{ name, extra string }{
		{"request_timeout = 0", "request_timeout = 0"},
		{"request_timeout = 30 seconds", "request_timeout = 30 seconds"},
	} {
		ini := wasmserveINI(o, "spin-"+slug(c.name), "http", b.spinGuest, c.extra)
		s, err := start(o, "spin "+c.name, b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
		if err != nil {
			return err
		}
		err = func() error {
			defer s.stop()
			// Calibrate the loop to last about spin.
			n := int64(20_000_000)
			d, err := timedGet(s, n)
			if err != nil {
				return err
			}
			n = max(1, int64(float64(n)*spin.Seconds()/max(d.Seconds(), 1e-6)))
			rest, err := wrk(&lo, s, "/", 0)
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { _, err := timedGet(s, n); done <- err }()
			time.Sleep(200 * time.Millisecond) // the spinning request has reached its worker
			during, err := wrk(&lo, s, "/", 0)
			if errors.Is(err, errNoRequests) {
				// The whole server stood still for the run: no request
				// answered, none took less than the run.
				during, err = result{p50: lo.duration, p99: lo.duration, rss: s.rss()}, nil
			}
			if err != nil {
				return err
			}
			if err := <-done; err != nil {
				return err
			}
			t.rows = append(t.rows, row{name: c.name + ", at rest", r: rest}, row{name: c.name + ", one request spinning", r: during})
			return nil
		}()
		if err != nil {
			return err
		}
	}
	r.tables = append(r.tables, t)
	fmt.Println("spin done")
	return nil
}

// timedGet runs GET /?n (a loop of n iterations) and returns its duration.
func timedGet(s *server, n int64) (time.Duration, error) {
	t0 := time.Now()
	resp, err := http.Get(fmt.Sprintf("http://%s/?%d", s.addr, n))
	if err != nil {
		return 0, fmt.Errorf("%s: spin: %w", s.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s: spin of %d iterations: status %d", s.name, n, resp.StatusCode)
	}
	return time.Since(t0), nil
}

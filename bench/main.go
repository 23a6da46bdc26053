// Command bench compares wasmserve with native Go net/http, gunicorn and
// http-wasm-host-go, side by side in one run on 127.0.0.1, and writes
// RESULTS.md and PNG charts.
//
// Every load run has fixed connections and duration; runs alternate between
// servers (A B C … A B C …) and the report gives medians and ratios to
// native Go, plus each server's CPU time per request, which stays
// meaningful when the load generator is the bottleneck.
//
//	go run . [-smoke] [-rounds 3] [-duration 5s] [-out RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

type options struct {
	smoke    bool
	rounds   int
	duration time.Duration
	conns    int
	out      string
	charts   string
	root     string
	work     string
}

func main() {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "one short round per case: checks servers start and answer, not numbers")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per case")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each load run")
	flag.IntVar(&o.conns, "conns", 16, "connections per load run")
	flag.StringVar(&o.out, "out", "RESULTS.md", "report file")
	flag.StringVar(&o.charts, "charts", "charts", "directory for PNG charts")
	flag.Parse()
	if o.smoke {
		o.rounds, o.duration = 1, time.Second
	}
	if err := run(&o); err != nil {
		log.Fatal(err)
	}
}

func run(o *options) error {
	var err error
	if o.root, err = filepath.Abs(".."); err != nil {
		return err
	}
	if o.work, err = os.MkdirTemp("", "wasmserve-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.work)
	b, err := build(o)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	r := &report{machine: machine(), cmd: "make bench", smoke: o.smoke}
	for _, c := range []func(*options, *builds, *report) error{benchHTTP, benchThrift, benchInstances, benchTimeout, benchReload} {
		if err := c(o, b, r); err != nil {
			return err
		}
	}
	if err := r.write(o); err != nil {
		return err
	}
	fmt.Printf("wrote %s and charts in %s/\n", o.out, o.charts)
	return nil
}

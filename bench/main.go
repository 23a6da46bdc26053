// Command bench compares wasmserve with native Go net/http, gunicorn and
// http-wasm-host-go, side by side in one run on 127.0.0.1, and writes
// RESULTS.md and PNG charts.
//
// Every load run has fixed connections and duration; runs alternate between
// servers, in reverse order every other round (A B C, C B A, …), and the
// report gives medians and ratios to native Go, plus each server's CPU time
// per request, which stays meaningful when the load generator is the
// bottleneck. On a machine with two or more CPUs the servers run on CPU 0
// and the load generators on CPU 1 (taskset), so that the two do not
// compete for a core and every server meets the same conditions.
//
//	go run . [-smoke] [-rounds 3] [-duration 3s] [-pin=true] [-out RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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
	pin      bool            // servers on CPU 0, load generators on CPU 1
	only     map[string]bool // the tables to take; all when empty
}

func main() {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "one short round per case: checks servers start and answer, not numbers")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per case")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each load run")
	flag.BoolVar(&o.pin, "pin", true, "run servers on CPU 0 and load generators on CPU 1 (needs taskset and two CPUs)")
	flag.IntVar(&o.conns, "conns", 16, "connections per load run")
	flag.StringVar(&o.out, "out", "RESULTS.md", "report file")
	flag.StringVar(&o.charts, "charts", "charts", "directory for PNG charts")
	only := flag.String("only", "", "comma-separated tables to take (http, isolation, thrift, cpu, spin, instances, timeout, reload, clients, kv); all when empty. Use with -out elsewhere: the report holds only those")
	flag.Parse()
	if *only != "" {
		o.only = map[string]bool{}
		for _, t := range strings.Split(*only, ",") {
			if _, ok := tables[t]; !ok {
				log.Fatalf("-only: no table %q (have %s)", t, strings.Join(tableNames, ", "))
			}
			o.only[t] = true
		}
	}
	if o.smoke {
		o.rounds, o.duration = 1, time.Second
	}
	if o.pin {
		if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
			o.pin = false
		}
	}
	if err := run(&o); err != nil {
		log.Fatal(err)
	}
}

// tableNames are the report's tables in order; tables takes each.
var (
	tableNames = []string{"http", "isolation", "thrift", "cpu", "spin", "instances", "timeout", "reload", "clients", "kv"}
	tables     = map[string]func(*options, *builds, *report) error{
		"http": benchHTTP, "isolation": benchIsolation, "thrift": benchThrift, "cpu": benchCPU, "spin": benchSpin,
		"instances": benchInstances, "timeout": benchTimeout, "reload": benchReload, "clients": benchClients, "kv": benchKV,
	}
)

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
	for _, name := range tableNames {
		if len(o.only) > 0 && !o.only[name] {
			continue
		}
		if err := tables[name](o, b, r); err != nil {
			return err
		}
	}
	if err := r.write(o); err != nil {
		return err
	}
	fmt.Printf("wrote %s and charts in %s/\n", o.out, o.charts)
	return nil
}

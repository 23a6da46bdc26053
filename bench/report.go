package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

type row struct {
	name string
	r    result
}

// table is one side-by-side comparison; the first row is the baseline.
type table struct {
	title string
	unit  string
	note  string // Markdown paragraph under the title; optional
	rows  []row
}

type report struct {
	machine string
	cmd     string
	smoke   bool
	tables  []table
	notes   []string // extra Markdown sections
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1] + " kB"
	}
	wrkV, _ := exec.Command("wrk", "--version").CombinedOutput()
	return fmt.Sprintf("%d cores (%s), %s memory, %s, %s, %s", runtime.NumCPU(), model, mem, runtime.Version(),
		strings.SplitN(strings.TrimSpace(string(wrkV)), " [", 2)[0], time.Now().UTC().Format("2006-01-02"))
}

func (r *report) write(o *options) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# wasmserve benchmark results\n\nProduced by `%s` on %s.\n", r.cmd, r.machine)
	if r.smoke {
		b.WriteString("\n**Smoke run: one short round per case; the numbers mean nothing.**\n")
	}
	fmt.Fprintf(&b, "\nLoad: wrk, 1 thread, %d connections, %s per run, %d alternating rounds (A B C, then C B A, …); medians.%s Ratios are to the first row. CPU/req is the server's user+system CPU time (its whole process tree, from /proc) divided by the requests served.\n", o.conns, o.duration, o.rounds, pinNote(o))
	for _, t := range r.tables {
		base := t.rows[0].r
		fmt.Fprintf(&b, "\n## %s\n\n", t.title)
		if t.note != "" {
			b.WriteString(t.note + "\n\n")
		}
		fmt.Fprintf(&b, "| server | %s | ratio | p50 | p99 | p99 ratio | CPU/req | RSS | errors |\n|---|---|---|---|---|---|---|---|---|\n", t.unit)
		for _, rw := range t.rows {
			ratio, p99r := 0.0, 0.0
			if base.rps > 0 {
				ratio = rw.r.rps / base.rps
			}
			if base.p99 > 0 {
				p99r = float64(rw.r.p99) / float64(base.p99)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.2f× | %s | %s | %.2f× | %s | %.1f MiB | %d |\n", rw.name, rw.r.rps, ratio,
				rw.r.p50.Round(time.Microsecond), rw.r.p99.Round(time.Microsecond), p99r, rw.r.cpuPerRq.Round(100*time.Nanosecond), float64(rw.r.rss)/(1<<20), rw.r.errors)
		}
		if err := chart(o, t); err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n![%s](charts/%s.png)\n", t.title, slug(t.title))
	}
	for _, n := range r.notes {
		b.WriteString("\n" + n + "\n")
	}
	return os.WriteFile(o.out, []byte(b.String()), 0o644)
}

func pinNote(o *options) string {
	if !o.pin {
		return ""
	}
	return " Servers run on CPU 0 and the load generators (wrk, thriftload) on CPU 1 (taskset), so they never compete for a core; a Go server's GOMAXPROCS is then 1."
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return '_'
	}, s)
}

// chart draws the table's requests/s as a horizontal bar chart.
func chart(o *options, t table) error {
	p := plot.New()
	p.Title.Text = t.title + " (" + t.unit + ", median)"
	vals := make(plotter.Values, len(t.rows))
	names := make([]string, len(t.rows))
	for i, rw := range t.rows {
		vals[len(t.rows)-1-i] = rw.r.rps
		names[len(t.rows)-1-i] = rw.name
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return err
	}
	bars.Horizontal = true
	p.Add(bars)
	p.NominalY(names...)
	p.X.Label.Text = t.unit
	if err := os.MkdirAll(o.charts, 0o755); err != nil {
		return err
	}
	return p.Save(7*vg.Inch, vg.Length(1.2+0.35*float64(len(t.rows)))*vg.Inch, filepath.Join(o.charts, slug(t.title)+".png"))
}

package server

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/pool"
)

// dumpDebug answers SIGUSR1: it logs every goroutine's stack, then a table
// of the worker instances serving a request right now (worker id, request,
// how long it has run). Serving continues meanwhile.
func (s *Server) dumpDebug() {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	s.log.Info("SIGUSR1: goroutine stacks", "goroutines", runtime.NumGoroutine(), "stacks", string(buf))
	cur := s.gens.Current()
	busy := cur.pool.BusyList()
	s.log.Info("SIGUSR1: busy workers", "generation", cur.n, "count", len(busy), "table", busyTable(busy, time.Now()))
}

// busyTable renders busy workers, longest-running first, as an aligned
// text table with a header line.
func busyTable(busy []pool.Busy, now time.Time) string {
	sort.Slice(busy, func(i, j int) bool { return busy[i].Since.Before(busy[j].Since) })
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "WORKER\tRUNNING\tREQUEST")
	for _, x := range busy {
		fmt.Fprintf(w, "%d\t%s\t%s\n", x.Worker, now.Sub(x.Since).Round(time.Millisecond), x.What)
	}
	w.Flush()
	return b.String()
}

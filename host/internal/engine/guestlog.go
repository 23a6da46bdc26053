package engine

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
)

// LogLimit bounds what a guest may log in one call: records from the log
// import and lines of WASI stdout and stderr together. Past either bound
// records are dropped, and the host logs one WARN when the call ends saying
// how many. A zero field is unlimited.
type LogLimit struct {
	Lines int // records
	Bytes int // message bytes
}

// String formats the limit as the guest_log_limit key writes it.
func (l LogLimit) String() string {
	if l.Lines == 0 && l.Bytes == 0 {
		return "unlimited"
	}
	s := ""
	if l.Lines > 0 {
		s = strconv.Itoa(l.Lines) + " lines"
	}
	if l.Bytes > 0 {
		if s != "" {
			s += ", "
		}
		s += strconv.Itoa(l.Bytes) + " bytes"
	}
	return s
}

// guestOutput is an instance's guest log state: the per-call budget, and
// the stderr lines of the current call held back so that the lines of a
// failing call (a panic and its stack) become one record. Every field is
// guarded by mu, which also serialises the stdout and stderr writers.
type guestOutput struct {
	mu      sync.Mutex
	inCall  bool
	lines   int // records logged in the current call
	bytes   int // their message bytes
	dLines  int // records dropped in the current call
	dBytes  int
	group   []byte // held stderr lines, separated by '\n'
	grouped int    // lines in group
}

// maxGroup bounds the stderr text held back during a call; past it the
// held lines are logged at once, as one record.
const maxGroup = 64 << 10

// allow charges one record of n bytes to the call's budget and reports
// whether it may be logged. o.mu is held.
func (i *Instance) allow(n int) bool {
	o := &i.out
	lim := i.mod.opts.LogLimit
	if (lim.Lines > 0 && o.lines >= lim.Lines) || (lim.Bytes > 0 && o.bytes+n > lim.Bytes) {
		o.dLines++
		o.dBytes += n
		return false
	}
	o.lines++
	o.bytes += n
	return true
}

// emitGuest logs one guest record, marked source=guest with the worker,
// generation and the call's trace id. o.mu is held.
func (i *Instance) emitGuest(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !i.log.Enabled(ctx, level) {
		return
	}
	all := make([]slog.Attr, 0, 2+len(attrs))
	all = append(all, slog.String("source", "guest"))
	if i.trace != "" {
		all = append(all, slog.String("trace", i.trace))
	}
	i.log.LogAttrs(ctx, level, msg, append(all, attrs...)...)
}

// guestRecord logs a message from the log import, within the budget.
func (i *Instance) guestRecord(ctx context.Context, level slog.Level, msg []byte) {
	if !i.log.Enabled(ctx, level) {
		return // records the server would not log cost no budget
	}
	i.out.mu.Lock()
	defer i.out.mu.Unlock()
	if !i.allow(len(msg)) {
		return
	}
	i.flushGroup(false)
	i.emitGuest(ctx, level, string(msg))
}

// beginCall resets the budget for a request. Records dropped before it,
// while the instance started, are reported first.
func (i *Instance) beginCall() {
	i.out.mu.Lock()
	defer i.out.mu.Unlock()
	i.reportDropped("start-up")
	i.out.inCall = true
}

// endCall ends a request's output: held stderr lines are logged (as one
// record when the call failed, the rest of a partial line included), and
// the records the budget dropped are reported.
func (i *Instance) endCall(failed bool) {
	if failed {
		i.stdout.flush()
		i.stderr.flush()
	}
	i.out.mu.Lock()
	defer i.out.mu.Unlock()
	i.flushGroup(failed)
	i.out.inCall = false
	i.reportDropped("request")
}

// reportDropped logs one WARN if the budget dropped records, and resets
// the budget. o.mu is held.
func (i *Instance) reportDropped(phase string) {
	o := &i.out
	if o.dLines > 0 {
		attrs := []slog.Attr{
			slog.String("phase", phase),
			slog.Int("dropped_lines", o.dLines), slog.Int("dropped_bytes", o.dBytes),
			slog.String("guest_log_limit", i.mod.opts.LogLimit.String()),
		}
		if i.trace != "" {
			attrs = append(attrs, slog.String("trace", i.trace))
		}
		i.log.LogAttrs(context.Background(), slog.LevelWarn,
			"guest log limit reached; records dropped (raise guest_log_limit to keep them)", attrs...)
	}
	o.lines, o.bytes, o.dLines, o.dBytes = 0, 0, 0, 0
}

// flushGroup logs the held stderr lines: as one record when joined, else
// one record per line. o.mu is held.
func (i *Instance) flushGroup(joined bool) {
	o := &i.out
	if o.grouped == 0 {
		return
	}
	ctx := context.Background()
	if joined || o.grouped == 1 {
		attrs := []slog.Attr{slog.String("stream", "stderr")}
		if o.grouped > 1 {
			attrs = append(attrs, slog.Int("lines", o.grouped))
		}
		i.emitGuest(ctx, slog.LevelWarn, string(o.group), attrs...)
	} else {
		for line := range bytes.SplitSeq(o.group, []byte{'\n'}) {
			i.emitGuest(ctx, slog.LevelWarn, string(line), slog.String("stream", "stderr"))
		}
	}
	o.group, o.grouped = o.group[:0], 0
}

// lineWriter logs a guest's WASI stdout or stderr, a record per line.
// During a request, stderr lines are held until the call ends, so that the
// lines of a failing call (a panic message and its stack) are one record.
type lineWriter struct {
	inst   *Instance
	level  slog.Level
	stream string
	buf    []byte
}

// maxLine is the longest line logged as it is; a longer one is split.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	o := &w.inst.out
	o.mu.Lock()
	defer o.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLine {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[:copy(w.buf, w.buf[i+1:])]
	}
}

// emit logs one line. o.mu is held.
func (w *lineWriter) emit(line []byte) {
	inst := w.inst
	line = bytes.TrimRight(line, "\r")
	if w.stream == "stderr" && len(line) > 0 {
		s := string(line)
		inst.noteFault(s)
		if outOfMemory(s) {
			inst.mu.Lock()
			inst.oom = true
			inst.mu.Unlock()
		}
	}
	if !inst.allow(len(line)) {
		return
	}
	o := &inst.out
	if w.stream == "stderr" && o.inCall {
		if o.grouped > 0 && len(o.group)+1+len(line) > maxGroup {
			inst.flushGroup(true)
		}
		if o.grouped > 0 {
			o.group = append(o.group, '\n')
		}
		o.group = append(o.group, line...)
		o.grouped++
		return
	}
	inst.flushGroup(false)
	inst.emitGuest(context.Background(), w.level, string(line), slog.String("stream", w.stream))
}

// flush logs a partial last line.
func (w *lineWriter) flush() {
	o := &w.inst.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

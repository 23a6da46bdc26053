package httpfront

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// FlushInterval bounds how long an access log line waits in the buffer
// before it is written out.
const FlushInterval = 100 * time.Millisecond

// maxBuffered is the size at which the access log buffer is written out
// at once, without waiting for the next flush.
const maxBuffered = 64 << 10

// accessLog writes one record per request through a slog handler of the
// process log's format into a buffer, written to its output at least every
// FlushInterval, when it holds maxBuffered bytes, and by close. A record
// costs no system call and no allocation for its attributes.
type accessLog struct {
	log  *slog.Logger
	w    *bufferedWriter
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

func newAccessLog(out io.Writer, format string) *accessLog {
	bw := &bufferedWriter{out: out, buf: make([]byte, 0, maxBuffered)}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler = slog.NewTextHandler(bw, opts)
	if format == "json" {
		h = slog.NewJSONHandler(bw, opts)
	}
	a := &accessLog{log: slog.New(h), w: bw, stop: make(chan struct{}), done: make(chan struct{})}
	go a.flusher()
	return a
}

func (a *accessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.w.Flush()
		case <-a.stop:
			a.w.Flush()
			return
		}
	}
}

// record logs one request. The attributes are passed as slog.Attr values,
// which slog keeps without boxing.
func (a *accessLog) record(method, path string, status int, n int64, d time.Duration, worker int, remote, trace, span string) {
	attrs := [10]slog.Attr{
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Duration("duration", d),
		slog.Int("worker", worker),
		slog.String("remote", remote),
	}
	k := 7
	if trace != "" {
		attrs[k] = slog.String("trace", trace)
		k++
	}
	if span != "" {
		attrs[k] = slog.String("span", span)
		k++
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:k]...)
}

// close stops the flusher and writes out what is buffered. It is safe to
// call more than once.
func (a *accessLog) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
	a.w.mu.Lock()
	a.w.direct = true // records of requests still finishing go straight out
	a.w.mu.Unlock()
}

// bufferedWriter is an io.Writer safe for concurrent use that collects
// writes until Flush.
type bufferedWriter struct {
	mu     sync.Mutex
	out    io.Writer
	buf    []byte
	direct bool // write through, after close
}

func (w *bufferedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if w.direct || len(w.buf) >= maxBuffered {
		w.flushLocked()
	}
	return len(p), nil
}

// Flush writes out the buffered bytes.
func (w *bufferedWriter) Flush() {
	w.mu.Lock()
	w.flushLocked()
	w.mu.Unlock()
}

func (w *bufferedWriter) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	w.out.Write(w.buf) // a failing log output is not the request's problem
	w.buf = w.buf[:0]
}

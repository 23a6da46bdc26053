package httpfront

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// FlushInterval bounds how long an access log line waits in the buffer
// before it is written out.
const FlushInterval = 100 * time.Millisecond

// maxBuffered is the size at which the access log buffer is written out
// at once, without waiting for the next flush.
const maxBuffered = 64 << 10

// accessLog writes one record per request, in the process log's format
// (slog's text or JSON handler output), into a buffer written to its
// output at least every FlushInterval, when it holds maxBuffered bytes,
// and by close. A record is formatted by hand into a reused buffer: no
// system call, no boxing of its attributes and no allocation.
type accessLog struct {
	json bool
	w    *bufferedWriter
	line sync.Pool // *[]byte
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

func newAccessLog(out io.Writer, format string) *accessLog {
	a := &accessLog{
		json: format == "json",
		w:    &bufferedWriter{out: out, buf: make([]byte, 0, maxBuffered)},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	a.line.New = func() any { b := make([]byte, 0, 256); return &b }
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

// record logs one request.
func (a *accessLog) record(now time.Time, method, path string, status int, n int64, d time.Duration, worker int, remote, trace, span string) {
	bp := a.line.Get().(*[]byte)
	b := (*bp)[:0]
	if a.json {
		b = appendJSONRecord(b, now, method, path, status, n, d, worker, remote, trace, span)
	} else {
		b = appendTextRecord(b, now, method, path, status, n, d, worker, remote, trace, span)
	}
	a.w.Write(b)
	*bp = b
	a.line.Put(bp)
}

// timeFormat is slog's text handler's: RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// second is a formatted second: what timeFormat gives before and after the
// milliseconds.
type second struct {
	unix         int64
	zone         int // offset from UTC, seconds
	prefix, zsfx string
}

var lastSecond atomic.Pointer[second]

// appendTime appends now in timeFormat, formatting the date and the
// time of day once per second.
func appendTime(b []byte, now time.Time) []byte {
	_, off := now.Zone()
	sec := lastSecond.Load()
	if sec == nil || sec.unix != now.Unix() || sec.zone != off {
		whole := now.Truncate(time.Second)
		f := whole.Format(timeFormat) // ...05.000Z07:00
		i := strings.LastIndexByte(f[:len("2006-01-02T15:04:05.000")], '.')
		sec = &second{unix: now.Unix(), zone: off, prefix: f[:i], zsfx: f[i+4:]}
		lastSecond.Store(sec)
	}
	b = append(b, sec.prefix...)
	ms := now.Nanosecond() / 1e6
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, sec.zsfx...)
}

// appendTextRecord appends the line slog.TextHandler writes for the same
// record.
func appendTextRecord(b []byte, now time.Time, method, path string, status int, n int64, d time.Duration, worker int, remote, trace, span string) []byte {
	b = append(b, "time="...)
	b = appendTime(b, now)
	b = append(b, " level=INFO msg=request method="...)
	b = appendTextString(b, method)
	b = append(b, " path="...)
	b = appendTextString(b, path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, " duration="...)
	b = appendDuration(b, d)
	b = append(b, " worker="...)
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, " remote="...)
	b = appendTextString(b, remote)
	if trace != "" {
		b = append(b, " trace="...)
		b = appendTextString(b, trace)
	}
	if span != "" {
		b = append(b, " span="...)
		b = appendTextString(b, span)
	}
	return append(b, '\n')
}

// appendJSONRecord appends the line slog.JSONHandler writes for the same
// record (durations as integer nanoseconds, as slog writes them).
func appendJSONRecord(b []byte, now time.Time, method, path string, status int, n int64, d time.Duration, worker int, remote, trace, span string) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, `,"worker":`...)
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, remote)
	if trace != "" {
		b = append(b, `,"trace":`...)
		b = appendJSONString(b, trace)
	}
	if span != "" {
		b = append(b, `,"span":`...)
		b = appendJSONString(b, span)
	}
	return append(b, "}\n"...)
}

// appendDuration appends d as time.Duration.String does, without
// allocating for the usual sub-second values.
func appendDuration(b []byte, d time.Duration) []byte {
	if d <= 0 || d >= time.Second {
		return append(b, d.String()...)
	}
	switch {
	case d < time.Microsecond:
		return append(strconv.AppendInt(b, int64(d), 10), "ns"...)
	case d < time.Millisecond:
		return append(appendFrac(b, int64(d), 1000), "µs"...)
	default:
		return append(appendFrac(b, int64(d), 1000000), "ms"...)
	}
}

// appendFrac appends v/unit with the fraction's trailing zeros removed.
func appendFrac(b []byte, v, unit int64) []byte {
	b = strconv.AppendInt(b, v/unit, 10)
	frac := v % unit
	if frac == 0 {
		return b
	}
	digits := 0
	for u := unit; u > 1; u /= 10 {
		digits++
	}
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], frac, 10)
	b = append(b, '.')
	for i := len(s); i < digits; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// appendTextString appends s as slog.TextHandler does: bare when it needs
// no quoting, else as a Go quoted string.
func appendTextString(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' || c == 0x7f {
				return strconv.AppendQuote(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.AppendQuote(b, s)
		}
		i += size
	}
	return append(b, s...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

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

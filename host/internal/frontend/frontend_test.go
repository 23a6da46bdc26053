package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/pool"
)

func TestTemporary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{&net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EINVAL)}, false},
		{errors.New("other"), false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// flakyListener fails its first n accepts with EMFILE.
type flakyListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

type logBuf = testguest.Buffer

// TestAcceptBacksOff: temporary accept errors are retried, logged once at
// WARN (rate-limited), and the connection behind them is still accepted;
// Close ends Accept, even during a back-off wait.
func TestAcceptBacksOff(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &logBuf{}
	c := New("test", slog.New(slog.NewTextHandler(log, nil)))
	l := c.Listener(&flakyListener{Listener: ln, n: 5})
	go func() {
		if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer conn.Close()
			time.Sleep(time.Second)
		}
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	conn.Close()
	if n := strings.Count(log.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d WARN lines for 5 errors in a burst, want 1:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "too many open files") {
		t.Fatalf("WARN line does not name the error:\n%s", log.String())
	}
	l2 := c.Listener(&flakyListener{Listener: ln, n: 1 << 30})
	done := make(chan error, 1)
	go func() { _, err := l2.Accept(); done <- err }()
	c.CloseListeners()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

func TestAnswerFor(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	for _, tc := range []struct {
		ctx    context.Context
		err    error
		status int
		worker int
		text   string
	}{
		{bg, pool.ErrOverloaded, 503, -1, "max_concurrency"},
		{bg, fmt.Errorf("wrapped: %w", &engine.Fault{Kind: engine.Timeout, Worker: 3}), 504, 3, "request_timeout"},
		{bg, &engine.Fault{Kind: engine.Trap, Worker: 1, Message: "boom"}, 500, 1, "guest failed: trap"},
		{cancelled, context.Canceled, StatusClientGone, -1, "client went away"},
		{bg, errors.New("odd"), 500, -1, "internal server error"},
	} {
		a := AnswerFor(tc.ctx, tc.err)
		if a.Status != tc.status || a.Worker != tc.worker || !strings.Contains(a.Text, tc.text) {
			t.Errorf("AnswerFor(%v) = %+v, want status %d worker %d text %q", tc.err, a, tc.status, tc.worker, tc.text)
		}
	}
	if a := AnswerFor(bg, &engine.Fault{Kind: engine.Trap, Worker: 1, Message: "boom"}); !strings.Contains(a.Detail, "boom") {
		t.Errorf("Detail %q lacks the guest's message", a.Detail)
	}
}

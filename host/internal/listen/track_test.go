package listen

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// trackedPair returns a tracked server side and its client.
func trackedPair(t *testing.T, tr *Tracker) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := TrackListener(ln, tr).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn), client
}

func TestTracker(t *testing.T) {
	t.Parallel()
	var tr Tracker
	idle, idleClient := trackedPair(t, &tr)
	partial, partialClient := trackedPair(t, &tr)
	unread, unreadClient := trackedPair(t, &tr)
	silent, _ := trackedPair(t, &tr)

	// idle: one request read and answered.
	idleClient.Write([]byte("req"))
	io.ReadFull(idle, make([]byte, 3))
	idle.Busy()
	idle.Idle()
	// partial: some bytes of a request read.
	partialClient.Write([]byte("pa"))
	io.ReadFull(partial, make([]byte, 2))
	// unread: a request waiting in the kernel, not read yet.
	unreadClient.Write([]byte("queued"))

	if got := tr.Active(); got != 1 {
		t.Errorf("Active = %d, want 1 (the partial request)", got)
	}
	if left := tr.CloseIdle(); left != 3 {
		t.Errorf("CloseIdle left %d, want 3 (partial, unread, silent within grace)", left)
	}
	if _, err := idle.Conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("idle connection not closed: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with a partial request = %v, want deadline exceeded", err)
	}
	partial.Close()
	unread.Close()
	// The silent connection goes once SilentGrace has passed.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*SilentGrace)
	defer cancel2()
	if err := tr.Wait(ctx2); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if tr.Len() != 0 {
		t.Errorf("%d connections left", tr.Len())
	}
	if d := time.Since(silent.start); d < SilentGrace {
		t.Errorf("silent connection closed after %s, before SilentGrace", d)
	}
}

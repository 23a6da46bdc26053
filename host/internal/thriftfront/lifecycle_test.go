package thriftfront_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestShutdownCompletesQueuedCalls is bjoern's scenario for Thrift: one
// call in flight and nine more queued behind it (one worker), then
// SIGTERM: all ten complete, and a connect afterwards is refused.
func TestShutdownCompletesQueuedCalls(t *testing.T) {
	t.Parallel()
	addr, log, cmd := serveCmd(t, "drain_time = 0\nworkers = 1\nstop_timeout = 30 seconds")
	slow, _ := dial(t, addr, kinds[4])
	results := make(chan string, 10)
	go func() {
		got, err := slow.Pause(context.Background(), 1500)
		if err != nil {
			got = err.Error()
		}
		results <- got
	}()
	// Wait until the slow call holds the only worker: SIGUSR1's table of
	// busy workers names it.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), "thrift pause") {
		if time.Now().After(deadline) {
			t.Fatal("slow call never started")
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(50 * time.Millisecond)
	}
	var wg sync.WaitGroup
	var queued sync.WaitGroup
	for i := 0; i < 9; i++ {
		// queued is done once the call's bytes are on their way: a
		// connection that has sent nothing by SIGTERM is not a queued call.
		c, _ := dialNotify(t, addr, kinds[i%len(kinds)], sync.OnceFunc(queued.Done))
		wg.Add(1)
		queued.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Echo(context.Background(), "queued")
			if err != nil {
				got = err.Error()
			}
			results <- got
		}()
	}
	queued.Wait()
	cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	got := map[string]int{}
	for i := 0; i < 10; i++ {
		got[<-results]++
	}
	if got["paused"] != 1 || got["queued"] != 9 {
		t.Fatalf("results %v, want 1 paused and 9 queued", got)
	}
	waitExit(t, cmd)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("connect after shutdown succeeded")
	}
}

// TestIdleConnectionDoesNotHoldShutdown checks that an idle persistent
// connection is closed at once and the server exits well before
// stop_timeout.
func TestIdleConnectionDoesNotHoldShutdown(t *testing.T) {
	t.Parallel()
	addr, _, cmd := serveCmd(t, "drain_time = 0\nstop_timeout = 60 seconds")
	c, _ := dial(t, addr, kinds[4])
	if got, err := c.Echo(context.Background(), "once"); err != nil || got != "once" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("shutdown took %v with only an idle connection", d)
	}
}

// waitExit waits for the server to exit by itself.
func waitExit(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("server did not exit within 60 s")
	}
}

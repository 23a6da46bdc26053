package thriftfront_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// waitLog waits until the server's log contains want.
func waitLog(t *testing.T, log *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never showed %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readUntilClosed reads c until the server closes it, and fails if that
// takes longer than limit (a generous bound: the server's own timeout is
// far shorter).
func readUntilClosed(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
}

// TestIdleAndHalfFrameConnectionsTimeOut: a connection that sends nothing
// is closed after keepalive, one that stalls in the middle of a frame
// after read_timeout (logged), and a SIGTERM while a half frame is stalled
// ends the server long before stop_timeout.
func TestIdleAndHalfFrameConnectionsTimeOut(t *testing.T) {
	t.Parallel()
	addr, log, cmd := serveCmd(t, "drain_time = 0\nstop_timeout = 120 seconds\nkeepalive = 1 second\nread_timeout = 1 second")
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	half.Write([]byte{0, 0})
	readUntilClosed(t, idle, 60*time.Second)
	readUntilClosed(t, half, 60*time.Second)
	waitLog(t, log, "within read_timeout")

	// Again, with the server stopping while the half frame is pending.
	half2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half2.Close()
	half2.Write([]byte{0, 0})
	c, _ := dial(t, addr, kinds[4])
	if got, err := c.Echo(context.Background(), "served"); err != nil || got != "served" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("a stalled half frame held SIGTERM for %v (stop_timeout 120 s, read_timeout 1 s)", d)
	}
	if !strings.Contains(log.String(), "shutdown complete") {
		t.Fatalf("shutdown did not complete cleanly:\n%s", log.String())
	}
}

// TestAcceptSurvivesEMFILE runs the server with a low open-file limit,
// exhausts it with connections, and checks that the server logs the
// accept failure at WARN, keeps running, and serves again once
// descriptors are free.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[server:main]\nfactory = thrift\nworkers = 1\ncompilation_cache = %s\n\n[app:main]\nfactory = %s\n",
		testguest.CacheDir(), testguest.Module(t, "thrift-go", "thrift.wasm"))), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log := &logBuffer{}
	// The limit applies to the child only: the shell lowers it, then
	// becomes the server.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 64 && exec "$0" --bind "$1" "$2"`, testguest.Binary(t), addr, ini)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	waitLog(t, log, "msg=serving")

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 100 && !strings.Contains(log.String(), "accept failed"); i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		held = append(held, c)
		time.Sleep(10 * time.Millisecond)
	}
	waitLog(t, log, "accept failed")
	if !strings.Contains(log.String(), "level=WARN msg=\"accept failed") || !strings.Contains(log.String(), "too many open files") {
		t.Fatalf("accept failure not logged at WARN with its cause:\n%s", log.String())
	}
	select {
	case <-done:
		t.Fatal("server exited on EMFILE")
	default:
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	c, _ := dial(t, addr, kinds[4])
	if got, err := c.Echo(context.Background(), "after EMFILE"); err != nil || got != "after EMFILE" {
		t.Fatalf("echo after EMFILE = %q, %v", got, err)
	}
	if n := strings.Count(log.String(), "accept failed"); n > 20 {
		t.Fatalf("accept failure logged %d times; want it rate-limited", n)
	}
}

// TestZlibBombBounded sends a THeader frame of a few kilobytes whose zlib
// payload inflates to 16 MiB, past max_message_size (1 MiB), as a list of
// small strings (each one under every per-field check): reading stops at
// the limit, the connection is closed with a message naming it, and the
// server keeps serving.
func TestZlibBombBounded(t *testing.T) {
	t.Parallel()
	addr, log := serve(t, "max_message_size = 1 MiB")
	ctx := context.Background()
	cfg := &thrift.TConfiguration{
		ConnectTimeout: 10 * time.Second, SocketTimeout: 30 * time.Second,
		MaxMessageSize: 64 << 20, MaxFrameSize: 64 << 20,
		THeaderTransforms: []thrift.THeaderTransformID{thrift.TransformZlib},
	}
	sock := thrift.NewTSocketConf(addr, cfg)
	if err := sock.Open(); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	counted := &countingTransport{TTransport: sock}
	tr := thrift.NewTHeaderTransportConf(counted, cfg)
	p := thrift.NewTBinaryProtocolConf(tr, cfg)
	p.WriteMessageBegin(ctx, "echo", thrift.CALL, 1)
	p.WriteStructBegin(ctx, "args")
	p.WriteFieldBegin(ctx, "padding", thrift.LIST, 9)
	p.WriteListBegin(ctx, thrift.STRING, 16<<10)
	chunk := bytes.Repeat([]byte{0}, 1<<10)
	for range 16 << 10 {
		p.WriteBinary(ctx, chunk)
	}
	p.WriteListEnd(ctx)
	p.WriteFieldEnd(ctx)
	p.WriteFieldStop(ctx)
	p.WriteStructEnd(ctx)
	p.WriteMessageEnd(ctx)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if counted.n > 1<<20 {
		t.Fatalf("the compressed frame is %d bytes; the test wants a small frame", counted.n)
	}
	sock.Conn().SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, sock.Conn()); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	waitLog(t, log, "exceeds max_message_size (1048576 bytes, counted after zlib inflation)")
	c, _ := dial(t, addr, kinds[4])
	if got, err := c.Echo(ctx, "still serving"); err != nil || got != "still serving" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

type countingTransport struct {
	thrift.TTransport
	n int
}

func (c *countingTransport) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.TTransport.Write(p)
}

// TestAccessLog checks the access log line of a Thrift call.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	addr, log := serve(t, "access_log = true")
	c, _ := dial(t, addr, kinds[4])
	if _, err := c.Echo(context.Background(), "logged"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, `msg="thrift call" method=echo seqid=1 status=ok duration=`)
	if _, err := c.Trap(context.Background()); err == nil {
		t.Fatal("trap succeeded")
	}
	waitLog(t, log, `msg="thrift call" method=trap seqid=2 status=trap duration=`)
	if !strings.Contains(log.String(), " worker=0 ") && !strings.Contains(log.String(), " worker=1 ") {
		t.Fatalf("access log names no worker:\n%s", log.String())
	}
}

// TestWriteTimeoutClosesNonReader: a client that sends calls with large
// replies and never reads them has its connection closed after
// write_timeout, with a WARN naming it, while other clients are served
// (the reply is copied out of the guest before it is written, so the
// non-reader holds no worker).
func TestWriteTimeoutClosesNonReader(t *testing.T) {
	t.Parallel()
	addr, log := serve(t, "workers = 1\nwrite_timeout = 1 second")
	ctx := context.Background()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	// Framed binary echo calls of 1 MiB each: their replies fill the
	// socket buffers within a few calls.
	buf := thrift.NewTMemoryBuffer()
	tr := thrift.NewTFramedTransportConf(buf, nil)
	p := thrift.NewTBinaryProtocolConf(tr, nil)
	msg := strings.Repeat("x", 1<<20)
	for i := int32(1); i <= 16; i++ {
		p.WriteMessageBegin(ctx, "echo", thrift.CALL, i)
		p.WriteStructBegin(ctx, "args")
		p.WriteFieldBegin(ctx, "message", thrift.STRING, 1)
		p.WriteString(ctx, msg)
		p.WriteFieldEnd(ctx)
		p.WriteFieldStop(ctx)
		p.WriteStructEnd(ctx)
		p.WriteMessageEnd(ctx)
		p.Flush(ctx)
	}
	go func() {
		raw.SetWriteDeadline(time.Now().Add(60 * time.Second))
		raw.Write(buf.Bytes())
	}()
	waitLog(t, log, "within write_timeout")
	c, _ := dial(t, addr, kinds[4])
	if got, err := c.Echo(ctx, "served"); err != nil || got != "served" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

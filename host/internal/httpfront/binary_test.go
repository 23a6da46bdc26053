package httpfront_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// binary is a wasmserve process serving hello-go on 127.0.0.1.
type binary struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

type syncBuffer = testguest.Buffer

// startBinary runs the wasmserve binary on hello-go with the given server
// keys, bound to a free port of 127.0.0.1, and waits until it answers.
func startBinary(t *testing.T, keys string) *binary {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ini := filepath.Join(t.TempDir(), "app.ini")
	src := fmt.Sprintf("[server:main]\nfactory = http\nbind = %s\ncompilation_cache = %s\ndrain_time = 0\naccess_log = false\n%s\n[app:main]\nfactory = %s\ngreeting = hello\n",
		addr, testguest.CacheDir(), keys, testguest.Module(t, "hello-go", "hello.wasm"))
	if err := os.WriteFile(ini, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &binary{addr: addr, log: &syncBuffer{}, done: make(chan error, 1)}
	b.cmd = exec.Command(testguest.Binary(t), ini)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("server log:\n%s", b.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return b
		}
		select {
		case err := <-b.done:
			t.Fatalf("server exited before serving: %v\n%s", err, b.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving after 60s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clients that never read their response do not pin the workers: as many
// non-reading clients as workers, each with a 9 MiB response stuck in its
// connection (more than the kernel's socket buffers take), and 100 normal
// requests are all answered.
func TestSlowReadersDoNotPinWorkers(t *testing.T) {
	t.Parallel()
	b := startBinary(t, "workers = 4")
	body := bytes.Repeat([]byte("x"), 9<<20)
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		defer tc.Close()
		tc.SetReadBuffer(4096)
		tc.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(tc, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := tc.Write(body); err != nil {
			t.Fatal(err)
		}
		// The first byte of the response: the guest has answered and the
		// response is being written into a window that stays closed.
		var first [1]byte
		if _, err := io.ReadFull(tc, first[:]); err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 100; i++ {
		resp, err := client.Get("http://" + b.addr + "/")
		if err != nil {
			t.Fatalf("request %d with 4 non-reading clients on 4 workers: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
}

// An announced Content-Length reserves no memory: 300 connections that
// send only headers announcing 10 MiB keep the server's RSS bounded.
func TestAnnouncedContentLengthReservesNothing(t *testing.T) {
	t.Parallel()
	b := startBinary(t, "workers = 2")
	base := rssMiB(t, b.cmd.Process.Pid)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: 10485760\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection is being read by the server: a request on one more
	// connection is answered only after the server accepted all before it.
	resp, err := http.Get("http://" + b.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	peak := base
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		peak = max(peak, rssMiB(t, b.cmd.Process.Pid))
	}
	t.Logf("RSS %d MiB at rest, peak %d MiB with 300 connections announcing 10 MiB", base, peak)
	if peak > 300 {
		t.Fatalf("RSS reached %d MiB (at rest %d MiB) with 300 header-only connections announcing 10 MiB; want < 300", peak, base)
	}
}

func rssMiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

package server_test

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/internal/testguest"
)

// TestHTTPAcceptSurvivesEMFILE runs the HTTP server with a low open-file
// limit (lowered in the child only), exhausts it with idle connections,
// and checks that the accept failure is logged at WARN, that the server
// keeps running, and that it serves again once descriptors are free.
func TestHTTPAcceptSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	ini := writeINI(t, "bind = 127.0.0.1:0\nworkers = 1\naccess_log = false")
	p := run(t, nil, nil, "/bin/sh", "-c", `ulimit -n 64 && exec "$0" "$1"`, testguest.Binary(t), ini)
	p.log.waitFor(t, startTimeout, 1, "msg=serving")
	m := regexp.MustCompile(`msg=listening address=(\S+)`).FindStringSubmatch(p.log.String())
	if m == nil {
		t.Fatalf("no listening address in the log:\n%s", p.log.String())
	}
	addr := m[1]
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 100 && p.log.count("accept failed") == 0; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		held = append(held, c)
		time.Sleep(10 * time.Millisecond)
	}
	p.log.waitFor(t, waitTimeout, 1, "level=WARN", "accept failed", "too many open files", "protocol=http")
	if p.exited() {
		t.Fatal("server exited on EMFILE")
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	c := dial(t, "tcp", addr)
	defer c.Close()
	if resp, body := c.get(t, "/"); resp.StatusCode != 200 || !strings.Contains(body, "hello") {
		t.Fatalf("GET / after EMFILE = %d %q", resp.StatusCode, body)
	}
}

//go:build !wasip1

package conformance

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// requestIsolation is checked with its own servers: nothing a request
// leaves in the guest is visible to the next one under isolation =
// request. POST /isolation/secret writes a mark derived from the body
// into a global, the heap, the stack and memory grown by the request;
// POST /isolation/scan counts the mark's copies in the whole linear
// memory. With one worker in worker mode the copies are found (the routes
// work); in request mode none is, request after request; the counter
// (a global) starts again from 1 each time.
const requestIsolation = "request_isolation_leaks_nothing"

func testRequestIsolation(t *testing.T, bin string, g guest) {
	secret := []byte(fmt.Sprintf("secret-%s-%d-of-one-user", g.name, rand.Int63()))
	worker := startServer(t, bin, g, g.m.Module, "workers = 1")
	worker.do(t, "POST", "/isolation/secret", nil, secret).want(t, 200, "stored")
	r := worker.do(t, "POST", "/isolation/scan", nil, secret)
	if n, err := strconv.Atoi(r.body); r.code != 200 || err != nil || n < 2 {
		t.Fatalf("worker mode: /isolation/scan = %d %q after /isolation/secret, want at least 2 copies (global, heap, grown memory)", r.code, clip(r.body))
	}

	s := startServer(t, bin, g, g.m.Module, "isolation = request")
	for i := range 6 {
		s.do(t, "POST", "/isolation/secret", nil, secret).want(t, 200, "stored")
		if r := s.do(t, "POST", "/isolation/scan", nil, secret); r.code != 200 || r.body != "0" {
			t.Fatalf("request %d: /isolation/scan = %d %q, want 0: a request saw what the previous one wrote", 2*i+2, r.code, clip(r.body))
		}
		s.get(t, "/counter").want(t, 200, "1")
		if i == 0 {
			s.get(t, "/").want(t, 200, "hello, world")
		}
	}
	if s.logs.has(func(r logRecord) bool { return r.Level != "INFO" && r.Level != "DEBUG" }) {
		t.Errorf("request mode logged warnings or errors:\n%s", s.logs.text())
	}
	if s.logs.has(func(r logRecord) bool { return strings.Contains(r.Msg, "cannot be reset") }) {
		t.Logf("%s falls back to a fresh instance per request", g.name)
	}
}

// overridden reports whether extra sets key.
func overridden(extra []string, key string) bool {
	for _, kv := range extra {
		if strings.TrimSpace(strings.SplitN(kv, "=", 2)[0]) == key {
			return true
		}
	}
	return false
}

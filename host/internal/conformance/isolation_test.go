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
// request. POST /isolation/secret-in-place writes a mark derived from the
// body into a global, the heap and the stack; POST /isolation/secret also
// into memory grown by the request; POST /isolation/scan counts the mark's
// copies in the whole linear memory. With one worker in worker mode the
// copies are found (the routes work). In request mode none is, request
// after request, whether the instance was reset from its snapshot (the
// in-place mark) or replaced (memory grew); the counter (a global) starts
// again from 1 each time.
const requestIsolation = "request_isolation_leaks_nothing"

func testRequestIsolation(t *testing.T, bin string, g guest) {
	secret := []byte(fmt.Sprintf("secret-%s-%d-of-one-user", g.name, rand.Int63()))
	scan := func(s *server) (int, response) {
		r := s.do(t, "POST", "/isolation/scan", nil, secret)
		n, err := strconv.Atoi(r.body)
		if r.code != 200 || err != nil {
			t.Fatalf("/isolation/scan = %d %q, want 200 and a count", r.code, clip(r.body))
		}
		return n, r
	}
	worker := startServer(t, bin, g, g.m.Module, "workers = 1")
	worker.do(t, "POST", "/isolation/secret-in-place", nil, secret).want(t, 200, "stored")
	if n, _ := scan(worker); n < 2 {
		t.Fatalf("worker mode: %d copies of the mark after /isolation/secret-in-place, want at least 2 (global, heap)", n)
	}
	worker.do(t, "POST", "/isolation/secret", nil, secret).want(t, 200, "stored")
	if n, _ := scan(worker); n < 3 {
		t.Fatalf("worker mode: %d copies of the mark after /isolation/secret too, want at least 3 (global, heap, grown memory)", n)
	}

	s := startServer(t, bin, g, g.m.Module, "isolation = request")
	for i := range 6 {
		route := "/isolation/secret-in-place"
		if i%3 == 2 {
			route = "/isolation/secret"
		}
		s.do(t, "POST", route, nil, secret).want(t, 200, "stored")
		if n, _ := scan(s); n != 0 {
			t.Fatalf("round %d: %d copies of the mark after %s: the next request saw them", i, n, route)
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

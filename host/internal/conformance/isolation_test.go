//go:build !wasip1

package conformance

import (
	"strings"
	"testing"
)

// requestIsolation is checked with its own server, isolation = request:
// nothing a request leaves in the guest (its counter, kept in a global or
// on the heap) is visible to the next one.
const requestIsolation = "request_isolation_leaks_nothing"

func testRequestIsolation(t *testing.T, bin string, g guest) {
	s := startServer(t, bin, g, g.m.Module, "isolation = request")
	for i := range 6 {
		s.get(t, "/counter").want(t, 200, "1")
		if i == 0 {
			s.get(t, "/").want(t, 200, "hello, world")
		}
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

package metrics

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStatsdClientPools(t *testing.T) {
	t.Parallel()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := New(Options{})
	m.SetClientPools(func() []ClientPool { return []ClientPool{{Name: "backend", Size: 10, InUse: 3}} })
	s, err := m.StartStatsd(StatsdOptions{Address: conn.LocalAddr().String(), Namespace: "ns", Hostname: "h", PID: 1, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]bool{"ns.runtime.clients.backend.pool.size:10|g|#hostname:h,PID:1": false, "ns.runtime.clients.backend.pool.in_use:3|g|#hostname:h,PID:1": false}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 65536)
	for seen := 0; seen < len(want); {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read: %v; want %v", err, want)
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if done, ok := want[l]; ok && !done {
				want[l] = true
				seen++
			}
		}
	}
}

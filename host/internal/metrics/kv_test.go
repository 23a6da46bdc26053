package metrics

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/kv"
)

func TestKVMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := New(Options{})
	cfg := config.KVStore{Name: "metered", Backend: "memory", Timeout: time.Second, MaxValueSize: 4, MaxKeySize: 16}
	set, err := kv.Open(ctx, []config.KVStore{cfg}, kv.Options{Observer: m.KVObserver()})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	h, _ := set.Store("metered")
	h.Set(ctx, "k", []byte("abc"), 0)      // in: 1 + 3 bytes
	h.Get(ctx, "k")                        // in: 1, out: 3
	h.Incr(ctx, "n", 1)                    // in: 1 + 8, out: 8
	h.Set(ctx, "k", []byte("too long"), 0) // too_large
	h.Exists(ctx, "")                      // invalid
	h.Incr(ctx, "k", 1)                    // invalid: not an integer

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wasmserve_kv_operations_total", map[string]string{"store": "metered", "backend": "memory", "op": "set"}, 2},
		{"wasmserve_kv_operations_total", map[string]string{"store": "metered", "backend": "memory", "op": "get"}, 1},
		{"wasmserve_kv_operations_total", map[string]string{"store": "metered", "backend": "memory", "op": "incr"}, 2},
		{"wasmserve_kv_operations_total", map[string]string{"store": "metered", "backend": "memory", "op": "exists"}, 1},
		{"wasmserve_kv_errors_total", map[string]string{"store": "metered", "kind": "too_large"}, 1},
		{"wasmserve_kv_errors_total", map[string]string{"store": "metered", "kind": "invalid"}, 2},
		{"wasmserve_kv_errors_total", map[string]string{"store": "metered", "kind": "unavailable"}, 0},
		{"wasmserve_kv_bytes_total", map[string]string{"store": "metered", "direction": "out"}, 3 + 8},
		{"wasmserve_kv_duration_seconds", map[string]string{"store": "metered", "op": "set"}, 2},
	} {
		if got := value(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := m.StartStatsd(StatsdOptions{Address: conn.LocalAddr().String(), Namespace: "ns", Hostname: "h", PID: 1, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{
		"ns.kv.metered.ops.set:2|c|#hostname:h,PID:1",
		"ns.kv.metered.ops.incr:2|c|#hostname:h,PID:1",
		"ns.kv.metered.errors.too_large:1|c|#hostname:h,PID:1",
		"ns.kv.metered.errors.invalid:2|c|#hostname:h,PID:1",
		"ns.kv.metered.bytes_out:11|c|#hostname:h,PID:1",
		"ns.kv.metered.latency:",
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 65536)
	var got []string
	for missing := len(want); missing > 0; {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read: %v; received %v", err, got)
		}
		got = append(got, strings.Split(string(buf[:n]), "\n")...)
		missing = 0
		for _, w := range want {
			found := false
			for _, l := range got {
				if strings.HasPrefix(l, w) {
					found = true
				}
			}
			if !found {
				missing++
			}
		}
	}
}

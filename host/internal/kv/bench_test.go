package kv

import (
	"context"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
)

// BenchmarkHandleIncrMemory is the host's cost of one kv_incr beyond the
// store itself: prefix, limits, timeout context, classification.
func BenchmarkHandleIncrMemory(b *testing.B) {
	set, err := Open(context.Background(), []config.KVStore{{Name: "m", Backend: "memory", Timeout: time.Second, MaxValueSize: 1 << 20, MaxKeySize: 64, Prefix: "app:"}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	h, _ := set.Store("m")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Incr(ctx, "n", 1); err != nil {
			b.Fatal(err)
		}
	}
}

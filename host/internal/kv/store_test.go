package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/internal/testredis"
)

// backends opens one store of each backend for a test.
func backends(t *testing.T) map[string]Store {
	t.Helper()
	emb, err := OpenEmbedded(filepath.Join(t.TempDir(), "kv.db"), EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	srv := testredis.Start(t)
	r, err := OpenRedis(context.Background(), RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	mem := NewMemory()
	t.Cleanup(func() { mem.Close() })
	return map[string]Store{"embedded": emb, "redis": r, "memory": mem}
}

func TestStoreSemantics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, ok, err := st.Get(ctx, "a"); ok || err != nil {
				t.Fatalf("Get of an absent key = %v, %v; want absent", ok, err)
			}
			must(st.Set(ctx, "a", []byte("one"), 0))
			v, ok, err := st.Get(ctx, "a")
			if !ok || err != nil || string(v) != "one" {
				t.Fatalf("Get = %q, %v, %v; want one", v, ok, err)
			}
			must(st.Set(ctx, "empty", []byte{}, 0))
			if v, ok, _ := st.Get(ctx, "empty"); !ok || len(v) != 0 {
				t.Fatalf("Get of an empty value = %q, %v; want present and empty", v, ok)
			}
			if ok, _ := st.Exists(ctx, "a"); !ok {
				t.Fatal("Exists(a) = false after Set")
			}
			if ok, _ := st.Delete(ctx, "a"); !ok {
				t.Fatal("Delete(a) = false for a present key")
			}
			if ok, _ := st.Delete(ctx, "a"); ok {
				t.Fatal("Delete(a) = true for an absent key")
			}
			if ok, _ := st.Exists(ctx, "a"); ok {
				t.Fatal("Exists(a) = true after Delete")
			}
			for i, want := range []int64{5, 3, -7} {
				n, err := st.Incr(ctx, "n", []int64{5, -2, -10}[i])
				if err != nil || n != want {
					t.Fatalf("Incr #%d = %d, %v; want %d", i, n, err, want)
				}
			}
			if v, _, _ := st.Get(ctx, "n"); string(v) != "-7" {
				t.Fatalf("counter reads %q, want -7 (decimal)", v)
			}
			must(st.Set(ctx, "s", []byte("text"), 0))
			if _, err := st.Incr(ctx, "s", 1); !errors.Is(err, ErrNotInteger) {
				t.Fatalf("Incr of a non-integer: %v, want ErrNotInteger", err)
			}
			must(st.Set(ctx, "max", []byte("9223372036854775807"), 0))
			if _, err := st.Incr(ctx, "max", 1); !errors.Is(err, ErrNotInteger) {
				t.Fatalf("Incr overflowing int64: %v, want ErrNotInteger", err)
			}
			if v, _, _ := st.Get(ctx, "max"); string(v) != "9223372036854775807" {
				t.Fatalf("a failed Incr changed the value to %q", v)
			}
			// CAS: absent → v1, v1 → v2, a stale old value, delete.
			cas := func(old, new Value, want bool) {
				t.Helper()
				ok, err := st.CAS(ctx, "c", old, new, 0)
				if err != nil || ok != want {
					t.Fatalf("CAS(%+v → %+v) = %v, %v; want %v", old, new, ok, err, want)
				}
			}
			cas(Value{Absent: true}, Value{Data: []byte("v1")}, true)
			cas(Value{Absent: true}, Value{Data: []byte("x")}, false)
			cas(Value{Data: []byte("v1")}, Value{Data: []byte("v2")}, true)
			cas(Value{Data: []byte("v1")}, Value{Data: []byte("v3")}, false)
			if v, _, _ := st.Get(ctx, "c"); string(v) != "v2" {
				t.Fatalf("after CAS the value is %q, want v2", v)
			}
			cas(Value{Data: []byte("v2")}, Value{Absent: true}, true)
			if ok, _ := st.Exists(ctx, "c"); ok {
				t.Fatal("CAS to absent did not delete")
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
			must(st.Set(ctx, "big", big, 0))
			if v, _, _ := st.Get(ctx, "big"); !bytes.Equal(v, big) {
				t.Fatalf("a 1 MiB value read back as %d bytes", len(v))
			}
		})
	}
}

// poll calls cond until it returns true, for at most 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTTLExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := st.Set(ctx, "t", []byte("v"), 150*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := st.Set(ctx, "keep", []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Incr(ctx, "tc", 1); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.CAS(ctx, "tc", Value{Data: []byte("1")}, Value{Data: []byte("10")}, 150*time.Millisecond); !ok || err != nil {
				t.Fatalf("CAS with a TTL = %v, %v", ok, err)
			}
			// An increment keeps the counter's expiry.
			if n, err := st.Incr(ctx, "tc", 1); n != 11 || err != nil {
				t.Fatalf("Incr = %d, %v; want 11", n, err)
			}
			if _, ok, _ := st.Get(ctx, "t"); !ok {
				t.Fatal("a value with a 150 ms TTL is gone at once")
			}
			poll(t, "value with a 150 ms TTL expires", func() bool {
				ok, err := st.Exists(ctx, "t")
				return err == nil && !ok
			})
			poll(t, "counter with a 150 ms TTL expires", func() bool {
				_, ok, err := st.Get(ctx, "tc")
				return err == nil && !ok
			})
			if _, ok, _ := st.Get(ctx, "keep"); !ok {
				t.Fatal("a value without TTL expired")
			}
		})
	}
}

func TestEmbeddedSweepDeletesExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, err := OpenEmbedded(filepath.Join(t.TempDir(), "kv.db"), EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 2500 {
		ttl := time.Millisecond
		if i%10 == 0 {
			ttl = 0
		}
		if err := e.Set(ctx, fmt.Sprint("k", i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // the last TTL set above has passed
	n, err := e.Sweep()
	if err != nil || n != 2250 {
		t.Fatalf("Sweep = %d, %v; want 2250 expired keys deleted", n, err)
	}
	if ok, _ := e.Exists(ctx, "k0"); !ok {
		t.Fatal("Sweep deleted a key without TTL")
	}
}

func TestConcurrentIncrExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const workers, each = 8, 50
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for range each {
						if _, err := st.Incr(ctx, "n", 1); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if v, _, _ := st.Get(ctx, "n"); string(v) != fmt.Sprint(workers*each) {
				t.Fatalf("counter = %q after %d concurrent increments", v, workers*each)
			}
		})
	}
}

func TestEmbeddedKeepsValuesAcrossReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kv.db")
	e, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.Set(ctx, "a", []byte("kept"), 0)
	e.Incr(ctx, "n", 41)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if v, _, _ := e.Get(ctx, "a"); string(v) != "kept" {
		t.Fatalf("after reopening, a = %q", v)
	}
	if n, _ := e.Incr(ctx, "n", 1); n != 42 {
		t.Fatalf("after reopening, Incr = %d, want 42", n)
	}
}

func TestEmbeddedLockedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kv.db")
	e, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = OpenEmbedded(path, EmbeddedOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("opening a locked file: %v; want an error naming %s and the lock", err, path)
	}
}

func TestEmbeddedCorruptFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kv.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenEmbedded(path, EmbeddedOptions{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a valid store file") {
		t.Fatalf("opening a corrupt file: %v; want an error naming %s", err, path)
	}
}

func TestRedisRestartedMidRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testredis.Start(t)
	r, err := OpenRedis(ctx, RedisOptions{URL: srv.URL(), PoolSize: 4, Timeout: time.Second, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Incr(ctx, "n", 1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := r.Incr(ctx, "n", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Incr with the server down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	poll(t, "calls recover after the server restarted", func() bool {
		_, err := r.Incr(ctx, "n", 1)
		return err == nil
	})
}

func TestRedisDownAtStartup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testredis.New(t) // not started
	cfg := config.KVStore{Name: "r", Backend: "redis", URL: srv.URL(),
		PoolSize: 2, Timeout: time.Second, ConnectTimeout: 200 * time.Millisecond, MaxValueSize: 1 << 20, MaxKeySize: 64}
	set, err := Open(ctx, []config.KVStore{cfg}, Options{})
	if err != nil {
		t.Fatalf("Open with Redis down: %v; want a store that fails its calls", err)
	}
	defer set.Close()
	h, _ := set.Store("r")
	_, err = h.Incr(ctx, "n", 1)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Unavailable {
		t.Fatalf("Incr with Redis down: %v; want kind unavailable", err)
	}
	srv.Restart()
	poll(t, "calls succeed once Redis is up", func() bool {
		_, err := h.Incr(ctx, "n", 1)
		return err == nil
	})
}

func TestRedisTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testredis.Start(t)
	cfg := config.KVStore{Name: "r", Backend: "redis", URL: srv.URL(), PoolSize: 2,
		Timeout: 100 * time.Millisecond, ConnectTimeout: time.Second, MaxValueSize: 1 << 20, MaxKeySize: 64}
	set, err := Open(ctx, []config.KVStore{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	h, _ := set.Store("r")
	// CLIENT PAUSE holds every write for a second; the store's 100 ms
	// timeout fires.
	if _, err := srv.Do("CLIENT", "PAUSE", "1000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	poll(t, "a call times out while the server sleeps", func() bool {
		_, err := h.Incr(ctx, "n", 1)
		var e *Error
		return errors.As(err, &e) && e.Kind == Timeout
	})
	// The request's deadline bounds a call too: a store whose own timeout
	// is a minute gives up at the caller's deadline.
	cfg.Name, cfg.Timeout, cfg.PoolSize = "slow", time.Minute, 3
	slow, err := Open(ctx, []config.KVStore{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	hs, _ := slow.Store("slow")
	if _, err := srv.Do("CLIENT", "PAUSE", "30000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	defer srv.Do("CLIENT", "UNPAUSE")
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = hs.Incr(rctx, "n", 1)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Timeout {
		t.Fatalf("Incr past the caller's deadline: %v; want kind timeout", err)
	}
}

func TestHandleLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := config.KVStore{Name: "lim", Backend: "memory", Timeout: time.Second, MaxValueSize: 10, MaxKeySize: 4, Prefix: "app:"}
	set, err := Open(ctx, []config.KVStore{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	h, _ := set.Store("lim")
	kind := func(err error) Kind {
		var e *Error
		if errors.As(err, &e) {
			return e.Kind
		}
		return 0
	}
	err = h.Set(ctx, "k", make([]byte, 11), 0)
	if kind(err) != TooLarge || !strings.Contains(err.Error(), "max_value_size") {
		t.Fatalf("11-byte value with a 10-byte limit: %v", err)
	}
	if err := h.Set(ctx, "k", make([]byte, 10), 0); err != nil {
		t.Fatalf("10-byte value with a 10-byte limit: %v", err)
	}
	if err := h.Set(ctx, "kkkkk", nil, 0); kind(err) != TooLarge || !strings.Contains(err.Error(), "max_key_size") {
		t.Fatalf("5-byte key with a 4-byte limit: %v", err)
	}
	if _, err := h.Exists(ctx, ""); kind(err) != Invalid {
		t.Fatalf("empty key: %v", err)
	}
	if err := h.Set(ctx, "k", nil, -time.Second); kind(err) != Invalid {
		t.Fatalf("negative TTL: %v", err)
	}
	// The prefix is applied in the backend and invisible to the caller.
	raw := h.b.st
	if ok, _ := raw.Exists(ctx, "app:k"); !ok {
		t.Fatal("the key is not stored under its prefix")
	}
	if _, ok := set.Store("nope"); ok {
		t.Fatal("Store of an unconfigured name succeeded")
	}
}

func TestOpenSharesBackends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	cfg := config.KVStore{Name: "d", Backend: "embedded", Path: path, Timeout: time.Second, ConnectTimeout: 100 * time.Millisecond, MaxValueSize: 1 << 20, MaxKeySize: 64}
	gen1, err := Open(ctx, []config.KVStore{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A reload: the next generation opens the same file while the first
	// still serves; the file is opened once, so this does not wait for
	// its lock.
	cfg2 := cfg
	cfg2.MaxValueSize = 10
	gen2, err := Open(ctx, []config.KVStore{cfg2}, Options{})
	if err != nil {
		t.Fatalf("second Open of the same embedded file: %v", err)
	}
	h1, _ := gen1.Store("d")
	h2, _ := gen2.Store("d")
	if h1.b != h2.b {
		t.Fatal("two Sets with the same embedded path have different backends")
	}
	h1.Incr(ctx, "n", 1)
	gen1.Close()
	if n, err := h2.Incr(ctx, "n", 1); n != 2 || err != nil {
		t.Fatalf("after the first Set closed, Incr = %d, %v; want 2", n, err)
	}
	if err := h2.Set(ctx, "x", make([]byte, 11), 0); err == nil {
		t.Fatal("the second Set's max_value_size is not applied")
	}
	gen2.Close()
	// The last Set closed the file: it opens again at once.
	e, err := OpenEmbedded(path, EmbeddedOptions{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after every Set closed: %v", err)
	}
	e.Close()
}

package kv

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"
)

// Memory is the memory backend: a map guarded by a mutex, for tests and
// caches. Its contents last as long as the process (reloads keep them when
// the store's name is unchanged). Expired entries are dropped when read and
// by a sweep every SweepInterval.
type Memory struct {
	mu   sync.Mutex
	m    map[string]memEntry
	stop chan struct{}
	done chan struct{}
}

type memEntry struct {
	v   []byte
	exp int64 // unix nanoseconds; 0 = never
}

func (e memEntry) live(now int64) bool { return e.exp == 0 || now < e.exp }

// SweepInterval is how often the memory and embedded backends delete
// expired entries that nobody read.
var SweepInterval = 30 * time.Second

// NewMemory returns an empty memory store.
func NewMemory() *Memory {
	m := &Memory{m: map[string]memEntry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go m.sweeper()
	return m
}

func (m *Memory) sweeper() {
	defer close(m.done)
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

func (m *Memory) sweep() {
	now := time.Now().UnixNano()
	m.mu.Lock()
	for k, e := range m.m {
		if !e.live(now) {
			delete(m.m, k)
		}
	}
	m.mu.Unlock()
}

// lookup returns key's live entry; m.mu must be held.
func (m *Memory) lookup(key string) (memEntry, bool) {
	e, ok := m.m[key]
	if ok && !e.live(time.Now().UnixNano()) {
		delete(m.m, key)
		return memEntry{}, false
	}
	return e, ok
}

func expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return time.Now().Add(ttl).UnixNano()
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(key)
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(e.v), true, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, key string, v []byte, ttl time.Duration) error {
	m.mu.Lock()
	m.m[key] = memEntry{v: bytes.Clone(v), exp: expiry(ttl)}
	m.mu.Unlock()
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.lookup(key)
	delete(m.m, key)
	return ok, nil
}

// Exists implements Store.
func (m *Memory) Exists(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.lookup(key)
	return ok, nil
}

// Incr implements Store.
func (m *Memory) Incr(_ context.Context, key string, delta int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(key)
	var cur []byte
	if ok {
		cur = e.v
	}
	n, err := parseCounter(cur)
	if err == nil {
		n, err = addCounter(n, delta)
	}
	if err != nil {
		return 0, err
	}
	m.m[key] = memEntry{v: strconv.AppendInt(nil, n, 10), exp: e.exp}
	return n, nil
}

// CAS implements Store.
func (m *Memory) CAS(_ context.Context, key string, old, new Value, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(key)
	if ok == old.Absent || (ok && !bytes.Equal(e.v, old.Data)) {
		return false, nil
	}
	if new.Absent {
		delete(m.m, key)
	} else {
		m.m[key] = memEntry{v: bytes.Clone(new.Data), exp: expiry(ttl)}
	}
	return true, nil
}

// Close implements Store; it stops the sweep.
func (m *Memory) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
		<-m.done
	}
	return nil
}

// Package kv gives guests key-value stores: an embedded file (bbolt), a
// Redis server, or process memory, behind one Store interface.
//
// Stores are opened once per process and shared: Open returns a Set, the
// stores of one generation of the app, and takes a reference on each
// backend; a reload whose store config did not change gets the same open
// backend (an embedded file can be opened only once per process). A
// backend is closed when the last Set using it is closed.
//
// A Set's stores (Handle) apply what the config asks on top of the
// backend: the key prefix, the key and value size limits, the operation
// timeout, error classification (Error, Kind) and metrics (Observer).
package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/config"
)

// Store is a key-value backend. Every method is safe for concurrent use
// and honours ctx's deadline. Keys are the full keys (prefix included).
// Values returned are the caller's to keep.
type Store interface {
	// Get returns the value of key and true, or false when key is absent
	// or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key; ttl > 0 makes it expire after ttl, 0
	// keeps it until deleted.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key and reports whether it was present.
	Delete(ctx context.Context, key string) (bool, error)
	// Exists reports whether key is present.
	Exists(ctx context.Context, key string) (bool, error)
	// Incr adds delta to the decimal integer stored under key (absent
	// counts as 0) atomically, keeps its expiry, and returns the new
	// value. A value that is not a decimal int64, or a result that
	// overflows, fails with ErrNotInteger and changes nothing.
	Incr(ctx context.Context, key string, delta int64) (int64, error)
	// CAS atomically replaces key's value with new when its current value
	// equals old, and reports whether it did. old.Absent expects key to be
	// absent; new.Absent deletes key. ttl applies to the new value as in
	// Set.
	CAS(ctx context.Context, key string, old, new Value, ttl time.Duration) (bool, error)
	// Close releases the backend.
	Close() error
}

// Value is a value or its absence, for CAS.
type Value struct {
	Data   []byte
	Absent bool
}

// ErrNotInteger is the error of Incr on a value that is not a decimal
// int64, or whose result would overflow.
var ErrNotInteger = errors.New("value is not a decimal 64-bit integer, or the result overflows")

// ErrUnavailable is wrapped by backend errors that mean the backend cannot
// be reached or cannot write (connection refused, disk full).
var ErrUnavailable = errors.New("backend unavailable")

// Kind classifies a store error for the guest.
type Kind int

// Kinds of error.
const (
	NoStore     Kind = iota + 1 // the app configures no store of that name
	TooLarge                    // a value over max_value_size or a key over max_key_size
	Unavailable                 // the backend failed: unreachable, disk full, corrupt
	Timeout                     // the call ran past its timeout or the request's deadline
	Invalid                     // bad arguments: empty key, negative TTL, Incr on a non-integer
)

var kindNames = [...]string{"", "no_store", "too_large", "unavailable", "timeout", "invalid"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Op names a store operation, for errors and metrics.
type Op int

// Operations.
const (
	OpGet Op = iota
	OpSet
	OpDelete
	OpExists
	OpIncr
	OpCAS
	NumOps
)

var opNames = [NumOps]string{"get", "set", "delete", "exists", "incr", "cas"}

func (o Op) String() string {
	if o >= 0 && o < NumOps {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Error is a failed store call.
type Error struct {
	Store string
	Op    Op
	Kind  Kind
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("kv store %q: %s: %s: %v", e.Store, e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Observer receives the metrics of a Set's stores. Store is called once
// per store when the Set opens; the returned function is called after
// every operation with its duration, the bytes of keys and values sent and
// received, and its error kind (0 for success).
type Observer interface {
	Store(name, backend string) func(op Op, d time.Duration, bytesIn, bytesOut int, kind Kind)
}

// Options configure Open.
type Options struct {
	// Logger receives open, close and sweep records; nil means
	// slog.Default().
	Logger *slog.Logger
	// Observer, when non-nil, receives per-store metrics.
	Observer Observer
}

// Set is the stores of one generation of an app.
type Set struct {
	stores map[string]*Handle
	once   sync.Once
}

// Open opens (or shares) the backend of every store in cfgs and returns
// them as a Set. An embedded file that is locked by another process, or is
// not a valid store, fails Open with an error naming the path; a Redis
// server that cannot be reached does not: its calls fail with Unavailable
// until it can, and Open logs a warning. Nothing is left open on error.
func Open(ctx context.Context, cfgs []config.KVStore, opts Options) (*Set, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Set{stores: map[string]*Handle{}}
	for _, c := range cfgs {
		b, err := acquire(ctx, c, log)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("kv store %q: %w", c.Name, err)
		}
		h := &Handle{cfg: c, b: b}
		if opts.Observer != nil {
			h.obs = opts.Observer.Store(c.Name, c.Backend)
		}
		s.stores[c.Name] = h
	}
	return s, nil
}

// Store returns the store named name and whether the Set has it. A nil Set
// has none.
func (s *Set) Store(name string) (*Handle, bool) {
	if s == nil {
		return nil, false
	}
	h, ok := s.stores[name]
	return h, ok
}

// Close releases the Set's backends; one no other Set uses is closed. It is
// safe to call more than once, and on a nil Set.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	s.once.Do(func() {
		for _, h := range s.stores {
			errs = append(errs, h.b.release())
		}
	})
	return errors.Join(errs...)
}

// registry holds the backends open in this process, by identity.
var registry = struct {
	mu   sync.Mutex
	open map[string]*backend
}{open: map[string]*backend{}}

// backend is a Store shared by the Sets that use it.
type backend struct {
	id   string
	st   Store
	refs int // guarded by registry.mu
}

// identity is what makes two store configs share one backend: the same
// embedded file, the same Redis settings, or the same memory store name.
func identity(c config.KVStore) string {
	switch c.Backend {
	case "embedded":
		return "embedded\x00" + c.Path
	case "redis":
		return fmt.Sprintf("redis\x00%s\x00%d\x00%s\x00%s", c.URL, c.PoolSize, c.Timeout, c.ConnectTimeout)
	default:
		return "memory\x00" + c.Name
	}
}

func acquire(ctx context.Context, c config.KVStore, log *slog.Logger) (*backend, error) {
	id := identity(c)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if b, ok := registry.open[id]; ok {
		b.refs++
		return b, nil
	}
	var st Store
	var err error
	switch c.Backend {
	case "embedded":
		st, err = OpenEmbedded(c.Path, EmbeddedOptions{LockTimeout: c.ConnectTimeout, Logger: log})
	case "redis":
		st, err = OpenRedis(ctx, RedisOptions{URL: c.URL, PoolSize: c.PoolSize, Timeout: c.Timeout, ConnectTimeout: c.ConnectTimeout, Logger: log})
	case "memory":
		st = NewMemory()
	default:
		err = fmt.Errorf("unknown backend %q", c.Backend)
	}
	if err != nil {
		return nil, err
	}
	where := c.Path
	if c.Backend == "redis" {
		where = redactURL(c.URL)
	}
	log.Info("kv store opened", "store", c.Name, "backend", c.Backend, "at", where)
	b := &backend{id: id, st: st, refs: 1}
	registry.open[id] = b
	return b, nil
}

func (b *backend) release() error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	b.refs--
	if b.refs > 0 {
		return nil
	}
	delete(registry.open, b.id)
	return b.st.Close()
}

// Handle is one store of a Set: the backend with the store's prefix,
// limits, timeout, error classification and metrics.
type Handle struct {
	cfg config.KVStore
	b   *backend
	obs func(op Op, d time.Duration, bytesIn, bytesOut int, kind Kind)
}

// Name is the store's name.
func (h *Handle) Name() string { return h.cfg.Name }

// Config is the store's configuration.
func (h *Handle) Config() config.KVStore { return h.cfg }

// call runs fn under the store's timeout, classifies its error and
// reports the operation.
func (h *Handle) call(ctx context.Context, op Op, key string, in int, fn func(ctx context.Context, key string) (out int, err error)) error {
	start := time.Now()
	if err := h.checkKey(op, key); err != nil {
		h.report(op, start, 0, 0, err)
		return err
	}
	cancel := context.CancelFunc(func() {})
	if h.cfg.Backend != "memory" { // the memory store never waits
		ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
	}
	out, err := fn(ctx, h.cfg.Prefix+key)
	if err != nil {
		err = h.classify(op, ctx, err)
		out = 0
	}
	cancel()
	h.report(op, start, len(key)+in, out, err)
	return err
}

func (h *Handle) report(op Op, start time.Time, in, out int, err error) {
	if h.obs == nil {
		return
	}
	var k Kind
	if e, ok := err.(*Error); ok {
		k = e.Kind
	}
	h.obs(op, time.Since(start), in, out, k)
}

func (h *Handle) checkKey(op Op, key string) error {
	switch {
	case key == "":
		return &Error{Store: h.cfg.Name, Op: op, Kind: Invalid, Err: errors.New("empty key")}
	case len(key) > h.cfg.MaxKeySize:
		return &Error{Store: h.cfg.Name, Op: op, Kind: TooLarge,
			Err: fmt.Errorf("key of %d bytes exceeds kv.%s.max_key_size of %d", len(key), h.cfg.Name, h.cfg.MaxKeySize)}
	}
	return nil
}

func (h *Handle) checkValue(op Op, v []byte) error {
	if int64(len(v)) > h.cfg.MaxValueSize {
		return &Error{Store: h.cfg.Name, Op: op, Kind: TooLarge,
			Err: fmt.Errorf("value of %d bytes exceeds kv.%s.max_value_size of %d", len(v), h.cfg.Name, h.cfg.MaxValueSize)}
	}
	return nil
}

func (h *Handle) checkTTL(op Op, ttl time.Duration) error {
	if ttl < 0 {
		return &Error{Store: h.cfg.Name, Op: op, Kind: Invalid, Err: fmt.Errorf("negative TTL %s", ttl)}
	}
	return nil
}

// classify wraps a backend error in an *Error of the right Kind.
func (h *Handle) classify(op Op, ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	k := Unavailable
	switch {
	case errors.Is(err, ErrNotInteger):
		k = Invalid
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), ctx.Err() != nil, isTimeout(err):
		k = Timeout
	}
	return &Error{Store: h.cfg.Name, Op: op, Kind: k, Err: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Get returns key's value and whether it is present.
func (h *Handle) Get(ctx context.Context, key string) (v []byte, ok bool, err error) {
	err = h.call(ctx, OpGet, key, 0, func(ctx context.Context, k string) (int, error) {
		var err error
		v, ok, err = h.b.st.Get(ctx, k)
		return len(v), err
	})
	return v, ok, err
}

// Set stores value under key, expiring after ttl when ttl > 0.
func (h *Handle) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := errors.Join(h.checkValue(OpSet, value), h.checkTTL(OpSet, ttl)); err != nil {
		return h.refuse(OpSet, err)
	}
	return h.call(ctx, OpSet, key, len(value), func(ctx context.Context, k string) (int, error) {
		return 0, h.b.st.Set(ctx, k, value, ttl)
	})
}

// refuse reports a call refused before reaching the backend.
func (h *Handle) refuse(op Op, err error) error {
	var e *Error
	errors.As(err, &e) // errors.Join of one non-nil error: its first
	h.report(op, time.Now(), 0, 0, e)
	return e
}

// Delete removes key and reports whether it was present.
func (h *Handle) Delete(ctx context.Context, key string) (ok bool, err error) {
	err = h.call(ctx, OpDelete, key, 0, func(ctx context.Context, k string) (int, error) {
		var err error
		ok, err = h.b.st.Delete(ctx, k)
		return 0, err
	})
	return ok, err
}

// Exists reports whether key is present.
func (h *Handle) Exists(ctx context.Context, key string) (ok bool, err error) {
	err = h.call(ctx, OpExists, key, 0, func(ctx context.Context, k string) (int, error) {
		var err error
		ok, err = h.b.st.Exists(ctx, k)
		return 0, err
	})
	return ok, err
}

// Incr adds delta to key's counter and returns the new value.
func (h *Handle) Incr(ctx context.Context, key string, delta int64) (n int64, err error) {
	err = h.call(ctx, OpIncr, key, 8, func(ctx context.Context, k string) (int, error) {
		var err error
		n, err = h.b.st.Incr(ctx, k, delta)
		return 8, err
	})
	return n, err
}

// CAS replaces key's value old with new; see Store.CAS.
func (h *Handle) CAS(ctx context.Context, key string, old, new Value, ttl time.Duration) (ok bool, err error) {
	if err := errors.Join(h.checkValue(OpCAS, new.Data), h.checkTTL(OpCAS, ttl)); err != nil {
		return false, h.refuse(OpCAS, err)
	}
	err = h.call(ctx, OpCAS, key, len(old.Data)+len(new.Data), func(ctx context.Context, k string) (int, error) {
		var err error
		ok, err = h.b.st.CAS(ctx, k, old, new, ttl)
		return 0, err
	})
	return ok, err
}

// parseCounter parses a stored counter; absent (nil) is 0.
func parseCounter(v []byte) (int64, error) {
	if v == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, ErrNotInteger
	}
	return n, nil
}

// addCounter adds delta to n, failing on overflow.
func addCounter(n, delta int64) (int64, error) {
	r := n + delta
	if (delta > 0 && r < n) || (delta < 0 && r > n) {
		return 0, ErrNotInteger
	}
	return r, nil
}

package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// EmbeddedOptions configure OpenEmbedded.
type EmbeddedOptions struct {
	// LockTimeout bounds the wait for the file's lock when another
	// process holds it; 0 means one second.
	LockTimeout time.Duration
	// Logger receives sweep failures; nil means slog.Default().
	Logger *slog.Logger
}

// Embedded is the embedded backend: one bbolt file. Each write is one
// bbolt transaction, committed with fsync before the call returns, so a
// write that fails (a full disk) leaves nothing of itself in the file.
// Values are stored with their expiry time (8 bytes, big-endian unix
// nanoseconds, 0 for none) in front; a read treats an expired value as
// absent, and a sweep every SweepInterval deletes them.
type Embedded struct {
	db   *bolt.DB
	path string
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
}

var bucket = []byte("kv")

// sweepBatch bounds the expired keys one sweep transaction deletes.
const sweepBatch = 1000

// OpenEmbedded opens (creating if needed) the store file at path. A file
// another process holds, or one that is not a bbolt file, fails with an
// error naming path.
func OpenEmbedded(path string, opts EmbeddedOptions) (*Embedded, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open embedded store %s: the file is locked by another process (waited %s; is another wasmserve using it?)", path, opts.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open embedded store %s: not a valid store file (corrupt, or not written by wasmserve): %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	e := &Embedded{db: db, path: path, log: opts.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	go e.sweeper()
	return e, nil
}

// Path is the store file.
func (e *Embedded) Path() string { return e.path }

func (e *Embedded) sweeper() {
	defer close(e.done)
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if _, err := e.Sweep(); err != nil {
				e.log.Warn("kv embedded store: sweep of expired keys failed", "path", e.path, "error", err)
			}
		}
	}
}

// Sweep deletes expired keys, at most sweepBatch per transaction, and
// returns how many it deleted.
func (e *Embedded) Sweep() (int, error) {
	total := 0
	for {
		now := time.Now().UnixNano()
		var expired [][]byte
		if err := e.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			for k, v := c.First(); k != nil && len(expired) < sweepBatch; k, v = c.Next() {
				if !liveAt(v, now) {
					expired = append(expired, bytes.Clone(k))
				}
			}
			return nil
		}); err != nil {
			return total, err
		}
		if len(expired) == 0 {
			return total, nil
		}
		if err := e.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for _, k := range expired {
				if v := b.Get(k); v != nil && !liveAt(v, now) {
					if err := b.Delete(k); err != nil {
						return err
					}
					total++
				}
			}
			return nil
		}); err != nil {
			return total, e.wrap(err)
		}
		if len(expired) < sweepBatch {
			return total, nil
		}
	}
}

// liveAt reports whether a stored value has not expired at now. A value
// shorter than its expiry header counts as expired.
func liveAt(v []byte, now int64) bool {
	if len(v) < 8 {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(v))
	return exp == 0 || now < exp
}

func encode(v []byte, exp int64) []byte {
	out := make([]byte, 8+len(v))
	binary.BigEndian.PutUint64(out, uint64(exp))
	copy(out[8:], v)
	return out
}

// live returns the data of key's value and its expiry, or ok false.
func live(b *bolt.Bucket, key string) (data []byte, exp int64, ok bool) {
	v := b.Get([]byte(key))
	if v == nil || !liveAt(v, time.Now().UnixNano()) {
		return nil, 0, false
	}
	return v[8:], int64(binary.BigEndian.Uint64(v)), true
}

// wrap marks write failures (no space, I/O errors) as ErrUnavailable and
// names the file.
func (e *Embedded) wrap(err error) error {
	if err == nil || errors.Is(err, ErrNotInteger) {
		return err
	}
	return fmt.Errorf("%w: embedded store %s: %w", ErrUnavailable, e.path, err)
}

func (e *Embedded) view(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.wrap(e.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) }))
}

// update runs fn in a write transaction. bbolt has one writer at a time;
// a call whose context ends while it waits for its turn still runs, since
// the wait cannot be abandoned, but reports the context's error only when
// fn has not run.
func (e *Embedded) update(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.wrap(e.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) }))
}

// Get implements Store.
func (e *Embedded) Get(ctx context.Context, key string) (v []byte, ok bool, err error) {
	err = e.view(ctx, func(b *bolt.Bucket) error {
		var d []byte
		if d, _, ok = live(b, key); ok {
			v = bytes.Clone(d)
			if v == nil {
				v = []byte{}
			}
		}
		return nil
	})
	return v, ok, err
}

// Set implements Store.
func (e *Embedded) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	return e.update(ctx, func(b *bolt.Bucket) error {
		return b.Put([]byte(key), encode(v, expiry(ttl)))
	})
}

// Delete implements Store.
func (e *Embedded) Delete(ctx context.Context, key string) (ok bool, err error) {
	err = e.update(ctx, func(b *bolt.Bucket) error {
		_, _, ok = live(b, key)
		if b.Get([]byte(key)) == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	return ok, err
}

// Exists implements Store.
func (e *Embedded) Exists(ctx context.Context, key string) (ok bool, err error) {
	err = e.view(ctx, func(b *bolt.Bucket) error {
		_, _, ok = live(b, key)
		return nil
	})
	return ok, err
}

// Incr implements Store.
func (e *Embedded) Incr(ctx context.Context, key string, delta int64) (n int64, err error) {
	err = e.update(ctx, func(b *bolt.Bucket) error {
		d, exp, ok := live(b, key)
		if !ok {
			d, exp = nil, 0
		}
		cur, err := parseCounter(d)
		if err == nil {
			n, err = addCounter(cur, delta)
		}
		if err != nil {
			return err
		}
		return b.Put([]byte(key), encode(strconv.AppendInt(nil, n, 10), exp))
	})
	return n, err
}

// CAS implements Store.
func (e *Embedded) CAS(ctx context.Context, key string, old, new Value, ttl time.Duration) (swapped bool, err error) {
	err = e.update(ctx, func(b *bolt.Bucket) error {
		d, _, ok := live(b, key)
		if ok == old.Absent || (ok && !bytes.Equal(d, old.Data)) {
			return nil
		}
		swapped = true
		if new.Absent {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), encode(new.Data, expiry(ttl)))
	})
	if err != nil {
		swapped = false
	}
	return swapped, err
}

// Close implements Store: it stops the sweep and closes the file,
// releasing its lock.
func (e *Embedded) Close() error {
	select {
	case <-e.stop:
		return nil
	default:
	}
	close(e.stop)
	<-e.done
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("close embedded store %s: %w", e.path, err)
	}
	return nil
}

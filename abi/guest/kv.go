//go:build wasip1

package guest

import (
	"errors"
	"time"
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

//go:wasmimport wasmserve kv_get
func kvGet(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport wasmserve kv_set
func kvSet(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32, ttlMs int64) int32

//go:wasmimport wasmserve kv_delete
func kvDelete(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport wasmserve kv_exists
func kvExists(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport wasmserve kv_incr
func kvIncr(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, delta int64, result unsafe.Pointer) int32

//go:wasmimport wasmserve kv_cas
func kvCAS(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, old unsafe.Pointer, oldLen uint32, new unsafe.Pointer, newLen uint32, ttlMs int64) int32

//go:wasmimport wasmserve kv_error
func kvError(buf unsafe.Pointer, bufLen uint32) int32

// Errors a key-value call can match with errors.Is; the *KVError it
// returns carries the host's message.
var (
	ErrKVNoStore     = errors.New("kv: no such store")
	ErrKVTooLarge    = errors.New("kv: value or key too large")
	ErrKVUnavailable = errors.New("kv: backend unavailable")
	ErrKVTimeout     = errors.New("kv: timeout")
	ErrKVInvalid     = errors.New("kv: invalid argument or not an integer")
)

// KVError is a failed key-value call: its code (abi.ErrKV*, abi.ErrInvalid)
// and the host's message.
type KVError struct {
	Code    int32
	Message string
}

func (e *KVError) Error() string { return e.Message }

// Is matches the ErrKV* value of the error's code.
func (e *KVError) Is(target error) bool { return target == kvSentinel(e.Code) }

func kvSentinel(code int32) error {
	switch code {
	case abi.ErrKVNoStore:
		return ErrKVNoStore
	case abi.ErrKVTooLarge:
		return ErrKVTooLarge
	case abi.ErrKVTimeout:
		return ErrKVTimeout
	case abi.ErrInvalid:
		return ErrKVInvalid
	}
	return ErrKVUnavailable
}

func kvErr(code int32) error {
	var stack [256]byte
	buf := stack[:]
	for {
		n := kvError(unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if int(n) <= len(buf) {
			msg := string(buf[:n])
			if msg == "" {
				msg = kvSentinel(code).Error()
			}
			return &KVError{Code: code, Message: msg}
		}
		buf = make([]byte, n)
	}
}

// Store is a key-value store the app section configures (kv.NAME.backend).
// Its methods call the host; they are safe to use from init functions
// (registered with OnInit) and handlers alike.
type Store struct{ name string }

// KV returns the store named name. It does not check that the store exists:
// the first call does (ErrKVNoStore).
func KV(name string) Store { return Store{name: name} }

func ptr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func bptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Get returns key's value and true, or false when key is absent or
// expired.
func (s Store) Get(key string) ([]byte, bool, error) {
	var stack [512]byte
	buf := stack[:]
	for {
		n := kvGet(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)), bptr(buf), uint32(len(buf)))
		switch {
		case n == abi.ErrNotFound:
			return nil, false, nil
		case n < 0:
			return nil, false, kvErr(n)
		case int(n) <= len(buf):
			return append([]byte(nil), buf[:n]...), true, nil
		}
		buf = make([]byte, n)
	}
}

// Set stores value under key until it is deleted.
func (s Store) Set(key string, value []byte) error { return s.SetTTL(key, value, 0) }

// SetTTL stores value under key; it expires after ttl when ttl > 0 (rounded
// down to milliseconds, at least one).
func (s Store) SetTTL(key string, value []byte, ttl time.Duration) error {
	if n := kvSet(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)), bptr(value), uint32(len(value)), ttlMs(ttl)); n < 0 {
		return kvErr(n)
	}
	return nil
}

func ttlMs(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(1, ttl.Milliseconds())
}

// Delete removes key and reports whether it was present.
func (s Store) Delete(key string) (bool, error) {
	n := kvDelete(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)))
	if n < 0 {
		return false, kvErr(n)
	}
	return n == 1, nil
}

// Exists reports whether key is present.
func (s Store) Exists(key string) (bool, error) {
	n := kvExists(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)))
	if n < 0 {
		return false, kvErr(n)
	}
	return n == 1, nil
}

// Incr adds delta to the decimal counter under key (absent counts as 0)
// atomically, across every instance and, with Redis, every process, and
// returns the new value. The counter keeps its expiry.
func (s Store) Incr(key string, delta int64) (int64, error) {
	var out int64
	if n := kvIncr(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)), delta, unsafe.Pointer(&out)); n < 0 {
		return 0, kvErr(n)
	}
	return out, nil
}

// CompareAndSwap replaces key's value with new when its current value is
// old, atomically, and reports whether it did. A nil old expects key to be
// absent; a nil new deletes key (an empty, non-nil slice is an empty
// value). ttl applies to the new value as in SetTTL.
func (s Store) CompareAndSwap(key string, old, new []byte, ttl time.Duration) (bool, error) {
	oldLen, newLen := uint32(len(old)), uint32(len(new))
	if old == nil {
		oldLen = abi.KVAbsent
	}
	if new == nil {
		newLen = abi.KVAbsent
	}
	n := kvCAS(ptr(s.name), uint32(len(s.name)), ptr(key), uint32(len(key)), bptr(old), oldLen, bptr(new), newLen, ttlMs(ttl))
	if n < 0 {
		return false, kvErr(n)
	}
	return n == 1, nil
}

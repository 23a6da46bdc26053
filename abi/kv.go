package abi

// Key-value store imports (module ModuleName). They are optional additions
// to version 1: a guest imports only those it uses. Every call names a
// store configured in the app section (kv.NAME.backend); store names, keys
// and values are byte strings passed as pointer and length. See the
// "Key-value stores" section of ABI.md.
const (
	// ImportKVGet has the signature (store_ptr, store_len, key_ptr,
	// key_len, buf_ptr, buf_len i32) -> i32. It returns the value's length,
	// copying it into the buffer only when it fits, ErrNotFound when the key
	// is absent, or a negative error code. A value that did not fit is kept
	// by the host, and the next ImportKVGet of the same store and key
	// returns that same value without asking the store again.
	ImportKVGet = "kv_get"
	// ImportKVSet has the signature (store_ptr, store_len, key_ptr,
	// key_len, val_ptr, val_len i32, ttl_ms i64) -> i32. It stores the
	// value, expiring after ttl_ms milliseconds when ttl_ms > 0, and
	// returns 0 or a negative error code.
	ImportKVSet = "kv_set"
	// ImportKVDelete has the signature (store_ptr, store_len, key_ptr,
	// key_len i32) -> i32. It returns 1 when the key was present, 0 when
	// not, or a negative error code.
	ImportKVDelete = "kv_delete"
	// ImportKVExists has the signature (store_ptr, store_len, key_ptr,
	// key_len i32) -> i32: 1 present, 0 absent, or a negative error code.
	ImportKVExists = "kv_exists"
	// ImportKVIncr has the signature (store_ptr, store_len, key_ptr,
	// key_len i32, delta i64, result_ptr i32) -> i32. It adds delta to the
	// decimal integer stored under the key (absent counts as 0)
	// atomically, writes the new value as an i64 (8 bytes, little-endian)
	// at result_ptr and returns 0, or a negative error code (ErrInvalid for
	// a value that is not a decimal integer, or an overflow).
	ImportKVIncr = "kv_incr"
	// ImportKVCAS has the signature (store_ptr, store_len, key_ptr,
	// key_len, old_ptr, old_len, new_ptr, new_len i32, ttl_ms i64) -> i32.
	// It replaces the key's value with the new one when its current value
	// equals the old one, atomically, and returns 1 when it did, 0 when
	// the current value differs, or a negative error code. An old_len of
	// KVAbsent expects the key to be absent; a new_len of KVAbsent deletes
	// the key.
	ImportKVCAS = "kv_cas"
	// ImportKVError has the signature (buf_ptr, buf_len i32) -> i32. It
	// returns the length of the message of the last failed kv call of
	// this instance (0 when the last kv call succeeded), copying it when
	// it fits.
	ImportKVError = "kv_error"
)

// KVAbsent, as an old_len or new_len of ImportKVCAS, stands for "no
// value": 0xFFFFFFFF (-1 as i32).
const KVAbsent uint32 = 0xFFFFFFFF

// Error codes of the key-value imports, beyond ErrNotFound (absent key)
// and ErrInvalid (empty key, negative TTL, Incr on a non-integer).
const (
	ErrKVNoStore     int32 = -4 // the app configures no store of that name
	ErrKVTooLarge    int32 = -5 // value over kv.NAME.max_value_size, or key over kv.NAME.max_key_size
	ErrKVUnavailable int32 = -6 // the backend failed: unreachable, disk full, I/O error
	ErrKVTimeout     int32 = -7 // kv.NAME.timeout or the request's deadline passed
)

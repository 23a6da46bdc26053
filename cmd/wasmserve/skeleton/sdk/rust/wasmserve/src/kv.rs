//! Key-value stores: the `kv_*` host imports (see abi/ABI.md, "Key-value
//! stores"). A store is configured in the app section (`kv.NAME.backend`).
//!
//! ```ignore
//! let n = wasmserve::kv::store("default").incr("hits", 1)?;
//! ```

/// Raw key-value imports (module `wasmserve`).
pub mod sys {
    #[link(wasm_import_module = "wasmserve")]
    extern "C" {
        pub fn kv_get(store: *const u8, store_len: u32, key: *const u8, key_len: u32, buf: *mut u8, len: u32) -> i32;
        pub fn kv_set(store: *const u8, store_len: u32, key: *const u8, key_len: u32, val: *const u8, val_len: u32, ttl_ms: i64) -> i32;
        pub fn kv_delete(store: *const u8, store_len: u32, key: *const u8, key_len: u32) -> i32;
        pub fn kv_exists(store: *const u8, store_len: u32, key: *const u8, key_len: u32) -> i32;
        pub fn kv_incr(store: *const u8, store_len: u32, key: *const u8, key_len: u32, delta: i64, result: *mut i64) -> i32;
        pub fn kv_cas(
            store: *const u8, store_len: u32, key: *const u8, key_len: u32,
            old: *const u8, old_len: u32, new: *const u8, new_len: u32, ttl_ms: i64,
        ) -> i32;
        pub fn kv_error(buf: *mut u8, len: u32) -> i32;
    }
}

/// Error codes of the key-value imports.
pub const INVALID: i32 = -2;
pub const NO_STORE: i32 = -4;
pub const TOO_LARGE: i32 = -5;
pub const UNAVAILABLE: i32 = -6;
pub const TIMEOUT: i32 = -7;
/// `old_len` / `new_len` of `kv_cas` for "no value".
pub const ABSENT: u32 = 0xFFFF_FFFF;

/// A failed key-value call: its code (`NO_STORE`, `TOO_LARGE`,
/// `UNAVAILABLE`, `TIMEOUT`, `INVALID`) and the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

fn error(code: i32) -> Error {
    let mut buf = vec![0u8; 256];
    loop {
        let n = unsafe { sys::kv_error(buf.as_mut_ptr(), buf.len() as u32) } as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return Error { code, message: String::from_utf8_lossy(&buf).into_owned() };
        }
        buf.resize(n, 0);
    }
}

fn check(n: i32) -> Result<i32, Error> {
    if n < 0 {
        Err(error(n))
    } else {
        Ok(n)
    }
}

/// A store named in the app section.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    name: &'a str,
}

/// The store `name`; the first call checks that it exists (`NO_STORE`).
pub fn store(name: &str) -> Store<'_> {
    Store { name }
}

impl Store<'_> {
    fn n(&self) -> (*const u8, u32) {
        (self.name.as_ptr(), self.name.len() as u32)
    }

    /// The value of `key`, or `None` when it is absent or expired.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let (s, sl) = self.n();
        let mut buf = vec![0u8; 256];
        loop {
            let n = unsafe { sys::kv_get(s, sl, key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), buf.len() as u32) };
            if n == -1 {
                return Ok(None);
            }
            let n = check(n)? as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            buf.resize(n, 0); // the host keeps the value for the next call
        }
    }

    /// Stores `value` under `key` until it is deleted.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.set_ttl(key, value, 0)
    }

    /// Stores `value` under `key`, expiring after `ttl_ms` milliseconds
    /// when it is not 0.
    pub fn set_ttl(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), Error> {
        let (s, sl) = self.n();
        let ttl = ttl_ms.min(i64::MAX as u64) as i64;
        check(unsafe { sys::kv_set(s, sl, key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32, ttl) })?;
        Ok(())
    }

    /// Deletes `key`; true when it was present.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        let (s, sl) = self.n();
        Ok(check(unsafe { sys::kv_delete(s, sl, key.as_ptr(), key.len() as u32) })? == 1)
    }

    /// Whether `key` is present.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        let (s, sl) = self.n();
        Ok(check(unsafe { sys::kv_exists(s, sl, key.as_ptr(), key.len() as u32) })? == 1)
    }

    /// Adds `delta` to the decimal counter under `key` (absent counts as
    /// 0) atomically and returns the new value.
    pub fn incr(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let (s, sl) = self.n();
        let mut out = 0i64;
        check(unsafe { sys::kv_incr(s, sl, key.as_ptr(), key.len() as u32, delta, &mut out) })?;
        Ok(out)
    }

    /// Replaces `key`'s value `old` with `new` atomically; true when it
    /// did. `None` as `old` expects the key absent; as `new` deletes it.
    pub fn compare_and_swap(&self, key: &str, old: Option<&[u8]>, new: Option<&[u8]>, ttl_ms: u64) -> Result<bool, Error> {
        let (s, sl) = self.n();
        let (op, ol) = old.map_or((std::ptr::null(), ABSENT), |v| (v.as_ptr(), v.len() as u32));
        let (np, nl) = new.map_or((std::ptr::null(), ABSENT), |v| (v.as_ptr(), v.len() as u32));
        let ttl = ttl_ms.min(i64::MAX as u64) as i64;
        Ok(check(unsafe { sys::kv_cas(s, sl, key.as_ptr(), key.len() as u32, op, ol, np, nl, ttl) })? == 1)
    }
}

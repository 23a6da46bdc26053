//! hello-rust: the wasmserve example app in Rust, answering the conformance
//! routes (see host/internal/conformance) through the Rust SDK, and
//! `GET /json?name=N`, a JSON endpoint.
//!
//! `POST /isolation/secret` and `POST /isolation/scan` let the conformance
//! suite check that `isolation = request` leaks nothing between requests:
//! secret writes a mark (the body, every byte XORed with 0x5A) into a global,
//! the heap, the stack and a freshly grown page; scan counts the copies of the
//! mark in the whole linear memory without ever building it.
//! `POST /isolation/secret-in-place` writes the mark into the same places save
//! the grown page, so memory does not grow and the request exercises the reset
//! of a snapshot rather than the end of the instance.

use core::arch::wasm32;
use core::ptr::{read_volatile, write_volatile};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use wasmserve::{Request, Response};

thread_local! {
    static GREETING: RefCell<String> = RefCell::new(String::from("hello, world"));
    static COUNTER: Cell<u64> = Cell::new(0);
    static HOARD: RefCell<Vec<Box<[u8]>>> = RefCell::new(Vec::new());
}

static SPINS: AtomicU64 = AtomicU64::new(0);

/// The isolation mark's key: the mark is the secret with every byte XORed
/// with it, so the mark exists only where /isolation/secret writes it.
const MARK_KEY: u8 = 0x5A;
/// The longest secret /isolation/secret and /isolation/scan accept.
const MARK_MAX: usize = 64;
const PAGE: usize = 65536;

/// The global copy of the mark (place 1).
static mut MARK_GLOBAL: [u8; MARK_MAX] = [0; MARK_MAX];
/// The heap copy of the mark (place 2), never freed.
static MARK_HEAP: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// Where the stack copy's checksum is discarded, so the copy is not elided.
static MARK_SINK: AtomicU8 = AtomicU8::new(0);
/// Address 0, read through a volatile load so the scan's base pointer is
/// opaque to the compiler (address 0 is valid linear memory in wasm).
static MEMORY_BASE: usize = 0;

fn init() -> Result<(), String> {
    if let Some(g) = wasmserve::config("greeting") {
        GREETING.with(|v| *v.borrow_mut() = g);
    }
    Ok(())
}

fn serve(req: &Request, w: &mut Response) {
    let path = req.path;
    if path == b"/" {
        w.header("Content-Type", "text/plain; charset=utf-8");
        GREETING.with(|g| w.write(g.borrow().as_bytes()));
    } else if path == b"/fetch" {
        let url = req.query_param("url").unwrap_or_default();
        match wasmserve::outbound::http("GET", &url, &[], &[]) {
            Ok(r) => {
                w.set_status(r.status);
                w.write(r.body());
            }
            Err(e) => {
                w.set_status(502);
                w.write(format!("outbound: {}", e.message));
            }
        }
    } else if path == b"/echo" {
        w.header("X-Echo-Method", req.method);
        w.header("X-Echo-Path", req.path);
        w.header("X-Echo-Query", req.query);
        for (k, v) in req.headers.iter() {
            if k.starts_with(b"X-Test-") {
                w.header(k, v);
            }
        }
        w.write(req.body);
    } else if let Some(code) = path.strip_prefix(b"/status/") {
        let code = std::str::from_utf8(code).ok().and_then(|s| s.parse().ok());
        w.set_status(code.unwrap_or(400));
    } else if path == b"/headers" {
        w.header("X-Multi", "one");
        w.header("X-Multi", "two");
        w.write("headers");
    } else if let Some(key) = path.strip_prefix(b"/config/") {
        match wasmserve::config(&String::from_utf8_lossy(key)) {
            Some(v) => w.write(v),
            None => {
                w.set_status(404);
                w.write("missing");
            }
        }
    } else if path == b"/log" {
        wasmserve::debug("conformance debug");
        wasmserve::info("conformance info");
        wasmserve::warn("conformance warn");
        wasmserve::error("conformance error");
        w.write("logged");
    } else if path == b"/shutting-down" {
        w.write(if wasmserve::shutting_down() { "true" } else { "false" });
    } else if path == b"/counter" {
        let n = COUNTER.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        w.write(n.to_string());
    } else if path == b"/json" {
        // GET /json?name=N: a JSON object built with the SDK's query and
        // JSON helpers; N may hold any character.
        let name = req.query_param("name").unwrap_or_else(|| String::from("world"));
        let count = COUNTER.with(|c| c.get());
        let mut out = String::from("{\"greeting\":");
        GREETING.with(|g| wasmserve::json_quote_into(&mut out, &g.borrow()));
        out.push_str(",\"name\":");
        wasmserve::json_quote_into(&mut out, &name);
        out.push_str(&format!(",\"counter\":{}}}", count));
        w.header("Content-Type", "application/json");
        w.write(out);
    } else if path == b"/isolation/secret" || path == b"/isolation/secret-in-place" {
        let secret = req.body;
        if secret.is_empty() || secret.len() > MARK_MAX {
            w.set_status(400);
            w.write("secret must be 1..64 bytes");
            return;
        }
        mark_secret(secret, path == b"/isolation/secret");
        w.write("stored");
    } else if path == b"/isolation/scan" {
        let secret = req.body;
        if secret.is_empty() || secret.len() > MARK_MAX {
            w.set_status(400);
            w.write("secret must be 1..64 bytes");
            return;
        }
        w.write(scan_marks(secret).to_string());
    } else if path == b"/kv" {
        w.write(kv_script());
    } else if path == b"/panic" {
        panic!("hello-rust: /panic requested");
    } else if path == b"/spin" {
        loop {
            SPINS.fetch_add(1, Ordering::Relaxed);
        }
    } else if path == b"/grow" {
        // 16 KiB blocks, so the failed growth is within a page of max_memory;
        // allocation failure aborts, which traps.
        HOARD.with(|h| loop {
            h.borrow_mut().push(vec![1u8; 16 << 10].into_boxed_slice());
        });
    } else {
        w.set_status(404);
        w.write("not found");
    }
}

wasmserve::export!(serve, init);

/// Writes the mark of secret (1..=MARK_MAX bytes) into a global, the heap, the
/// stack and, if grow, a page grown for the purpose. Every byte is XORed
/// straight into its place with a volatile write, so no other copy of the mark
/// is built and none of these copies can be optimised away.
fn mark_secret(secret: &[u8], grow: bool) {
    // 1. The global buffer.
    for (k, &b) in secret.iter().enumerate() {
        // SAFETY: k < secret.len() <= MARK_MAX; the guest is single-threaded.
        unsafe { write_volatile(core::ptr::addr_of_mut!(MARK_GLOBAL[k]), b ^ MARK_KEY) };
    }
    // 2. A heap allocation of len(S) bytes, kept reachable from a global.
    let heap: &mut [u8] = Box::leak(vec![0u8; secret.len()].into_boxed_slice());
    for (k, &b) in secret.iter().enumerate() {
        unsafe { write_volatile(heap.as_mut_ptr().add(k), b ^ MARK_KEY) };
    }
    MARK_HEAP.store(heap.as_mut_ptr(), Ordering::Relaxed);
    // 3. A stack buffer, in a function of its own.
    mark_stack(secret);
    // 4. A page grown now; if memory cannot grow, or grow is false (the mark
    // stays in place), this place is skipped.
    if !grow {
        return;
    }
    let old_pages = wasm32::memory_grow(0, 1);
    if old_pages != usize::MAX {
        let page = (old_pages * PAGE) as *mut u8;
        for (k, &b) in secret.iter().enumerate() {
            // SAFETY: the page just grown is the guest's and nobody else's.
            unsafe { write_volatile(page.add(k), b ^ MARK_KEY) };
        }
    }
}

/// Writes the mark of secret into a local array on the shadow stack (in
/// linear memory), then reads it back into a checksum discarded through a
/// global; never inlined, so the array is this function's own frame.
#[inline(never)]
fn mark_stack(secret: &[u8]) {
    let mut buf = [0u8; MARK_MAX];
    let p = buf.as_mut_ptr();
    for (k, &b) in secret.iter().enumerate() {
        unsafe { write_volatile(p.add(k), b ^ MARK_KEY) };
    }
    let mut sum = 0u8;
    for k in 0..secret.len() {
        sum = sum.wrapping_add(unsafe { read_volatile(p.add(k)) });
    }
    MARK_SINK.store(sum, Ordering::Relaxed);
}

/// Counts the offsets i in the whole linear memory where the mark of secret
/// starts, comparing each byte read (volatile) with secret's byte XORed on
/// the fly, so the mark itself is never built.
fn scan_marks(secret: &[u8]) -> u64 {
    let size = wasm32::memory_size(0) * PAGE;
    if secret.len() > size {
        return 0;
    }
    // SAFETY: a plain read of a static; the volatile load hides its value (0).
    let base = unsafe { read_volatile(&MEMORY_BASE) } as *const u8;
    let mut count = 0;
    for i in 0..=size - secret.len() {
        let mut k = 0;
        // SAFETY: i + k < size, inside linear memory.
        while k < secret.len()
            && unsafe { read_volatile(base.wrapping_add(i + k)) } == secret[k] ^ MARK_KEY
        {
            k += 1;
        }
        if k == secret.len() {
            count += 1;
        }
    }
    count
}

/// The conformance script of the key-value imports, on the store "default"
/// (max_value_size 16).
fn kv_script() -> String {
    use wasmserve::kv;
    let s = kv::store("default");
    let _ = s.set("k", b"v1");
    let get = s.get("k").ok().flatten().unwrap_or_default();
    let _ = s.delete("n");
    let _ = s.incr("n", 2);
    let n = s.incr("n", 2).unwrap_or(0);
    let b = |r: Result<bool, kv::Error>| match r {
        Ok(true) => "1".to_string(),
        Ok(false) => "0".to_string(),
        Err(e) => e.code.to_string(),
    };
    let cas1 = b(s.compare_and_swap("n", Some(b"4"), Some(b"x"), 0));
    let cas2 = b(s.compare_and_swap("n", Some(b"4"), Some(b"y"), 0));
    let exists = b(s.exists("k"));
    let delete = b(s.delete("k"));
    let gone = if s.get("k") == Ok(None) { -1 } else { 0 };
    let large = s.set("k", b"xxxxxxxxxxxxxxxxx").err().map_or(0, |e| e.code);
    let nostore = kv::store("nope").exists("k").err();
    let msg = match &nostore {
        Some(e) if e.message.contains("\"nope\"") => "ok".to_string(),
        Some(e) => e.message.clone(),
        None => String::new(),
    };
    format!(
        "get={} incr={} cas={},{} exists={} delete={} gone={} large={} nostore={} msg={}",
        String::from_utf8_lossy(&get), n, cas1, cas2, exists, delete, gone, large,
        nostore.map_or(0, |e| e.code), msg
    )
}

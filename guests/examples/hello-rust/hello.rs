//! hello-rust: the wasmserve example app in Rust, answering the conformance
//! routes (see host/internal/conformance) through the Rust SDK, and
//! `GET /json?name=N`, a JSON endpoint.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmserve::{Request, Response};

thread_local! {
    static GREETING: RefCell<String> = RefCell::new(String::from("hello, world"));
    static COUNTER: Cell<u64> = Cell::new(0);
    static HOARD: RefCell<Vec<Box<[u8]>>> = RefCell::new(Vec::new());
}

static SPINS: AtomicU64 = AtomicU64::new(0);

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

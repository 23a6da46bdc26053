//! {{.Name}}: a wasmserve app in Rust, a `cdylib` for wasm32-wasi built
//! with the wasmserve SDK in ./wasmserve (copied from the wasmserve source
//! tree). A cdylib is a WASI reactor; a Rust binary would be a WASI
//! command, which wasmserve refuses.

use std::cell::RefCell;
use wasmserve::{Request, Response};

thread_local! {
    static GREETING: RefCell<String> = RefCell::new(String::from("hello, world"));
}

/// Runs once per instance, before the first request: app config
/// ([app:main] in app.ini) is readable here. An error fails the instance.
fn init() -> Result<(), String> {
    if let Some(g) = wasmserve::config("greeting") {
        GREETING.with(|v| *v.borrow_mut() = g);
    }
    Ok(())
}

fn serve(req: &Request, w: &mut Response) {
    if req.path == b"/" {
        w.header("Content-Type", "text/plain; charset=utf-8");
        GREETING.with(|g| w.write(g.borrow().as_bytes()));
        w.write(b"\n");
    } else {
        w.set_status(404);
        w.write(b"not found\n");
    }
}

wasmserve::export!(serve, init);

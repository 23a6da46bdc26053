//! Rust SDK for wasmserve guests (host ABI version 1, see abi/ABI.md).
//!
//! A guest is a `cdylib` for `wasm32-wasi` that names its handler with
//! [`export!`], which defines the module's exports:
//!
//! ```ignore
//! fn serve(req: &wasmserve::Request, w: &mut wasmserve::Response) {
//!     w.header("Content-Type", "text/plain; charset=utf-8");
//!     w.write(b"hello, world");
//! }
//! wasmserve::export!(serve);
//! ```
//!
//! `export!(serve, init)` also runs `init() -> Result<(), String>` once per
//! instance before the first request; app config is readable there and an
//! error fails the instance. Building the guest with the environment variable
//! `WASMSERVE_ABI_VERSION=N` set makes it declare version N instead of 1.
//!
//! A panic traps: the host answers HTTP 500, logs the panic message (written
//! to stderr) and replaces the instance.

use std::convert::TryInto;

/// The ABI version this SDK implements.
pub const ABI_VERSION: i32 = 1;

pub mod outbound;
pub mod kv;

/// Raw host imports (module `wasmserve`).
pub mod sys {
    #[link(wasm_import_module = "wasmserve")]
    extern "C" {
        pub fn request_read(buf: *mut u8, len: u32) -> i32;
        pub fn config_get(key: *const u8, key_len: u32, buf: *mut u8, len: u32) -> i32;
        pub fn config_list(buf: *mut u8, len: u32) -> i32;
        pub fn log(level: i32, msg: *const u8, len: u32);
        pub fn shutting_down() -> i32;
        pub fn metric(kind: i32, name: *const u8, len: u32, value: f64) -> i32;
        pub fn generation() -> i64;
    }
}

/// Request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Http,
    Thrift,
    Other(u32),
}

/// One request, borrowed from the SDK's request buffer for the duration of
/// the handler call.
#[derive(Debug)]
pub struct Request<'a> {
    pub kind: Kind,
    /// The HTTP method, or the Thrift message name.
    pub method: &'a [u8],
    /// The path as sent (escaped), without the query.
    pub path: &'a [u8],
    /// The raw query string without `?`.
    pub query: &'a [u8],
    /// HTTP request headers with canonical names, in order.
    pub headers: Fields<'a>,
    /// The HTTP body, or the whole Thrift message.
    pub body: &'a [u8],
    /// The client address.
    pub remote: &'a [u8],
    pub thrift_protocol: u32,
    pub thrift_type: u32,
    pub thrift_seqid: i32,
}

impl<'a> Request<'a> {
    /// Decodes a request record; `None` if it is malformed.
    pub fn parse(rec: &'a [u8]) -> Option<Request<'a>> {
        if rec.len() < 64 {
            return None;
        }
        let u = |at: usize| u32::from_le_bytes(rec[at..at + 4].try_into().unwrap());
        let span = |at: usize| -> Option<&'a [u8]> {
            let (off, len) = (u(at) as usize, u(at + 4) as usize);
            if len == 0 {
                return Some(&[]); // ABI.md: an empty field's offset is unspecified
            }
            rec.get(off..off.checked_add(len)?)
        };
        Some(Request {
            kind: match u(0) {
                1 => Kind::Http,
                2 => Kind::Thrift,
                k => Kind::Other(k),
            },
            method: span(4)?,
            path: span(12)?,
            query: span(20)?,
            headers: Fields(span(28)?),
            body: span(36)?,
            remote: span(44)?,
            thrift_protocol: u(52),
            thrift_type: u(56),
            thrift_seqid: u(60) as i32,
        })
    }

    /// The first header named `name` (canonical form, e.g. `Content-Type`).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }
}

/// A field list: `u32 name_len | u32 value_len | name | value`, repeated.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a>(pub &'a [u8]);

impl<'a> Fields<'a> {
    /// Iterates the entries in order; iteration stops at a malformed entry.
    pub fn iter(&self) -> FieldsIter<'a> {
        FieldsIter(self.0)
    }
}

/// Iterator over a [`Fields`] list, yielding `(name, value)`.
pub struct FieldsIter<'a>(&'a [u8]);

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.len() < 8 {
            return None;
        }
        let nl = u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize;
        let vl = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        let rest = &b[8..];
        if nl > rest.len() || vl > rest.len() - nl {
            self.0 = &[];
            return None;
        }
        self.0 = &rest[nl + vl..];
        Some((&rest[..nl], &rest[nl..nl + vl]))
    }
}

/// The response being built; headers and body may be written in any order.
/// The status defaults to 200.
#[derive(Debug, Default)]
pub struct Response {
    status: u32,
    headers: Vec<u8>,
    body: Vec<u8>,
}

impl Response {
    pub fn set_status(&mut self, status: u32) {
        self.status = status;
    }

    /// Adds one header entry; repeated names are sent as repeated lines.
    pub fn header(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        append_field(&mut self.headers, name.as_ref(), value.as_ref());
    }

    /// Appends to the body.
    pub fn write(&mut self, data: impl AsRef<[u8]>) {
        self.body.extend_from_slice(data.as_ref());
    }

    /// Encodes the response record into `out`, replacing its contents:
    /// `u32 status | u32 headers_len | headers | body`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(8 + self.headers.len() + self.body.len());
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.headers);
        out.extend_from_slice(&self.body);
    }

    fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
    }
}

/// Appends one field-list entry to `list`.
pub fn append_field(list: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    list.extend_from_slice(&(name.len() as u32).to_le_bytes());
    list.extend_from_slice(&(value.len() as u32).to_le_bytes());
    list.extend_from_slice(name);
    list.extend_from_slice(value);
}

impl<'a> Request<'a> {
    /// Every `name=value` pair of the query string, decoded (see
    /// [`query_pairs`]).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.query)
    }

    /// The first value of query parameter `name`, decoded; `None` if the
    /// query has no such parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Decodes an `application/x-www-form-urlencoded` string (a URL query
/// without `?`, or a form body) into its `name=value` pairs, in order, as
/// Go's `url.ParseQuery` does: pairs are separated by `&`, `+` is a space,
/// `%XX` is a byte; a pair without `=` has an empty value, empty pairs are
/// skipped, and a malformed escape is kept as written. Bytes that are not
/// UTF-8 become U+FFFD.
pub fn query_pairs(q: &[u8]) -> Vec<(String, String)> {
    q.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|&c| c == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[p.len()..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `+` and `%XX` escapes (see [`query_pairs`]).
pub fn percent_decode(s: &[u8]) -> String {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                match (hex(s[i + 1]), hex(s[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `s` to `out` as a JSON string, quotes included: the quote, the
/// backslash and every control character are escaped (`\n`, `\t`,
/// `\u001f`, ...), so the result is valid JSON for any input.
pub fn json_quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string, quotes included (see [`json_quote_into`]).
pub fn json_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    json_quote_into(&mut out, s);
    out
}

/// The app config value of `key` (lower case, dots kept), if it exists.
pub fn config(key: &str) -> Option<String> {
    let mut buf = vec![0u8; 64];
    loop {
        let n = unsafe { sys::config_get(key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), buf.len() as u32) };
        if n < 0 {
            return None;
        }
        if n as usize <= buf.len() {
            buf.truncate(n as usize);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.resize(n as usize, 0);
    }
}

/// Every app config entry, in file order.
pub fn config_all() -> Vec<(String, String)> {
    let mut buf = vec![0u8; 1024];
    loop {
        let n = unsafe { sys::config_list(buf.as_mut_ptr(), buf.len() as u32) } as usize;
        if n <= buf.len() {
            buf.truncate(n);
            break;
        }
        buf.resize(n, 0);
    }
    Fields(&buf)
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// Log levels, as log/slog's.
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum Level {
    Debug = -4,
    Info = 0,
    Warn = 4,
    Error = 8,
}

/// Writes `msg` to the host log at `level`, tagged with the worker,
/// generation and trace id.
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as u32) }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// Whether the server has begun graceful shutdown.
pub fn shutting_down() -> bool {
    unsafe { sys::shutting_down() != 0 }
}

/// The reload generation of this instance, 1 for the first.
pub fn generation() -> i64 {
    unsafe { sys::generation() }
}

/// Metric kinds for [`metric`].
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum MetricKind {
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
}

/// Why the host refused a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricError {
    Invalid,
    Limit,
}

/// Records a guest metric.
pub fn metric(kind: MetricKind, name: &str, value: f64) -> Result<(), MetricError> {
    match unsafe { sys::metric(kind as i32, name.as_ptr(), name.len() as u32, value) } {
        0 => Ok(()),
        -3 => Err(MetricError::Limit),
        _ => Err(MetricError::Invalid),
    }
}

#[doc(hidden)]
pub mod rt {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct State {
        req: Vec<u8>,
        resp: Response,
        out: Vec<u8>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// Parses a decimal ABI version given at build time, else ABI_VERSION.
    pub fn abi_version(v: Option<&str>) -> i32 {
        v.and_then(|s| s.parse().ok()).unwrap_or(ABI_VERSION)
    }

    pub fn init(f: fn() -> Result<(), String>) -> i32 {
        match f() {
            Ok(()) => 0,
            Err(e) => {
                error(&format!("init: {}", e));
                1
            }
        }
    }

    pub fn handle(n: i32, serve: fn(&Request, &mut Response)) -> i64 {
        STATE.with(|s| {
            let s = &mut *s.borrow_mut();
            let n = n as u32 as usize;
            s.req.clear();
            s.req.resize(n, 0);
            unsafe { sys::request_read(s.req.as_mut_ptr(), n as u32) };
            s.resp.reset();
            match Request::parse(&s.req) {
                Some(req) => serve(&req, &mut s.resp),
                None => {
                    s.resp.set_status(500);
                    s.resp.write("guest: malformed request record");
                }
            }
            s.resp.encode(&mut s.out);
            ((s.out.as_ptr() as u32 as u64) << 32 | s.out.len() as u64) as i64
        })
    }
}

/// Defines the module's exports for handler `serve: fn(&Request, &mut
/// Response)` and, optionally, `init: fn() -> Result<(), String>`.
#[macro_export]
macro_rules! export {
    ($serve:path) => {
        $crate::export!($serve, || Ok(()));
    };
    ($serve:path, $init:expr) => {
        /// The WASI reactor initialiser: runs the static constructors
        /// (wasi-libc's preopened directories among them) once.
        #[no_mangle]
        pub extern "C" fn _initialize() {
            extern "C" {
                fn __wasm_call_ctors();
            }
            unsafe { __wasm_call_ctors() }
        }

        #[no_mangle]
        pub extern "C" fn wasmserve_abi_version() -> i32 {
            $crate::rt::abi_version(option_env!("WASMSERVE_ABI_VERSION"))
        }

        #[no_mangle]
        pub extern "C" fn wasmserve_init() -> i32 {
            $crate::rt::init($init)
        }

        #[no_mangle]
        pub extern "C" fn wasmserve_handle(request_len: i32) -> i64 {
            $crate::rt::handle(request_len, $serve)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let q = query_pairs(b"a=1&b=x+y%20z&&c&d=%zz&e=caf%C3%A9&a=2&f=%4");
        let want: Vec<(String, String)> = [
            ("a", "1"), ("b", "x y z"), ("c", ""), ("d", "%zz"), ("e", "caf\u{e9}"), ("a", "2"), ("f", "%4"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(q, want);
    }

    #[test]
    fn json() {
        assert_eq!(json_quote("plain"), "\"plain\"");
        assert_eq!(json_quote("a\"b\\c\nd\te\u{1}f\u{7f}é"), "\"a\\\"b\\\\c\\nd\\te\\u0001f\u{7f}é\"");
    }
}

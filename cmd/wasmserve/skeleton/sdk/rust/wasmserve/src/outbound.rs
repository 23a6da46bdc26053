//! Outbound HTTP requests and Thrift calls through the host's clients (see
//! "Outbound calls" in abi/ABI.md and "Calling other services" in the
//! README). Start several calls before waiting on any to run them in
//! parallel:
//!
//! ```ignore
//! let a = wasmserve::outbound::http_start("GET", "http://127.0.0.1:8000/a", &[], &[])?;
//! let b = wasmserve::outbound::http_start("GET", "http://127.0.0.1:8000/b", &[], &[])?;
//! let (ra, rb) = (a.http()?, b.http()?);
//! ```

/// The raw imports.
pub mod sys {
    #[link(wasm_import_module = "wasmserve")]
    extern "C" {
        pub fn http_send(rec: *const u8, len: u32) -> i32;
        pub fn thrift_send(client: *const u8, client_len: u32, msg: *const u8, msg_len: u32) -> i32;
        pub fn outbound_wait(handle: i32, timeout_ms: i32) -> i32;
        pub fn outbound_read(handle: i32, buf: *mut u8, len: u32) -> i32;
        pub fn outbound_close(handle: i32) -> i32;
        pub fn outbound_error(buf: *mut u8, len: u32) -> i32;
    }
}

/// A failed outbound call: the code (`-10` denied, `-11` connect, `-12`
/// timeout, `-13` too large, `-14` protocol, `-3` max_outbound …) and the
/// host's message.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "outbound call failed ({}): {}", self.code, self.message)
    }
}

fn last_error(code: i32) -> Error {
    let mut buf = vec![0u8; 256];
    loop {
        let n = unsafe { sys::outbound_error(buf.as_mut_ptr(), buf.len() as u32) };
        if n >= 0 && (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return Error { code, message: String::from_utf8_lossy(&buf).into_owned() };
        }
        buf.resize(n as usize, 0);
    }
}

/// An HTTP response: status, headers (a field list; iterate with
/// `crate::Fields`) and body.
pub struct HttpResponse {
    pub status: u32,
    record: Vec<u8>,
    headers_len: usize,
}

impl HttpResponse {
    /// The headers as a field list.
    pub fn headers(&self) -> &[u8] {
        &self.record[8..8 + self.headers_len]
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.record[8 + self.headers_len..]
    }
}

/// A call in flight.
pub struct Handle(i32);

impl Handle {
    /// Waits for the call and returns its reply bytes (a response record
    /// for HTTP, the reply message for Thrift).
    pub fn wait(self) -> Result<Vec<u8>, Error> {
        let h = self.0;
        std::mem::forget(self);
        let n = unsafe { sys::outbound_wait(h, -1) };
        if n < 0 {
            return Err(last_error(n));
        }
        let mut buf = vec![0u8; n as usize];
        let r = unsafe { sys::outbound_read(h, buf.as_mut_ptr(), n as u32) };
        if r < 0 {
            return Err(last_error(r));
        }
        Ok(buf)
    }

    /// Waits for an HTTP call and decodes its response.
    pub fn http(self) -> Result<HttpResponse, Error> {
        let record = self.wait()?;
        let u32_at = |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
        if record.len() < 8 || u32_at(4) as usize > record.len() - 8 {
            return Err(Error { code: -14, message: "malformed response record".into() });
        }
        let (status, headers_len) = (u32_at(0), u32_at(4) as usize);
        Ok(HttpResponse { status, record, headers_len })
    }
}

impl Drop for Handle {
    /// A handle dropped without waiting cancels its call.
    fn drop(&mut self) {
        unsafe { sys::outbound_close(self.0) };
    }
}

/// Starts an HTTP request; `headers` is a field list (see
/// `crate::append_field`), possibly empty.
pub fn http_start(method: &str, url: &str, headers: &[u8], body: &[u8]) -> Result<Handle, Error> {
    let mut rec = Vec::with_capacity(12 + method.len() + url.len() + headers.len() + body.len());
    rec.extend_from_slice(&(method.len() as u32).to_le_bytes());
    rec.extend_from_slice(&(url.len() as u32).to_le_bytes());
    rec.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    rec.extend_from_slice(method.as_bytes());
    rec.extend_from_slice(url.as_bytes());
    rec.extend_from_slice(headers);
    rec.extend_from_slice(body);
    let h = unsafe { sys::http_send(rec.as_ptr(), rec.len() as u32) };
    if h < 0 {
        return Err(last_error(h));
    }
    Ok(Handle(h))
}

/// Makes an HTTP request and waits for its response.
pub fn http(method: &str, url: &str, headers: &[u8], body: &[u8]) -> Result<HttpResponse, Error> {
    http_start(method, url, headers, body)?.http()
}

/// Sends one complete Thrift message through the configured client
/// (`client.endpoint` in the app section).
pub fn thrift_start(client: &str, message: &[u8]) -> Result<Handle, Error> {
    let h = unsafe { sys::thrift_send(client.as_ptr(), client.len() as u32, message.as_ptr(), message.len() as u32) };
    if h < 0 {
        return Err(last_error(h));
    }
    Ok(Handle(h))
}

/// Sends a Thrift message and returns the reply message (empty for
/// oneway).
pub fn thrift_call(client: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
    thrift_start(client, message)?.wait()
}

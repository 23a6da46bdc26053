// AssemblyScript SDK for wasmserve guests (host ABI version 1, see
// abi/ABI.md).
//
// The app's entry file registers its handler and re-exports the module's
// exports from this file (imported by its relative path, SDK below):
//
//   import { Request, Response, handle } from "SDK/assembly/index";
//   export { wasmserve_abi_version, wasmserve_handle, wasmserve_init } from "SDK/assembly/index";
//   function serve(req: Request, w: Response): void { w.writeString("hello, world"); }
//   handle(serve);
//
// Compile with `asc app.ts --exportStart _initialize -o app.wasm`, so that
// top-level statements run in the WASI-style reactor initialiser the host
// calls first. Compiling with `--use WASMSERVE_ABI_VERSION=N` declares ABI
// version N instead of 1.
//
// A thrown error calls env.abort, which the host provides: it logs the
// message and traps, the request fails with HTTP 500 and the instance is
// replaced.

/** The ABI version this SDK implements. */
export const ABI_VERSION: i32 = 1;

// Raw host imports (module "wasmserve").
@external("wasmserve", "request_read")
declare function host_request_read(buf: usize, len: u32): i32;
@external("wasmserve", "config_get")
declare function host_config_get(key: usize, keyLen: u32, buf: usize, len: u32): i32;
@external("wasmserve", "log")
declare function host_log(level: i32, msg: usize, len: u32): void;
@external("wasmserve", "shutting_down")
declare function host_shutting_down(): i32;
@external("wasmserve", "metric")
declare function host_metric(kind: i32, name: usize, len: u32, value: f64): i32;
@external("wasmserve", "generation")
declare function host_generation(): i64;

/** Request kinds. */
export const KIND_HTTP: u32 = 1;
export const KIND_THRIFT: u32 = 2;

/** One header or config entry. */
export class Field {
  constructor(public name: string, public value: string) {}
}

/** One request. body is a view of the SDK's request buffer, valid until the
 * handler returns. */
export class Request {
  kind: u32 = 0;
  /** The HTTP method, or the Thrift message name. */
  method: string = "";
  /** The path as sent (escaped), without the query. */
  path: string = "";
  /** The raw query string without "?". */
  query: string = "";
  /** HTTP request headers with canonical names, in order. */
  headers: Array<Field> = [];
  /** The HTTP body, or the whole Thrift message. */
  body: Uint8Array = new Uint8Array(0);
  /** The client address. */
  remote: string = "";
  thriftProtocol: u32 = 0;
  thriftType: u32 = 0;
  thriftSeqId: i32 = 0;

  /** The first header named name (canonical form), or null. */
  header(name: string): string | null {
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i].name == name) return this.headers[i].value;
    }
    return null;
  }
}

/** A growable byte buffer. */
class Bytes {
  buf: ArrayBuffer = new ArrayBuffer(256);
  len: i32 = 0;

  reserve(extra: i32): usize {
    const need = this.len + extra;
    if (need > this.buf.byteLength) {
      let cap = this.buf.byteLength * 2;
      while (cap < need) cap *= 2;
      const nb = new ArrayBuffer(cap);
      memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), this.len);
      this.buf = nb;
    }
    return changetype<usize>(this.buf) + this.len;
  }

  append(ptr: usize, n: i32): void {
    const at = this.reserve(n);
    memory.copy(at, ptr, n);
    this.len += n;
  }

  u32(v: u32): void {
    store<u32>(this.reserve(4), v);
    this.len += 4;
  }

  get ptr(): usize {
    return changetype<usize>(this.buf);
  }
}

/** The response being built; headers and body may be written in any order.
 * The status defaults to 200. */
export class Response {
  status: u32 = 200;
  private hdrs: Bytes = new Bytes();
  private out: Bytes = new Bytes();

  /** Adds one header entry; repeated names are sent as repeated lines. */
  header(name: string, value: string): void {
    const n = String.UTF8.encode(name);
    const v = String.UTF8.encode(value);
    this.hdrs.u32(n.byteLength);
    this.hdrs.u32(v.byteLength);
    this.hdrs.append(changetype<usize>(n), n.byteLength);
    this.hdrs.append(changetype<usize>(v), v.byteLength);
  }

  /** Appends bytes to the body. */
  write(data: Uint8Array): void {
    this.out.append(data.dataStart, data.byteLength);
  }

  /** Appends a string to the body, UTF-8 encoded. */
  writeString(s: string): void {
    const b = String.UTF8.encode(s);
    this.out.append(changetype<usize>(b), b.byteLength);
  }

  reset(): void {
    this.status = 200;
    this.hdrs.len = 0;
    this.out.len = 0;
  }

  /** Encodes the response record: u32 status | u32 headers_len | headers |
   * body. */
  encode(rec: Bytes): void {
    rec.len = 0;
    rec.u32(this.status);
    rec.u32(this.hdrs.len);
    rec.append(this.hdrs.ptr, this.hdrs.len);
    rec.append(this.out.ptr, this.out.len);
  }
}

/** A request handler. */
export type Handler = (req: Request, w: Response) => void;
/** An instance initialiser; a non-empty result is an error that fails the
 * instance. */
export type Init = () => string;

let handler: Handler | null = null;
let initFn: Init | null = null;

/** Sets the request handler. Call it from top-level code. */
export function handle(h: Handler): void {
  handler = h;
}

/** Sets a function run once per instance before the first request; app
 * config is readable there. */
export function onInit(f: Init): void {
  initFn = f;
}

/** The app config value of key (lower case, dots kept), or null. */
export function config(key: string): string | null {
  const k = String.UTF8.encode(key);
  let buf = new ArrayBuffer(64);
  for (;;) {
    const n = host_config_get(changetype<usize>(k), k.byteLength, changetype<usize>(buf), buf.byteLength);
    if (n < 0) return null;
    if (n <= buf.byteLength) return String.UTF8.decodeUnsafe(changetype<usize>(buf), n);
    buf = new ArrayBuffer(n);
  }
  return null;
}

/** Log levels, as log/slog's. */
export const DEBUG: i32 = -4;
export const INFO: i32 = 0;
export const WARN: i32 = 4;
export const ERROR: i32 = 8;

/** Writes msg to the host log at level. */
export function log(level: i32, msg: string): void {
  const b = String.UTF8.encode(msg);
  host_log(level, changetype<usize>(b), b.byteLength);
}

export function debug(msg: string): void { log(DEBUG, msg); }
export function info(msg: string): void { log(INFO, msg); }
export function warn(msg: string): void { log(WARN, msg); }
export function error(msg: string): void { log(ERROR, msg); }

/** Whether the server has begun graceful shutdown. */
export function shuttingDown(): bool {
  return host_shutting_down() != 0;
}

/** The reload generation of this instance, 1 for the first. */
export function generation(): i64 {
  return host_generation();
}

/** Metric kinds. */
export const COUNTER: i32 = 1;
export const GAUGE: i32 = 2;
export const HISTOGRAM: i32 = 3;

/** Records a guest metric; returns 0, -2 (invalid) or -3 (limit reached). */
export function metric(kind: i32, name: string, value: f64): i32 {
  const b = String.UTF8.encode(name);
  return host_metric(kind, changetype<usize>(b), b.byteLength, value);
}

let reqBuf = new ArrayBuffer(1024);
const resp = new Response();
const record = new Bytes();

function text(rec: usize, n: u32, at: usize): string {
  const off = load<u32>(rec + at), len = load<u32>(rec + at + 4);
  if (off > n || len > n - off) return "";
  return String.UTF8.decodeUnsafe(rec + off, len);
}

function parse(n: u32): Request {
  const rec = changetype<usize>(reqBuf);
  const r = new Request();
  r.kind = load<u32>(rec);
  r.method = text(rec, n, 4);
  r.path = text(rec, n, 12);
  r.query = text(rec, n, 20);
  r.remote = text(rec, n, 44);
  r.thriftProtocol = load<u32>(rec + 52);
  r.thriftType = load<u32>(rec + 56);
  r.thriftSeqId = load<i32>(rec + 60);
  let off = load<u32>(rec + 28), len = load<u32>(rec + 32);
  if (off <= n && len <= n - off) {
    // Field list: u32 name_len | u32 value_len | name | value, repeated.
    let p = rec + off;
    const end = p + len;
    while (end - p >= 8) {
      const nl = load<u32>(p), vl = load<u32>(p + 4);
      p += 8;
      if (<usize>nl > end - p || <usize>vl > end - p - nl) break;
      r.headers.push(new Field(String.UTF8.decodeUnsafe(p, nl), String.UTF8.decodeUnsafe(p + nl, vl)));
      p += nl + vl;
    }
  }
  off = load<u32>(rec + 36);
  len = load<u32>(rec + 40);
  if (off <= n && len <= n - off) r.body = Uint8Array.wrap(reqBuf, off, len);
  return r;
}

export function wasmserve_abi_version(): i32 {
  // @ts-ignore: a compile-time constant given with --use
  if (isDefined(WASMSERVE_ABI_VERSION)) return WASMSERVE_ABI_VERSION;
  return ABI_VERSION;
}

export function wasmserve_init(): i32 {
  if (initFn == null) return 0;
  const err = initFn!();
  if (err.length == 0) return 0;
  error("init: " + err);
  return 1;
}

export function wasmserve_handle(n: u32): i64 {
  if (<u32>reqBuf.byteLength < max(n, 64)) reqBuf = new ArrayBuffer(max(n, 64));
  memory.fill(changetype<usize>(reqBuf), 0, 64);
  host_request_read(changetype<usize>(reqBuf), n);
  resp.reset();
  if (handler == null) {
    resp.status = 501;
    resp.writeString("guest: no handler registered");
  } else {
    handler!(parse(n), resp);
  }
  resp.encode(record);
  return (<i64>record.ptr << 32) | <i64>record.len;
}

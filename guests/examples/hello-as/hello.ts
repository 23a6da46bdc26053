// hello-as: the wasmserve example app in AssemblyScript, answering the
// conformance routes (see guests/conformance) through the AssemblyScript SDK.
import * as ws from "../../sdk/assemblyscript/assembly/index";
import { Request, Response } from "../../sdk/assemblyscript/assembly/index";
export { wasmserve_abi_version, wasmserve_handle, wasmserve_init } from "../../sdk/assemblyscript/assembly/index";

let greeting = "hello, world";
let counter: u64 = 0;
let spins: u64 = 0;
const hoard: Array<ArrayBuffer> = [];

// The request isolation check (/isolation/secret, /isolation/secret-in-place
// and /isolation/scan): the secret's "mark" is its bytes XORed with ISO_KEY.
// It is written only where the two secret routes put it, byte by byte from
// the request body, and never built anywhere else, so /isolation/scan counts
// exactly those copies.
const ISO_KEY: u8 = 0x5a;
const ISO_MAX: i32 = 64;
// The global copy: 64 bytes in the module's data segment.
const isoGlobal: usize = memory.data(ISO_MAX);
// The heap copy: allocated per secret request and kept reachable here.
let isoHeap: Uint8Array | null = null;
// A checksum of the stack copy read back, so its writes cannot be elided.
let isoSink: u32 = 0;

function init(): string {
  const g = ws.config("greeting");
  if (g != null) greeting = g;
  return "";
}

function serve(req: Request, w: Response): void {
  const p = req.path;
  if (p == "/") {
    w.header("Content-Type", "text/plain; charset=utf-8");
    w.writeString(greeting);
  } else if (p == "/echo") {
    w.header("X-Echo-Method", req.method);
    w.header("X-Echo-Path", req.path);
    w.header("X-Echo-Query", req.query);
    for (let i = 0; i < req.headers.length; i++) {
      const h = req.headers[i];
      if (h.name.startsWith("X-Test-")) w.header(h.name, h.value);
    }
    w.write(req.body);
  } else if (p.startsWith("/status/")) {
    w.status = <u32>I32.parseInt(p.substring(8));
  } else if (p == "/headers") {
    w.header("X-Multi", "one");
    w.header("X-Multi", "two");
    w.writeString("headers");
  } else if (p.startsWith("/config/")) {
    const v = ws.config(p.substring(8));
    if (v == null) {
      w.status = 404;
      w.writeString("missing");
    } else {
      w.writeString(v);
    }
  } else if (p == "/log") {
    ws.debug("conformance debug");
    ws.info("conformance info");
    ws.warn("conformance warn");
    ws.error("conformance error");
    w.writeString("logged");
  } else if (p == "/shutting-down") {
    w.writeString(ws.shuttingDown() ? "true" : "false");
  } else if (p == "/counter") {
    counter++;
    w.writeString(counter.toString());
  } else if (p == "/panic") {
    throw new Error("hello-as: /panic requested");
  } else if (p == "/spin") {
    while (true) spins++;
  } else if (p == "/grow") {
    // 16 KiB blocks, so the failed growth is within a page of max_memory;
    // the allocator traps when memory.grow fails.
    while (true) hoard.push(new ArrayBuffer(16 << 10));
  } else if (p == "/isolation/secret" || p == "/isolation/secret-in-place" || p == "/isolation/scan") {
    const n = req.body.byteLength;
    if (n < 16 || n > ISO_MAX) {
      w.status = 400;
      w.writeString("body must be 16..64 bytes");
    } else if (p != "/isolation/scan") {
      // secret-in-place leaves out grown memory: under isolation = request a
      // request that grows memory ends its instance, so only a request that
      // does not grow it exercises the reset to the snapshot.
      isoSecret(req.body.dataStart, n, p == "/isolation/secret");
      w.writeString("stored");
    } else {
      w.writeString(isoScan(req.body.dataStart, n).toString());
    }
  } else {
    w.status = 404;
    w.writeString("not found");
  }
}

// Writes the mark of the n bytes at src to dst.
function isoMark(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i) ^ ISO_KEY);
}

// Writes the mark of the secret (n bytes at src, 16..64) into the places a
// request can leave data in: a global, the heap, the stack and, if grow is
// set, memory grown during the request.
function isoSecret(src: usize, n: i32, grow: bool): void {
  isoMark(isoGlobal, src, n);
  const h = new Uint8Array(n);
  isoMark(h.dataStart, src, n);
  isoHeap = h;
  isoSink = isoStack(src, n);
  if (!grow) return;
  // Grown memory: a page of its own, past everything the allocator manages
  // (it grows from memory.size() onwards, so it never hands this page out).
  const old = memory.grow(1);
  if (old >= 0) isoMark(<usize>old << 16, src, n);
}

// The stack copy. AssemblyScript keeps no byte arrays on a native stack
// (its shadow stack holds managed references only), so the function's
// frame-local 64-byte buffer is an unmanaged block allocated on entry and
// released on return, as a stack frame is popped: its bytes stay in memory
// until something else reuses them. Returns a checksum of the buffer read
// back, which the caller keeps in a global, so the writes stay.
function isoStack(src: usize, n: i32): u32 {
  const buf = heap.alloc(<usize>ISO_MAX);
  isoMark(buf, src, n);
  let sum: u32 = 0;
  for (let i = 0; i < n; i++) sum = sum * 31 + <u32>load<u8>(buf + <usize>i);
  heap.free(buf);
  return sum;
}

// Counts the offsets in the whole linear memory where the mark of the n
// bytes at src (16..64) starts, comparing on the fly.
function isoScan(src: usize, n: i32): u32 {
  const end = (<usize>memory.size() << 16) - <usize>n;
  const first = load<u8>(src) ^ ISO_KEY;
  let count: u32 = 0;
  for (let i: usize = 0; i <= end; i++) {
    if (load<u8>(i) != first) continue;
    let k = 1;
    while (k < n && load<u8>(i + <usize>k) == (load<u8>(src + <usize>k) ^ ISO_KEY)) k++;
    if (k == n) count++;
  }
  return count;
}

ws.onInit(init);
ws.handle(serve);

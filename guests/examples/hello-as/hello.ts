// hello-as: the wasmserve example app in AssemblyScript, answering the
// conformance routes (see guests/conformance) through the AssemblyScript SDK.
import * as ws from "../../sdk/assemblyscript/assembly/index";
import { Request, Response } from "../../sdk/assemblyscript/assembly/index";
export { wasmserve_abi_version, wasmserve_handle, wasmserve_init } from "../../sdk/assemblyscript/assembly/index";

let greeting = "hello, world";
let counter: u64 = 0;
let spins: u64 = 0;
const hoard: Array<ArrayBuffer> = [];

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
  } else {
    w.status = 404;
    w.writeString("not found");
  }
}

ws.onInit(init);
ws.handle(serve);

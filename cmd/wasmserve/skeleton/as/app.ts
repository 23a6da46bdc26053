// {{.Name}}: a wasmserve app in AssemblyScript, built with the SDK in ./sdk
// (copied from the wasmserve source tree; `make` installs the pinned
// compiler there with npm ci).
import * as ws from "./sdk/assembly/index";
import { Request, Response } from "./sdk/assembly/index";
export { wasmserve_abi_version, wasmserve_handle, wasmserve_init } from "./sdk/assembly/index";

let greeting = "hello, world";

// Runs once per instance, before the first request: app config ([app:main]
// in app.ini) is readable here. A non-empty result fails the instance.
function init(): string {
  const g = ws.config("greeting");
  if (g != null) greeting = g;
  return "";
}

function serve(req: Request, w: Response): void {
  if (req.path == "/") {
    w.header("Content-Type", "text/plain; charset=utf-8");
    w.writeString(greeting + "\n");
  } else {
    w.status = 404;
    w.writeString("not found\n");
  }
}

ws.onInit(init);
ws.handle(serve);

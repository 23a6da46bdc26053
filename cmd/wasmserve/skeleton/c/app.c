/* {{.Name}}: a wasmserve app in C, built as a WASI reactor with the
 * single-header SDK wasmserve.h (copied from the wasmserve source tree). */
#define WASMSERVE_IMPLEMENTATION
#include "wasmserve.h"

static char *greeting;

/* Runs once per instance, before the first request: app config ([app:main]
 * in app.ini) is readable here. Non-zero fails the instance. */
int ws_init(void) {
    greeting = ws_config("greeting");
    return 0;
}

void ws_serve(const ws_request *req, ws_response *w) {
    if (ws_bytes_eq(req->path, "/")) {
        ws_add_header_str(w, "Content-Type", "text/plain; charset=utf-8");
        ws_write_str(w, greeting ? greeting : "hello, world");
        ws_write_str(w, "\n");
        return;
    }
    ws_set_status(w, 404);
    ws_write_str(w, "not found\n");
}

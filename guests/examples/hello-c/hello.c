/* hello-c: the wasmserve example app in C, answering the conformance routes
 * (see host/internal/conformance) through the single-header SDK, and
 * GET /json?name=N, a JSON endpoint built with its query and JSON helpers. */
#define WASMSERVE_IMPLEMENTATION
#include "wasmserve.h"
#include "wasmserve_outbound.h"

#include <stdlib.h>
#include <string.h>

static char *greeting;
static unsigned long counter;
static volatile uint64_t spins;
static void *volatile hoard;

/* The isolation routes: the mark is the request body with every byte XORed
 * with MARK_XOR, built only in the four places /isolation/secret writes (the
 * first three for /isolation/secret-in-place). */
#define MARK_XOR 0x5A
#define MARK_MAX 64
static unsigned char mark_global[MARK_MAX];
static unsigned char *volatile mark_heap;  /* never freed */
static volatile uint32_t mark_checksum;    /* keeps the stack copy observable */
static volatile uintptr_t memory_base;     /* 0, hidden from the optimiser */

int ws_init(void) {
    greeting = ws_config("greeting");
    return 0;
}

/* A NUL-terminated copy of b; the caller frees it. */
static char *cstr(ws_bytes b) {
    char *s = malloc(b.len + 1);
    if (!s) __builtin_trap();
    memcpy(s, b.ptr, b.len);
    s[b.len] = 0;
    return s;
}

static ws_bytes suffix(ws_bytes b, size_t n) { return (ws_bytes){b.ptr + n, b.len - (uint32_t)n}; }

/* The decimal number b of 1 to 9 digits, else 400. */
static uint32_t status_code(ws_bytes b) {
    if (b.len == 0 || b.len > 9) return 400;
    uint32_t v = 0;
    for (uint32_t i = 0; i < b.len; i++) {
        if (b.ptr[i] < '0' || b.ptr[i] > '9') return 400;
        v = v * 10 + (b.ptr[i] - '0');
    }
    return v;
}

static void echo(const ws_request *req, ws_response *w) {
    ws_add_header(w, ws_str("X-Echo-Method"), req->method);
    ws_add_header(w, ws_str("X-Echo-Path"), req->path);
    ws_add_header(w, ws_str("X-Echo-Query"), req->query);
    uint32_t pos = 0;
    ws_bytes k, v;
    while (ws_fields_next(req->headers, &pos, &k, &v))
        if (ws_bytes_has_prefix(k, "X-Test-")) ws_add_header(w, k, v);
    ws_write(w, req->body.ptr, req->body.len);
}

/* fetch answers with the status and body of GET url (the query parameter)
 * through the host's HTTP client, or 502 with the host's message. */
static void fetch(const ws_request *req, ws_response *w) {
    char *url = ws_query_get(req->query, "url");
    ws_http_response r = ws_http_request("GET", url ? url : "", (ws_bytes){0}, (ws_bytes){0});
    free(url);
    if (r.code < 0) {
        ws_set_status(w, 502);
        ws_write_str(w, "outbound: ");
        ws_write_str(w, r.error ? r.error : "");
    } else {
        ws_set_status(w, r.status);
        ws_write(w, r.body.ptr, r.body.len);
    }
    ws_http_response_free(&r);
}

/* Writes label and the signed integer v. */
static void write_int(ws_response *w, const char *label, int64_t v) {
    char buf[24], *d = buf + sizeof buf;
    uint64_t u = v < 0 ? (uint64_t)-v : (uint64_t)v;
    do *--d = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--d = '-';
    ws_write_str(w, label);
    ws_write(w, d, (size_t)(buf + sizeof buf - d));
}

/* The conformance script of the key-value imports (store "default",
 * max_value_size 16). */
static void kv_script(ws_response *w) {
    uint8_t *v = NULL;
    uint32_t n = 0;
    int64_t c = 0;
    ws_kv_set("default", "k", "v1", 2, 0);
    ws_write_str(w, "get=");
    if (ws_kv_get("default", "k", &v, &n) == 0) {
        ws_write(w, v, n);
        free(v);
    }
    ws_kv_delete("default", "n");
    ws_kv_incr("default", "n", 2, &c);
    ws_kv_incr("default", "n", 2, &c);
    write_int(w, " incr=", c);
    write_int(w, " cas=", ws_kv_cas("default", "n", "4", 1, "x", 1, 0));
    write_int(w, ",", ws_kv_cas("default", "n", "4", 1, "y", 1, 0));
    write_int(w, " exists=", ws_kv_exists("default", "k"));
    write_int(w, " delete=", ws_kv_delete("default", "k"));
    write_int(w, " gone=", ws_kv_get("default", "k", &v, &n));
    write_int(w, " large=", ws_kv_set("default", "k", "xxxxxxxxxxxxxxxxx", 17, 0));
    write_int(w, " nostore=", ws_kv_exists("nope", "k"));
    char *msg = ws_kv_error();
    ws_write_str(w, strstr(msg, "\"nope\"") ? " msg=ok" : " msg=");
    if (!strstr(msg, "\"nope\"")) ws_write_str(w, msg);
    free(msg);
}

/* Writes the mark of s (len <= MARK_MAX) to a stack buffer of this frame,
 * through volatile stores, and folds it into mark_checksum so the writes
 * cannot be elided. */
__attribute__((noinline)) static void mark_stack(ws_bytes s) {
    volatile unsigned char buf[MARK_MAX];
    uint32_t sum = 0;
    for (uint32_t k = 0; k < s.len; k++) buf[k] = s.ptr[k] ^ MARK_XOR;
    for (uint32_t k = 0; k < s.len; k++) sum = sum * 31 + buf[k];
    mark_checksum = sum;
}

/* POST /isolation/secret: the mark of the body into a global, a heap block,
 * the stack and, if grow, a page grown now (skipped if the grow fails).
 * POST /isolation/secret-in-place is the same without grow, so memory keeps
 * its size. */
static void isolation_secret(ws_bytes s, int grow, ws_response *w) {
    if (s.len == 0 || s.len > MARK_MAX) {
        ws_set_status(w, 400);
        ws_write_str(w, "body must be 1 to 64 bytes");
        return;
    }
    for (uint32_t k = 0; k < s.len; k++) mark_global[k] = s.ptr[k] ^ MARK_XOR;
    unsigned char *h = malloc(s.len);
    if (!h) __builtin_trap();
    for (uint32_t k = 0; k < s.len; k++) h[k] = s.ptr[k] ^ MARK_XOR;
    mark_heap = h;
    mark_stack(s);
    if (grow) {
        size_t old = __builtin_wasm_memory_grow(0, 1);
        if (old != SIZE_MAX) {
            volatile unsigned char *g = (volatile unsigned char *)(memory_base + old * 65536);
            for (uint32_t k = 0; k < s.len; k++) g[k] = s.ptr[k] ^ MARK_XOR;
        }
    }
    ws_write_str(w, "stored");
}

/* POST /isolation/scan: the number of offsets in the whole linear memory
 * where the mark of the body starts, compared byte by byte without building
 * the mark. */
static void isolation_scan(ws_bytes s, ws_response *w) {
    if (s.len == 0 || s.len > MARK_MAX) {
        ws_set_status(w, 400);
        ws_write_str(w, "body must be 1 to 64 bytes");
        return;
    }
    const volatile unsigned char *m = (const volatile unsigned char *)memory_base;
    size_t size = __builtin_wasm_memory_size(0) * 65536;
    int64_t count = 0;
    for (size_t i = 0; i + s.len <= size; i++) {
        uint32_t k = 0;
        while (k < s.len && m[i + k] == (unsigned char)(s.ptr[k] ^ MARK_XOR)) k++;
        if (k == s.len) count++;
    }
    write_int(w, "", count);
}

void ws_serve(const ws_request *req, ws_response *w) {
    ws_bytes p = req->path;
    char num[24];
    if (ws_bytes_eq(p, "/")) {
        ws_add_header_str(w, "Content-Type", "text/plain; charset=utf-8");
        ws_write_str(w, greeting ? greeting : "hello, world");
    } else if (ws_bytes_eq(p, "/echo")) {
        echo(req, w);
    } else if (ws_bytes_eq(p, "/fetch")) {
        fetch(req, w);
    } else if (ws_bytes_has_prefix(p, "/status/")) {
        ws_set_status(w, status_code(suffix(p, 8)));
    } else if (ws_bytes_eq(p, "/headers")) {
        ws_add_header_str(w, "X-Multi", "one");
        ws_add_header_str(w, "X-Multi", "two");
        ws_write_str(w, "headers");
    } else if (ws_bytes_has_prefix(p, "/config/")) {
        char *key = cstr(suffix(p, 8));
        char *v = ws_config(key);
        free(key);
        if (!v) {
            ws_set_status(w, 404);
            ws_write_str(w, "missing");
            return;
        }
        ws_write_str(w, v);
        free(v);
    } else if (ws_bytes_eq(p, "/log")) {
        ws_log(WS_DEBUG, "conformance debug");
        ws_log(WS_INFO, "conformance info");
        ws_log(WS_WARN, "conformance warn");
        ws_log(WS_ERROR, "conformance error");
        ws_write_str(w, "logged");
    } else if (ws_bytes_eq(p, "/shutting-down")) {
        ws_write_str(w, ws_shutting_down() ? "true" : "false");
    } else if (ws_bytes_eq(p, "/counter")) {
        /* Decimal digits, written backwards from the end of num. */
        char *d = num + sizeof num;
        unsigned long v = ++counter;
        do *--d = (char)('0' + v % 10); while (v /= 10);
        ws_write(w, d, (size_t)(num + sizeof num - d));
    } else if (ws_bytes_eq(p, "/json")) {
        char *name = ws_query_get(req->query, "name");
        ws_add_header_str(w, "Content-Type", "application/json");
        ws_write_str(w, "{\"greeting\":");
        ws_write_json_str(w, greeting ? greeting : "hello, world");
        ws_write_str(w, ",\"name\":");
        ws_write_json_str(w, name ? name : "world");
        free(name);
        char *d = num + sizeof num;
        unsigned long v = counter;
        do *--d = (char)('0' + v % 10); while (v /= 10);
        ws_write_str(w, ",\"counter\":");
        ws_write(w, d, (size_t)(num + sizeof num - d));
        ws_write_str(w, "}");
    } else if (ws_bytes_eq(p, "/isolation/secret")) {
        isolation_secret(req->body, 1, w);
    } else if (ws_bytes_eq(p, "/isolation/secret-in-place")) {
        isolation_secret(req->body, 0, w);
    } else if (ws_bytes_eq(p, "/isolation/scan")) {
        isolation_scan(req->body, w);
    } else if (ws_bytes_eq(p, "/kv")) {
        kv_script(w);
    } else if (ws_bytes_eq(p, "/panic")) {
        ws_panic("hello-c: /panic requested");
    } else if (ws_bytes_eq(p, "/spin")) {
        for (;;) spins++;
    } else if (ws_bytes_eq(p, "/grow")) {
        /* A chain of 16 KiB blocks, so the last failed growth is within a
         * page of max_memory. */
        for (;;) {
            void **block = malloc(16 << 10);
            if (!block) __builtin_trap();
            *block = hoard;
            hoard = block;
        }
    } else {
        ws_set_status(w, 404);
        ws_write_str(w, "not found");
    }
}

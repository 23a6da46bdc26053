/*
 * wasmserve.h - single-header C SDK for wasmserve guests (host ABI version 1,
 * see abi/ABI.md).
 *
 * Build a guest as a WASI reactor:
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -s -o app.wasm app.c
 *
 * Exactly one translation unit defines WASMSERVE_IMPLEMENTATION before
 * including this header; it then defines the module's exports
 * wasmserve_abi_version, wasmserve_handle and wasmserve_init. The app defines
 *
 *     void ws_serve(const ws_request *req, ws_response *w);
 *
 * and may define int ws_init(void) (run once per instance, after the WASI
 * reactor initialiser; app config is readable there; non-zero fails the
 * instance). Compiling with -DWASMSERVE_ABI_VERSION=N declares version N
 * instead of 1, which the host refuses unless it implements N.
 *
 * Memory: the request and the response buffers are owned by the SDK and live
 * until the next request; everything a ws_bytes points into is valid only
 * during the ws_serve call. Allocation failure traps, which the host answers
 * with HTTP 500 and a fresh instance.
 */
#ifndef WASMSERVE_H
#define WASMSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef WASMSERVE_ABI_VERSION
#define WASMSERVE_ABI_VERSION 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A byte string that is not NUL-terminated. */
typedef struct ws_bytes {
    const uint8_t *ptr;
    uint32_t len;
} ws_bytes;

/* Request kinds (record offset 0). */
enum { WS_KIND_HTTP = 1, WS_KIND_THRIFT = 2 };

/* Log levels for ws_log, as log/slog's. */
enum { WS_DEBUG = -4, WS_INFO = 0, WS_WARN = 4, WS_ERROR = 8 };

/* Metric kinds for ws_metric. */
enum { WS_COUNTER = 1, WS_GAUGE = 2, WS_HISTOGRAM = 3 };

/* One decoded request record. headers is a field list: iterate it with
 * ws_fields_next. For Thrift requests, method is the message name and body
 * the whole message. */
typedef struct ws_request {
    uint32_t kind;
    ws_bytes method, path, query, headers, body, remote;
    uint32_t thrift_protocol, thrift_type;
    int32_t thrift_seqid;
} ws_request;

/* The response being built. Headers and body may be written in any order;
 * status defaults to 200. */
typedef struct ws_response {
    uint32_t status;
    uint8_t *headers;
    uint32_t headers_len, headers_cap;
    uint8_t *body;
    uint32_t body_len, body_cap;
} ws_response;

/* Iterates a field list. Start with pos = 0; each call stores the next entry
 * and returns true, or returns false at the end or on a malformed entry. */
bool ws_fields_next(ws_bytes list, uint32_t *pos, ws_bytes *name, ws_bytes *value);

/* Finds the first request header named name (canonical form, e.g.
 * "Content-Type"); returns false if there is none. */
bool ws_header(const ws_request *req, const char *name, ws_bytes *value);

/* ws_bytes helpers. */
bool ws_bytes_eq(ws_bytes b, const char *s);
bool ws_bytes_has_prefix(ws_bytes b, const char *prefix);
ws_bytes ws_str(const char *s);

void ws_set_status(ws_response *w, uint32_t status);
/* Appends one header entry; repeated names are sent as repeated lines. */
void ws_add_header(ws_response *w, ws_bytes name, ws_bytes value);
void ws_add_header_str(ws_response *w, const char *name, const char *value);
/* Appends to the body. */
void ws_write(ws_response *w, const void *data, size_t len);
void ws_write_str(ws_response *w, const char *s);

/* Query strings (a URL query without '?', or an
 * application/x-www-form-urlencoded body), read as Go's url.ParseQuery
 * does: pairs separated by '&', '+' is a space, %XX a byte, a pair without
 * '=' has an empty value, empty pairs are skipped, a malformed escape is
 * kept as written.
 *
 * ws_query_next iterates the pairs, undecoded: start with pos = 0; each call
 * stores the next pair and returns true, or returns false at the end. */
bool ws_query_next(ws_bytes query, uint32_t *pos, ws_bytes *name, ws_bytes *value);
/* Decodes '+' and %XX escapes of s into a malloc'd NUL-terminated string
 * that the caller frees; stores its length (which a decoded %00 makes
 * longer than strlen) in *len unless len is NULL. */
char *ws_url_decode(ws_bytes s, size_t *len);
/* The first value of query parameter name (compared after decoding),
 * decoded as by ws_url_decode (caller frees), or NULL when absent. */
char *ws_query_get(ws_bytes query, const char *name);

/* JSON: appends the len bytes at s to the body as a JSON string, quotes
 * included; '"', '\\' and every control character are escaped, so the
 * result is valid JSON for any UTF-8 input. */
void ws_write_json_string(ws_response *w, const void *s, size_t len);
void ws_write_json_str(ws_response *w, const char *s);

/* Looks up app config key (lower case, dots kept). Returns a malloc'd
 * NUL-terminated copy of its value that the caller frees, or NULL when the
 * key does not exist. */
char *ws_config(const char *key);

/* Writes msg to the host log at level (WS_DEBUG ... WS_ERROR). */
void ws_log(int32_t level, const char *msg);

/* True once the server has begun graceful shutdown. */
bool ws_shutting_down(void);

/* Records a guest metric; returns 0, -2 (invalid) or -3 (limit reached). */
int32_t ws_metric(int32_t kind, const char *name, double value);

/* The reload generation of this instance, 1 for the first. */
int64_t ws_generation(void);

/* Key-value stores (kv.NAME.* keys of the app section; see ABI.md). Each
 * call names the store and the key as NUL-terminated strings and returns a
 * result >= 0 or a negative code; ws_kv_error() gives the failed call's
 * message. */
#define WS_NOT_FOUND (-1)       /* kv_get: the key is absent or expired */
#define WS_INVALID (-2)         /* empty key, negative TTL, incr on a non-integer */
#define WS_KV_NO_STORE (-4)     /* the app configures no store of that name */
#define WS_KV_TOO_LARGE (-5)    /* value over kv.NAME.max_value_size, key over max_key_size */
#define WS_KV_UNAVAILABLE (-6)  /* the backend failed: unreachable, disk full */
#define WS_KV_TIMEOUT (-7)      /* kv.NAME.timeout or the request's deadline passed */
#define WS_KV_ABSENT 0xFFFFFFFFu /* ws_kv_cas: old (expect absent) or new (delete) length */

/* Reads key: 0 with *value a malloc'd copy (the caller frees it; NUL-
 * terminated for convenience, *len excludes the NUL), WS_NOT_FOUND, or a
 * negative code. */
int32_t ws_kv_get(const char *store, const char *key, uint8_t **value, uint32_t *len);
/* Stores value under key, expiring after ttl_ms milliseconds when > 0. */
int32_t ws_kv_set(const char *store, const char *key, const void *value, uint32_t len, int64_t ttl_ms);
/* 1 when the key was present and is deleted, 0 when absent, or a code. */
int32_t ws_kv_delete(const char *store, const char *key);
/* 1 present, 0 absent, or a code. */
int32_t ws_kv_exists(const char *store, const char *key);
/* Adds delta to the key's decimal counter atomically; 0 with *result the
 * new value, or a code. */
int32_t ws_kv_incr(const char *store, const char *key, int64_t delta, int64_t *result);
/* Replaces the value old with new atomically: 1 swapped, 0 the value
 * differs, or a code. WS_KV_ABSENT as old_len expects the key absent, as
 * new_len deletes it. */
int32_t ws_kv_cas(const char *store, const char *key, const void *old, uint32_t old_len,
                  const void *new_value, uint32_t new_len, int64_t ttl_ms);
/* The message of the last failed kv call, malloc'd (the caller frees). */
char *ws_kv_error(void);

/* Writes msg to stderr, which the host logs and reports as the fault's
 * message, and traps: the request fails with HTTP 500 and the instance is
 * replaced. */
_Noreturn void ws_panic(const char *msg);

/* Defined by the app; ws_init is optional. */
void ws_serve(const ws_request *req, ws_response *w);
__attribute__((weak)) int ws_init(void);

/* Raw host imports (module "wasmserve"). */
#define WS_IMPORT(name) __attribute__((import_module("wasmserve"), import_name(name)))
WS_IMPORT("request_read") int32_t ws_host_request_read(void *buf, uint32_t len);
WS_IMPORT("config_get") int32_t ws_host_config_get(const void *key, uint32_t key_len, void *buf, uint32_t len);
WS_IMPORT("config_list") int32_t ws_host_config_list(void *buf, uint32_t len);
WS_IMPORT("log") void ws_host_log(int32_t level, const void *msg, uint32_t len);
WS_IMPORT("shutting_down") int32_t ws_host_shutting_down(void);
WS_IMPORT("metric") int32_t ws_host_metric(int32_t kind, const void *name, uint32_t len, double value);
WS_IMPORT("generation") int64_t ws_host_generation(void);
WS_IMPORT("kv_get") int32_t ws_host_kv_get(const void *store, uint32_t store_len, const void *key, uint32_t key_len, void *buf, uint32_t len);
WS_IMPORT("kv_set") int32_t ws_host_kv_set(const void *store, uint32_t store_len, const void *key, uint32_t key_len, const void *val, uint32_t val_len, int64_t ttl_ms);
WS_IMPORT("kv_delete") int32_t ws_host_kv_delete(const void *store, uint32_t store_len, const void *key, uint32_t key_len);
WS_IMPORT("kv_exists") int32_t ws_host_kv_exists(const void *store, uint32_t store_len, const void *key, uint32_t key_len);
WS_IMPORT("kv_incr") int32_t ws_host_kv_incr(const void *store, uint32_t store_len, const void *key, uint32_t key_len, int64_t delta, int64_t *result);
WS_IMPORT("kv_cas") int32_t ws_host_kv_cas(const void *store, uint32_t store_len, const void *key, uint32_t key_len, const void *old, uint32_t old_len, const void *new_value, uint32_t new_len, int64_t ttl_ms);
WS_IMPORT("kv_error") int32_t ws_host_kv_error(void *buf, uint32_t len);
#undef WS_IMPORT

#ifdef __cplusplus
}
#endif

#ifdef WASMSERVE_IMPLEMENTATION

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t ws__u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ws__put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void *ws__must(void *p) {
    if (!p) __builtin_trap();
    return p;
}

/* Grows *buf to hold need bytes, doubling. */
static void ws__reserve(uint8_t **buf, uint32_t *cap, uint32_t need) {
    if (need <= *cap) return;
    uint32_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    *buf = ws__must(realloc(*buf, c));
    *cap = c;
}

bool ws_fields_next(ws_bytes list, uint32_t *pos, ws_bytes *name, ws_bytes *value) {
    uint32_t p = *pos;
    if (p > list.len || list.len - p < 8) return false;
    uint32_t nl = ws__u32(list.ptr + p), vl = ws__u32(list.ptr + p + 4);
    p += 8;
    if (nl > list.len - p || vl > list.len - p - nl) return false;
    *name = (ws_bytes){list.ptr + p, nl};
    *value = (ws_bytes){list.ptr + p + nl, vl};
    *pos = p + nl + vl;
    return true;
}

ws_bytes ws_str(const char *s) { return (ws_bytes){(const uint8_t *)s, (uint32_t)strlen(s)}; }

bool ws_bytes_eq(ws_bytes b, const char *s) {
    size_t n = strlen(s);
    return b.len == n && memcmp(b.ptr, s, n) == 0;
}

bool ws_bytes_has_prefix(ws_bytes b, const char *prefix) {
    size_t n = strlen(prefix);
    return b.len >= n && memcmp(b.ptr, prefix, n) == 0;
}

bool ws_header(const ws_request *req, const char *name, ws_bytes *value) {
    uint32_t pos = 0;
    ws_bytes k, v;
    while (ws_fields_next(req->headers, &pos, &k, &v)) {
        if (ws_bytes_eq(k, name)) {
            *value = v;
            return true;
        }
    }
    return false;
}

void ws_set_status(ws_response *w, uint32_t status) { w->status = status; }

void ws_add_header(ws_response *w, ws_bytes name, ws_bytes value) {
    uint32_t n = w->headers_len;
    ws__reserve(&w->headers, &w->headers_cap, n + 8 + name.len + value.len);
    ws__put_u32(w->headers + n, name.len);
    ws__put_u32(w->headers + n + 4, value.len);
    memcpy(w->headers + n + 8, name.ptr, name.len);
    memcpy(w->headers + n + 8 + name.len, value.ptr, value.len);
    w->headers_len = n + 8 + name.len + value.len;
}

void ws_add_header_str(ws_response *w, const char *name, const char *value) {
    ws_add_header(w, ws_str(name), ws_str(value));
}

void ws_write(ws_response *w, const void *data, size_t len) {
    if (len == 0) return;
    ws__reserve(&w->body, &w->body_cap, w->body_len + (uint32_t)len);
    memcpy(w->body + w->body_len, data, len);
    w->body_len += (uint32_t)len;
}

void ws_write_str(ws_response *w, const char *s) { ws_write(w, s, strlen(s)); }

bool ws_query_next(ws_bytes query, uint32_t *pos, ws_bytes *name, ws_bytes *value) {
    uint32_t p = *pos;
    while (p < query.len && query.ptr[p] == '&') p++; /* empty pairs */
    if (p >= query.len) return false;
    uint32_t end = p, eq = UINT32_MAX;
    while (end < query.len && query.ptr[end] != '&') {
        if (eq == UINT32_MAX && query.ptr[end] == '=') eq = end;
        end++;
    }
    if (eq == UINT32_MAX) {
        *name = (ws_bytes){query.ptr + p, end - p};
        *value = (ws_bytes){query.ptr + end, 0};
    } else {
        *name = (ws_bytes){query.ptr + p, eq - p};
        *value = (ws_bytes){query.ptr + eq + 1, end - eq - 1};
    }
    *pos = end;
    return true;
}

static int ws__hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *ws_url_decode(ws_bytes s, size_t *len) {
    char *out = ws__must(malloc((size_t)s.len + 1));
    size_t n = 0;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && s.len - i > 2 && ws__hex(s.ptr[i + 1]) >= 0 && ws__hex(s.ptr[i + 2]) >= 0) {
            c = (uint8_t)(ws__hex(s.ptr[i + 1]) << 4 | ws__hex(s.ptr[i + 2]));
            i += 2;
        }
        out[n++] = (char)c;
    }
    out[n] = 0;
    if (len) *len = n;
    return out;
}

char *ws_query_get(ws_bytes query, const char *name) {
    uint32_t pos = 0;
    ws_bytes k, v;
    size_t want = strlen(name);
    while (ws_query_next(query, &pos, &k, &v)) {
        size_t kl;
        char *key = ws_url_decode(k, &kl);
        int match = kl == want && memcmp(key, name, want) == 0;
        free(key);
        if (match) return ws_url_decode(v, NULL);
    }
    return NULL;
}

void ws_write_json_string(ws_response *w, const void *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = s;
    ws_write(w, "\"", 1);
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ws_write(w, p + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': ws_write(w, "\\\"", 2); break;
        case '\\': ws_write(w, "\\\\", 2); break;
        case '\n': ws_write(w, "\\n", 2); break;
        case '\r': ws_write(w, "\\r", 2); break;
        case '\t': ws_write(w, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ws_write(w, u, 6);
        }
        }
    }
    ws_write(w, p + run, len - run);
    ws_write(w, "\"", 1);
}

void ws_write_json_str(ws_response *w, const char *s) { ws_write_json_string(w, s, strlen(s)); }

char *ws_config(const char *key) {
    uint32_t kl = (uint32_t)strlen(key), cap = 64;
    for (;;) {
        char *buf = ws__must(malloc(cap + 1));
        int32_t n = ws_host_config_get(key, kl, buf, cap);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((uint32_t)n <= cap) {
            buf[n] = 0;
            return buf;
        }
        free(buf);
        cap = (uint32_t)n;
    }
}

void ws_log(int32_t level, const char *msg) { ws_host_log(level, msg, (uint32_t)strlen(msg)); }

bool ws_shutting_down(void) { return ws_host_shutting_down() != 0; }

int32_t ws_metric(int32_t kind, const char *name, double value) {
    return ws_host_metric(kind, name, (uint32_t)strlen(name), value);
}

int64_t ws_generation(void) { return ws_host_generation(); }

int32_t ws_kv_get(const char *store, const char *key, uint8_t **value, uint32_t *len) {
    uint32_t cap = 256;
    for (;;) {
        uint8_t *buf = ws__must(malloc(cap + 1));
        int32_t n = ws_host_kv_get(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key), buf, cap);
        if (n < 0) {
            free(buf);
            return n;
        }
        if ((uint32_t)n <= cap) {
            buf[n] = 0;
            *value = buf;
            *len = (uint32_t)n;
            return 0;
        }
        free(buf);
        cap = (uint32_t)n; /* the host keeps the value for the next call */
    }
}

int32_t ws_kv_set(const char *store, const char *key, const void *value, uint32_t len, int64_t ttl_ms) {
    return ws_host_kv_set(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key), value, len, ttl_ms);
}

int32_t ws_kv_delete(const char *store, const char *key) {
    return ws_host_kv_delete(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key));
}

int32_t ws_kv_exists(const char *store, const char *key) {
    return ws_host_kv_exists(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key));
}

int32_t ws_kv_incr(const char *store, const char *key, int64_t delta, int64_t *result) {
    return ws_host_kv_incr(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key), delta, result);
}

int32_t ws_kv_cas(const char *store, const char *key, const void *old, uint32_t old_len,
                  const void *new_value, uint32_t new_len, int64_t ttl_ms) {
    return ws_host_kv_cas(store, (uint32_t)strlen(store), key, (uint32_t)strlen(key), old, old_len,
                          new_value, new_len, ttl_ms);
}

char *ws_kv_error(void) {
    uint32_t cap = 128;
    for (;;) {
        char *buf = ws__must(malloc(cap + 1));
        int32_t n = ws_host_kv_error(buf, cap);
        if ((uint32_t)n <= cap) {
            buf[n] = 0;
            return buf;
        }
        free(buf);
        cap = (uint32_t)n;
    }
}

_Noreturn void ws_panic(const char *msg) {
    /* write(2) straight to WASI fd_write: no stdio linked in. */
    size_t n = strlen(msg);
    while (n > 0) {
        ssize_t k = write(2, msg, n);
        if (k <= 0) break;
        msg += k;
        n -= (size_t)k;
    }
    (void)!write(2, "\n", 1);
    __builtin_trap();
}

__attribute__((export_name("wasmserve_abi_version"))) int32_t ws__abi_version(void) {
    return WASMSERVE_ABI_VERSION;
}

__attribute__((export_name("wasmserve_init"))) int32_t ws__init(void) { return ws_init ? ws_init() : 0; }

static uint8_t *ws__req;
static uint32_t ws__req_cap;
static ws_response ws__resp;
static uint8_t *ws__out;
static uint32_t ws__out_cap;

/* Decodes (offset, length) at record offset at; out of range yields empty. */
static ws_bytes ws__span(const uint8_t *rec, uint32_t n, uint32_t at) {
    uint32_t off = ws__u32(rec + at), len = ws__u32(rec + at + 4);
    if (off > n || len > n - off) return (ws_bytes){rec, 0};
    return (ws_bytes){rec + off, len};
}

__attribute__((export_name("wasmserve_handle"))) int64_t ws__handle(uint32_t n) {
    ws__reserve(&ws__req, &ws__req_cap, n < 64 ? 64 : n);
    memset(ws__req, 0, 64);
    if (n > 0) ws_host_request_read(ws__req, n);
    const uint8_t *r = ws__req;
    ws_request req = {
        .kind = ws__u32(r),
        .method = ws__span(r, n, 4),
        .path = ws__span(r, n, 12),
        .query = ws__span(r, n, 20),
        .headers = ws__span(r, n, 28),
        .body = ws__span(r, n, 36),
        .remote = ws__span(r, n, 44),
        .thrift_protocol = ws__u32(r + 52),
        .thrift_type = ws__u32(r + 56),
        .thrift_seqid = (int32_t)ws__u32(r + 60),
    };
    ws_response *w = &ws__resp;
    w->status = 200;
    w->headers_len = 0;
    w->body_len = 0;
    ws_serve(&req, w);
    /* The response record: u32 status | u32 headers_len | headers | body. */
    uint32_t total = 8 + w->headers_len + w->body_len;
    ws__reserve(&ws__out, &ws__out_cap, total);
    ws__put_u32(ws__out, w->status);
    ws__put_u32(ws__out + 4, w->headers_len);
    if (w->headers_len) memcpy(ws__out + 8, w->headers, w->headers_len);
    if (w->body_len) memcpy(ws__out + 8 + w->headers_len, w->body, w->body_len);
    return (int64_t)((uint64_t)(uintptr_t)ws__out << 32 | total);
}

#endif /* WASMSERVE_IMPLEMENTATION */
#endif /* WASMSERVE_H */

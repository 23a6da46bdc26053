/* wasmserve_outbound.h: outbound HTTP requests and Thrift calls from a C
 * guest, through the host's clients (see "Outbound calls" in abi/ABI.md and
 * "Calling other services" in the README).
 *
 * Include it after wasmserve.h; the translation unit that defines
 * WASMSERVE_IMPLEMENTATION gets the definitions. Fan out by starting
 * several calls before waiting on any:
 *
 *     int32_t a = ws_http_start("GET", "http://127.0.0.1:8000/a", (ws_bytes){0}, (ws_bytes){0});
 *     int32_t b = ws_http_start("GET", "http://127.0.0.1:8000/b", (ws_bytes){0}, (ws_bytes){0});
 *     ws_http_response ra = ws_http_wait(a), rb = ws_http_wait(b);
 *     if (ra.code < 0) ws_log(WS_WARN, ra.error);
 *     ...
 *     ws_http_response_free(&ra); ws_http_response_free(&rb);
 */
#ifndef WASMSERVE_OUTBOUND_H
#define WASMSERVE_OUTBOUND_H

#include "wasmserve.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of the outbound imports (also -1 not found, -2 invalid,
 * -3 max_outbound reached). */
enum {
    WS_ERR_DENIED = -10,   /* refused by http.allow or address filtering */
    WS_ERR_CONNECT = -11,  /* DNS failure, connection refused */
    WS_ERR_TIMEOUT = -12,  /* the client's timeout or the request's deadline */
    WS_ERR_TOO_LARGE = -13, /* reply larger than max_response_body */
    WS_ERR_PROTOCOL = -14, /* reset mid-reply, not a valid reply */
    WS_ERR_PENDING = -15,  /* not finished yet (polling) */
    WS_ERR_CANCELED = -16,
};

/* The result of an HTTP call. code is 0 on success, else negative, with
 * error the host's message. status, headers (a field list) and body point
 * into record. Free with ws_http_response_free. */
typedef struct ws_http_response {
    int32_t code;
    uint32_t status;
    ws_bytes headers, body;
    uint8_t *record;
    char *error;
} ws_http_response;

/* The result of a Thrift call: reply is the reply message (empty for
 * oneway), malloc'd. Free with ws_thrift_reply_free. */
typedef struct ws_thrift_reply {
    int32_t code;
    uint8_t *reply;
    uint32_t len;
    char *error;
} ws_thrift_reply;

/* Starts an HTTP request (headers: a field list, may be empty); returns a
 * handle > 0, or a negative error code (ws_outbound_error has the
 * message). */
int32_t ws_http_start(const char *method, const char *url, ws_bytes headers, ws_bytes body);
/* Waits for an HTTP call started with ws_http_start. */
ws_http_response ws_http_wait(int32_t handle);
/* Starts a request and waits for it. */
ws_http_response ws_http_request(const char *method, const char *url, ws_bytes headers, ws_bytes body);
void ws_http_response_free(ws_http_response *r);

/* Sends one complete Thrift message through the configured client
 * (client.endpoint in the app section) and waits for its reply. */
ws_thrift_reply ws_thrift_call(const char *client, ws_bytes message);
/* The parts of ws_thrift_call, for fan-out. */
int32_t ws_thrift_start(const char *client, ws_bytes message);
ws_thrift_reply ws_thrift_wait(int32_t handle);
void ws_thrift_reply_free(ws_thrift_reply *r);

/* Cancels a call and releases its handle. */
void ws_outbound_close(int32_t handle);
/* The message of the last failed outbound call, malloc'd. */
char *ws_outbound_error(void);

#define WS_IMPORT(name) __attribute__((import_module("wasmserve"), import_name(name)))
WS_IMPORT("http_send") int32_t ws_host_http_send(const void *rec, uint32_t len);
WS_IMPORT("thrift_send") int32_t ws_host_thrift_send(const void *client, uint32_t client_len, const void *msg, uint32_t msg_len);
WS_IMPORT("outbound_wait") int32_t ws_host_outbound_wait(int32_t handle, int32_t timeout_ms);
WS_IMPORT("outbound_read") int32_t ws_host_outbound_read(int32_t handle, void *buf, uint32_t len);
WS_IMPORT("outbound_close") int32_t ws_host_outbound_close(int32_t handle);
WS_IMPORT("outbound_error") int32_t ws_host_outbound_error(void *buf, uint32_t len);
#undef WS_IMPORT

#ifdef __cplusplus
}
#endif

#ifdef WASMSERVE_IMPLEMENTATION
#include <stdlib.h>
#include <string.h>

char *ws_outbound_error(void) {
    uint32_t cap = 256;
    for (;;) {
        char *buf = malloc(cap + 1);
        if (!buf) __builtin_trap();
        int32_t n = ws_host_outbound_error(buf, cap);
        if (n >= 0 && (uint32_t)n <= cap) {
            buf[n] = 0;
            return buf;
        }
        free(buf);
        cap = (uint32_t)n;
    }
}

void ws_outbound_close(int32_t handle) { ws_host_outbound_close(handle); }

static void ws__put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

int32_t ws_http_start(const char *method, const char *url, ws_bytes headers, ws_bytes body) {
    uint32_t ml = (uint32_t)strlen(method), ul = (uint32_t)strlen(url);
    uint32_t n = 12 + ml + ul + headers.len + body.len;
    uint8_t *rec = malloc(n);
    if (!rec) __builtin_trap();
    ws__put32(rec, ml);
    ws__put32(rec + 4, ul);
    ws__put32(rec + 8, headers.len);
    uint8_t *p = rec + 12;
    memcpy(p, method, ml), p += ml;
    memcpy(p, url, ul), p += ul;
    if (headers.len) memcpy(p, headers.ptr, headers.len), p += headers.len;
    if (body.len) memcpy(p, body.ptr, body.len);
    int32_t h = ws_host_http_send(rec, n);
    free(rec);
    return h;
}

/* Waits for handle and copies its reply into a malloc'd buffer. */
static int32_t ws__wait(int32_t handle, uint8_t **out, uint32_t *len, char **error) {
    *out = NULL, *len = 0, *error = NULL;
    if (handle < 0) {
        *error = ws_outbound_error();
        return handle;
    }
    int32_t n = ws_host_outbound_wait(handle, -1);
    if (n < 0) {
        *error = ws_outbound_error();
        return n;
    }
    *out = malloc((uint32_t)n + 1);
    if (!*out) __builtin_trap();
    int32_t r = ws_host_outbound_read(handle, *out, (uint32_t)n);
    if (r < 0) {
        free(*out);
        *out = NULL;
        *error = ws_outbound_error();
        return r;
    }
    *len = (uint32_t)n;
    return 0;
}

ws_http_response ws_http_wait(int32_t handle) {
    ws_http_response r = {0};
    uint32_t n;
    r.code = ws__wait(handle, &r.record, &n, &r.error);
    if (r.code == 0) {
        const uint8_t *p = r.record;
        uint32_t hl = n >= 8 ? (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24 : 0;
        if (n < 8 || hl > n - 8) {
            r.code = WS_ERR_PROTOCOL;
            return r;
        }
        r.status = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        r.headers = (ws_bytes){p + 8, hl};
        r.body = (ws_bytes){p + 8 + hl, n - 8 - hl};
    }
    return r;
}

ws_http_response ws_http_request(const char *method, const char *url, ws_bytes headers, ws_bytes body) {
    return ws_http_wait(ws_http_start(method, url, headers, body));
}

void ws_http_response_free(ws_http_response *r) {
    free(r->record);
    free(r->error);
    r->record = NULL, r->error = NULL;
}

int32_t ws_thrift_start(const char *client, ws_bytes message) {
    return ws_host_thrift_send(client, (uint32_t)strlen(client), message.ptr, message.len);
}

ws_thrift_reply ws_thrift_wait(int32_t handle) {
    ws_thrift_reply r = {0};
    r.code = ws__wait(handle, &r.reply, &r.len, &r.error);
    return r;
}

ws_thrift_reply ws_thrift_call(const char *client, ws_bytes message) {
    return ws_thrift_wait(ws_thrift_start(client, message));
}

void ws_thrift_reply_free(ws_thrift_reply *r) {
    free(r->reply);
    free(r->error);
    r->reply = NULL, r->error = NULL;
}
#endif /* WASMSERVE_IMPLEMENTATION */
#endif /* WASMSERVE_OUTBOUND_H */

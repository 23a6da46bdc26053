//go:build wasip1

// Command counter-go is the key-value store example: a Go guest whose
// counters and values live in the store "default" (an embedded file in
// app.ini, Redis in app-redis.ini), so they survive restarts and reloads and
// are shared by every worker (and, with Redis, every process).
//
// Routes:
//
//	POST   /incr/KEY             add 1 (or ?by=N) to KEY's counter; answers the new value
//	GET    /get/KEY              KEY's value, or 404
//	PUT    /set/KEY[?ttl=SECS]   store the body under KEY, expiring after SECS seconds if given
//	DELETE /del/KEY              delete KEY; 404 if it was absent
//	GET    /                     this list
//	GET    /kv                   the conformance script of the key-value imports
//
// A store error answers 503 (backend unavailable, timeout), 413 (value too
// large) or 400, with the host's message.
package main

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wasmserve/wasmserve/abi/guest"
)

var store = guest.KV("default")

const routes = "routes: POST /incr/KEY, GET /get/KEY, PUT /set/KEY?ttl=SECS, DELETE /del/KEY"

func init() { guest.Handle(guest.HandlerFunc(serve)) }

func serve(w guest.ResponseWriter, r *guest.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch r.Path {
	case "/":
		text(w, 200, routes)
		return
	case "/kv": // the conformance script
		w.Write([]byte(kvScript()))
		return
	}
	route, rawKey, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
	key, err := url.PathUnescape(rawKey)
	if err != nil || key == "" {
		text(w, 400, "want /ROUTE/KEY with a non-empty key")
		return
	}
	q := r.Query()
	switch {
	case route == "incr" && r.Method == "POST":
		by := int64(1)
		if s := q.Get("by"); s != "" {
			if by, err = strconv.ParseInt(s, 10, 64); err != nil {
				text(w, 400, "by: not an integer")
				return
			}
		}
		n, err := store.Incr(key, by)
		if err != nil {
			fail(w, err)
			return
		}
		text(w, 200, strconv.FormatInt(n, 10))
	case route == "get" && r.Method == "GET":
		v, ok, err := store.Get(key)
		switch {
		case err != nil:
			fail(w, err)
		case !ok:
			text(w, 404, "no such key")
		default:
			w.Write(v)
		}
	case route == "set" && r.Method == "PUT":
		var ttl time.Duration
		if s := q.Get("ttl"); s != "" {
			secs, err := strconv.ParseFloat(s, 64)
			if err != nil || secs <= 0 {
				text(w, 400, "ttl: want a positive number of seconds")
				return
			}
			ttl = time.Duration(secs * float64(time.Second))
		}
		if err := store.SetTTL(key, r.Body, ttl); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(204)
	case route == "del" && r.Method == "DELETE":
		ok, err := store.Delete(key)
		switch {
		case err != nil:
			fail(w, err)
		case !ok:
			text(w, 404, "no such key")
		default:
			w.WriteHeader(204)
		}
	default:
		text(w, 404, routes)
	}
}

func text(w guest.ResponseWriter, status int, msg string) {
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

func fail(w guest.ResponseWriter, err error) {
	status := 503
	switch {
	case errors.Is(err, guest.ErrKVTooLarge):
		status = 413
	case errors.Is(err, guest.ErrKVInvalid), errors.Is(err, guest.ErrKVNoStore):
		status = 400
	case errors.Is(err, guest.ErrKVTimeout):
		status = 504
	}
	text(w, status, err.Error())
}

func main() {}

//go:build wasip1

// Command hello-go is the default wasmserve example app: a Go guest built as
// a WASI reactor whose routes are an ordinary net/http ServeMux, served
// through guest.HandleHTTP.
//
// Routes: / (the configured greeting), /echo, /config (app config as JSON),
// /config/KEY, /log, /status/NNN, /headers, /shutting-down, /counter,
// /generation, /metric, /sleep?ms=N (at most 10 s), /file?path=P and /env?name=N (WASI
// grants), /fetch?url=U (an outbound GET), /isolation/secret and /isolation/scan (what
// isolation = request resets), and the fault routes /panic, /spin and /grow. Every response
// carries X-Guest: hello-go, added by a middleware.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wasmserve/wasmserve/abi/guest"
	_ "github.com/wasmserve/wasmserve/abi/guest/outbound" // http.Get through the host
)

var (
	greeting = []byte("hello, world")
	counter  int
	hoard    [][]byte
	spins    uint64
)

func init() {
	guest.OnInit(func() error {
		if g, ok := guest.Config("greeting"); ok {
			greeting = []byte(g)
		}
		return nil
	})
	guest.HandleHTTP(tagged(routes()))
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(greeting)
	})
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		all := map[string]string{}
		for _, e := range guest.ConfigAll() {
			all[e.Key] = e.Value
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(all)
	})
	mux.HandleFunc("GET /config/{key...}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := guest.Config(r.PathValue("key"))
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "missing")
			return
		}
		io.WriteString(w, v)
	})
	// GET /fetch?url=U answers with U's status and body, fetched with
	// http.Get through the host's HTTP client, or 502 with its message.
	mux.HandleFunc("GET /fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(r.URL.Query().Get("url"))
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "outbound: "+err.Error())
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		guest.Debug("conformance debug")
		guest.Info("conformance info")
		guest.Warn("conformance warn")
		guest.Error("conformance error")
		io.WriteString(w, "logged")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		io.WriteString(w, "headers")
	})
	mux.HandleFunc("GET /shutting-down", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatBool(guest.ShuttingDown()))
	})
	mux.HandleFunc("/counter", func(w http.ResponseWriter, r *http.Request) {
		counter++
		io.WriteString(w, strconv.Itoa(counter))
	})
	mux.HandleFunc("GET /kv", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, kvScript())
	})
	mux.HandleFunc("GET /generation", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatInt(guest.Generation(), 10))
	})
	mux.HandleFunc("/metric", func(w http.ResponseWriter, r *http.Request) {
		if err := guest.Count("hello_requests", 1); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "counted")
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(min(ms, 10000)) * time.Millisecond)
		w.Header().Set("X-Generation", strconv.FormatInt(guest.Generation(), 10))
		io.WriteString(w, "slept")
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		// Reads a file through WASI; only directories granted with
		// wasi.dir in the app section are visible.
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, err.Error())
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("hello-go: /panic requested")
	})
	mux.HandleFunc("/spin", func(w http.ResponseWriter, r *http.Request) {
		for {
			spins++
		}
	})
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		for {
			hoard = append(hoard, make([]byte, 4<<20))
		}
	})
	isolationRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "not found")
	})
	return mux
}

// echo answers the request body, with the method, path and query, and
// every X-Test-* request header, echoed as response headers.
func echo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Path", r.URL.EscapedPath())
	h.Set("X-Echo-Query", r.URL.RawQuery)
	for k, vs := range r.Header {
		if strings.HasPrefix(k, "X-Test-") {
			h[k] = append(h[k], vs...)
		}
	}
	io.Copy(w, r.Body)
}

// guestTag holds the X-Guest header's value for tagged.
var guestTag = make([]string, 1)

// tagged is a middleware: it marks every response as this guest's, with
// the same effect as w.Header().Set("X-Guest", "hello-go"). It stores one
// reused value slice (reset for each request, capacity 1 so that a
// handler's Add copies it) instead of Set's new slice per request: an
// allocation per request is costly in wasm.
func tagged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guestTag[0] = "hello-go"
		w.Header()["X-Guest"] = guestTag[:1:1]
		next.ServeHTTP(w, r)
	})
}

func main() {}

//go:build wasip1

// Command hello-go is the default wasmserve example app: a Go guest built as
// a WASI reactor that answers HTTP through the guest SDK.
//
// Routes: / (the configured greeting), /echo, /config (app config as JSON),
// /config/KEY, /log, /status/NNN, /headers, /shutting-down, /counter,
// /generation, /metric, /sleep?ms=N (at most 10 s), /file?path=P and /env?name=N (WASI
// grants), and the fault routes /panic, /spin and /grow.
package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wasmserve/wasmserve/abi/guest"
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
	guest.Handle(guest.HandlerFunc(serve))
}

func serve(w guest.ResponseWriter, r *guest.Request) {
	switch p := r.Path; {
	case p == "/":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(greeting)
	case p == "/echo":
		h := w.Header()
		h.Set("X-Echo-Method", r.Method)
		h.Set("X-Echo-Path", r.Path)
		h.Set("X-Echo-Query", r.RawQuery)
		r.Header.Range(func(k, v string) bool {
			if strings.HasPrefix(k, "X-Test-") {
				h.Add(k, v)
			}
			return true
		})
		w.Write(r.Body)
	case p == "/config":
		all := map[string]string{}
		for _, e := range guest.ConfigAll() {
			all[e.Key] = e.Value
		}
		b, _ := json.Marshal(all)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case strings.HasPrefix(p, "/config/"):
		v, ok := guest.Config(strings.TrimPrefix(p, "/config/"))
		if !ok {
			w.WriteHeader(404)
			w.Write([]byte("missing"))
			return
		}
		w.Write([]byte(v))
	case p == "/log":
		guest.Debug("conformance debug")
		guest.Info("conformance info")
		guest.Warn("conformance warn")
		guest.Error("conformance error")
		w.Write([]byte("logged"))
	case strings.HasPrefix(p, "/status/"):
		code, err := strconv.Atoi(strings.TrimPrefix(p, "/status/"))
		if err != nil {
			code = 400
		}
		w.WriteHeader(code)
	case p == "/headers":
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		w.Write([]byte("headers"))
	case p == "/shutting-down":
		w.Write([]byte(strconv.FormatBool(guest.ShuttingDown())))
	case p == "/counter":
		counter++
		w.Write([]byte(strconv.Itoa(counter)))
	case p == "/generation":
		w.Write([]byte(strconv.FormatInt(guest.Generation(), 10)))
	case p == "/metric":
		if err := guest.Count("hello_requests", 1); err != nil {
			w.WriteHeader(500)
			w.Write([]byte(err.Error()))
			return
		}
		w.Write([]byte("counted"))
	case p == "/sleep":
		ms, _ := strconv.Atoi(r.Query().Get("ms"))
		time.Sleep(time.Duration(min(ms, 10000)) * time.Millisecond)
		w.Header().Set("X-Generation", strconv.FormatInt(guest.Generation(), 10))
		w.Write([]byte("slept"))
	case p == "/file":
		// Reads a file through WASI; only directories granted with
		// wasi.dir in the app section are visible.
		b, err := os.ReadFile(r.Query().Get("path"))
		if err != nil {
			w.WriteHeader(404)
			w.Write([]byte(err.Error()))
			return
		}
		w.Write(b)
	case p == "/env":
		w.Write([]byte(os.Getenv(r.Query().Get("name"))))
	case p == "/panic":
		panic("hello-go: /panic requested")
	case p == "/spin":
		for {
			spins++
		}
	case p == "/grow":
		for {
			hoard = append(hoard, make([]byte, 4<<20))
		}
	default:
		w.WriteHeader(404)
		w.Write([]byte("not found"))
	}
}

func main() {}

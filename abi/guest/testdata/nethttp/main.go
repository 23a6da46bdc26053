//go:build wasip1

// Command nethttp is a test guest: an http.ServeMux with method and path
// patterns behind a middleware, served by guest.HandleHTTP. Built with
// -ldflags=-X=main.mode=raw it serves GET /hello through guest.Handle
// instead, and with -X=main.mode=plain through HandleHTTP with a plain
// HandlerFunc, for comparing the paths' cost.
package main

import (
	"io"
	"net/http"

	"github.com/wasmserve/wasmserve/abi/guest"
)

var mode string

var hello = []byte("hello, world")

func init() {
	if mode == "raw" {
		guest.Handle(guest.HandlerFunc(func(w guest.ResponseWriter, r *guest.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(hello)
		}))
		return
	}
	if mode == "plain" {
		guest.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(hello)
		}))
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(hello)
	})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "item "+r.PathValue("id")+" q="+r.URL.Query().Get("q")+
			" host="+r.Host+" agent="+r.Header.Get("User-Agent")+" uri="+r.RequestURI)
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", "/items/1")
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte("created "), b...))
	})
	guest.HandleHTTP(tag(mux))
}

// tag is a middleware: it names the method it saw in a response header.
func tag(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Middleware", "saw "+r.Method)
		next.ServeHTTP(w, r)
	})
}

func main() {}

// Command native serves the bench's hello and echo routes with plain
// net/http: the practical limit for an HTTP server in Go.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	hello := []byte("hello, world")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(hello)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 0, max(r.ContentLength, 512))
		b, err := readAll(r.Body, b)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/sha", func(w http.ResponseWriter, r *http.Request) {
		body, err := readAll(r.Body, make([]byte, 0, max(r.ContentLength, 512)))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 {
			n = 1
		}
		w.Write(shaChain(body, n))
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}

// shaChain is the CPU-bound guests' work: d = sha256(body), then n-1
// times d = sha256(d || body); it returns d in hex.
func shaChain(body []byte, n int) []byte {
	d := sha256.Sum256(body)
	for i := 1; i < n; i++ {
		h := sha256.New()
		h.Write(d[:])
		h.Write(body)
		h.Sum(d[:0])
	}
	out := make([]byte, hex.EncodedLen(len(d)))
	hex.Encode(out, d[:])
	return out
}

// readAll reads r to the end into b, which is sized from Content-Length.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

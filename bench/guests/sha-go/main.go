//go:build wasip1

// Command sha-go is the bench's CPU-bound Go guest: POST /sha?n=N answers
// the hex SHA-256 chain of the body (d = sha256(body), then N-1 times
// d = sha256(d || body)), the same work as the native server's /sha and the
// C guest's. GET / answers "hello, world".
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/wasmserve/wasmserve/abi/guest"
)

func main() {}

func init() {
	guest.Handle(guest.HandlerFunc(func(w guest.ResponseWriter, r *guest.Request) {
		if r.Path != "/sha" {
			w.Write([]byte("hello, world"))
			return
		}
		n, err := strconv.Atoi(r.Query().Get("n"))
		if err != nil || n < 1 {
			n = 1
		}
		w.Write(chain(r.Body, n))
	}))
}

func chain(body []byte, n int) []byte {
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

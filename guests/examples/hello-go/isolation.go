//go:build wasip1

package main

import (
	"io"
	"net/http"
	"strconv"
	"unsafe"
)

// The isolation routes let the conformance suite check that isolation =
// request leaks nothing between requests. The mark of a body S is S with
// every byte XORed with 0x5A: POST /isolation/secret writes it into a
// global, the heap, the stack and memory grown by this request (POST
// /isolation/secret-in-place: all but grown memory); POST
// /isolation/scan counts where it appears in the whole linear memory,
// comparing on the fly so that the scan never builds the mark itself.

const markXOR = 0x5A

var (
	markGlobal [64]byte
	markHeap   []byte
	markGrown  []byte
	markSink   byte
)

// memoryPages is the wasm memory.size instruction (isolation_wasm.s).
func memoryPages() int32

func isolationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /isolation/secret", func(w http.ResponseWriter, r *http.Request) { storeMark(w, r, true) })
	mux.HandleFunc("POST /isolation/secret-in-place", func(w http.ResponseWriter, r *http.Request) { storeMark(w, r, false) })
	mux.HandleFunc("POST /isolation/scan", func(w http.ResponseWriter, r *http.Request) {
		s, ok := secret(w, r)
		if !ok {
			return
		}
		// Address 0 is never used in Go's memory layout (the first 4 KiB
		// hold no data); the scan starts at 1, a valid non-nil address.
		n := int(memoryPages())<<16 - 1
		mem := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), 1)), n)
		count := 0
		for i := 0; i+len(s) <= len(mem); i++ {
			k := 0
			for k < len(s) && mem[i+k] == s[k]^markXOR {
				k++
			}
			if k == len(s) {
				count++
			}
		}
		io.WriteString(w, strconv.Itoa(count))
	})
}

// storeMark writes the mark into a global, the heap, the stack and, with
// grow, memory grown by this request (/isolation/secret-in-place leaves
// memory's size alone).
func storeMark(w http.ResponseWriter, r *http.Request, grow bool) {
	s, ok := secret(w, r)
	if !ok {
		return
	}
	for k, c := range s {
		markGlobal[k] = c ^ markXOR
	}
	h := make([]byte, len(s))
	for k, c := range s {
		h[k] = c ^ markXOR
	}
	markHeap = h
	markStack(s)
	before := memoryPages()
	if grow {
		// A block larger than the free heap makes the runtime grow
		// memory; the mark goes at its end, in the newest pages.
		g := make([]byte, 2<<20)
		for k, c := range s {
			g[len(g)-len(s)+k] = c ^ markXOR
		}
		markGrown = g
	}
	w.Header().Set("X-Memory-Grown", strconv.FormatBool(memoryPages() > before))
	io.WriteString(w, "stored")
}

// secret reads the request body, 16 to 64 bytes.
func secret(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	s, err := io.ReadAll(io.LimitReader(r.Body, 65))
	if err != nil || len(s) < 16 || len(s) > 64 {
		http.Error(w, "the body must be 16 to 64 bytes", http.StatusBadRequest)
		return nil, false
	}
	return s, true
}

// markStack writes the mark into a buffer on this goroutine's stack; the
// sum keeps the writes from being optimised away.
//
//go:noinline
func markStack(s []byte) {
	var buf [64]byte
	for k, c := range s {
		buf[k] = c ^ markXOR
	}
	var sum byte
	for _, c := range buf {
		sum += c
	}
	markSink += sum
}

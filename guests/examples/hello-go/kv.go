//go:build wasip1

package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/wasmserve/wasmserve/abi/guest"
)

// kvScript is the conformance script of the key-value imports: it runs on
// the store "default" (max_value_size 16) and answers one line of results.
func kvScript() string {
	s := guest.KV("default")
	var b strings.Builder
	s.Set("k", []byte("v1"))
	v, _, _ := s.Get("k")
	b.WriteString("get=" + string(v))
	s.Delete("n")
	s.Incr("n", 2)
	n, _ := s.Incr("n", 2)
	b.WriteString(" incr=" + strconv.FormatInt(n, 10))
	ok1, _ := s.CompareAndSwap("n", []byte("4"), []byte("x"), 0)
	ok2, _ := s.CompareAndSwap("n", []byte("4"), []byte("y"), 0)
	b.WriteString(" cas=" + b01(ok1) + "," + b01(ok2))
	ex, _ := s.Exists("k")
	del, _ := s.Delete("k")
	b.WriteString(" exists=" + b01(ex) + " delete=" + b01(del))
	if _, ok, err := s.Get("k"); !ok && err == nil {
		b.WriteString(" gone=-1")
	}
	if err := s.Set("k", []byte("xxxxxxxxxxxxxxxxx")); errors.Is(err, guest.ErrKVTooLarge) {
		b.WriteString(" large=-5")
	}
	_, err := guest.KV("nope").Exists("k")
	if errors.Is(err, guest.ErrKVNoStore) {
		b.WriteString(" nostore=-4")
	}
	if err != nil && strings.Contains(err.Error(), `"nope"`) {
		b.WriteString(" msg=ok")
	}
	return b.String()
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

package abi_test

import (
	"fmt"

	"github.com/wasmserve/wasmserve/abi"
)

func ExampleAppendResponseHeader() {
	headers := abi.AppendField(nil, "Content-Type", "text/plain")
	rec := abi.AppendResponseHeader(nil, 200, headers)
	rec = append(rec, "hello"...)
	r, _ := abi.ParseResponse(rec)
	fmt.Println(r.Status, string(r.Body))
	r.Headers.Range(func(k, v []byte) bool {
		fmt.Printf("%s: %s\n", k, v)
		return true
	})
	// Output:
	// 200 hello
	// Content-Type: text/plain
}

func ExamplePackResult() {
	fmt.Printf("%#016x\n", abi.PackResult(0x1000, 5))
	// Output: 0x0000100000000005
}

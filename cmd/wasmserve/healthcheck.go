package main

import (
	"fmt"
	"io"
)

func healthcheck(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wasmserve healthcheck: not available yet")
	return 2
}

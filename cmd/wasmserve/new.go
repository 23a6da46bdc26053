package main

import "io"

func newApp(args []string, stdout, stderr io.Writer) int { return 2 }

package engine

import "crypto/rand"

// randReader gives guests the host's cryptographic random source.
type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return rand.Read(p) }

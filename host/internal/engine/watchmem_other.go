//go:build !linux

package engine

import (
	"errors"

	"github.com/tetratelabs/wazero/experimental"
)

// watchedMemory exists on Linux only; elsewhere Reset compares blocks.
type watchedMemory struct {
	buf      []byte
	promoted int
	relearn  int
	fast     int
}

func watchAllocator(**watchedMemory) experimental.MemoryAllocator { return nil }

func (*watchedMemory) snapshot() error {
	return errors.New("tracking written pages needs Linux")
}

func (*watchedMemory) reset(bool) (int, error) { return 0, nil }

func (*watchedMemory) touched(int, func(from, to int)) error {
	return errors.New("finding touched pages needs Linux")
}

func kernelSupport() (tracking, touched bool) { return false, false }

const hotRelearn = 256

func threadFaults() int64 { return -1 }

type faultWatch struct{}

func watchFaults() faultWatch { return faultWatch{} }

func (faultWatch) clean() bool { return false }

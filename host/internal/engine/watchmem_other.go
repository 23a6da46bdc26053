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

func kernelSupport() (tracking, touched, perf bool) { return false, false, false }

const hotRelearn = 256

func threadFaults() int64 { return -1 }

type faultWatch struct{ rusage bool }

func watchFaults(bool) faultWatch { return faultWatch{rusage: true} }

func (faultWatch) clean() bool { return false }

func faultRingErr() error { return errors.New("perf events need Linux") }

// Package supervise speaks the supervisors' side channels: systemd's
// sd_notify datagrams and Einhorn's manual worker ACK.
package supervise

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Env is the part of the operating system this package uses. OSEnv
// returns the real one; tests replace the functions so that they neither
// read nor change the process environment.
type Env struct {
	Getenv   func(key string) string
	Unsetenv func(key string) error
	Getpid   func() int
	// File returns the inherited descriptor fd as a file that the caller
	// owns and closes, or nil when fd is not open.
	File func(fd int, name string) *os.File

	// ack, when not nil, makes EinhornAck send at most once through every
	// Env sharing it. Every OSEnv shares one: a process acknowledges once.
	ack *sync.Once
}

// processAck guards the Einhorn ACK of this process.
var processAck sync.Once

// OSEnv returns the real process environment and file descriptors.
func OSEnv() Env {
	return Env{
		Getenv:   os.Getenv,
		Unsetenv: os.Unsetenv,
		Getpid:   os.Getpid,
		File: func(fd int, name string) *os.File {
			if fd < 0 {
				return nil
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				return nil
			}
			return os.NewFile(uintptr(fd), name)
		},
		ack: &processAck,
	}
}

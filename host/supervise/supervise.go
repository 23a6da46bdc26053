// Package supervise speaks the supervisors' side channels: systemd's
// sd_notify datagrams and Einhorn's manual worker ACK.
package supervise

import "os"

// Env is the part of the process environment this package reads. Tests
// replace it.
type Env struct {
	Getenv   func(string) string
	Unsetenv func(string) error
	Getpid   func() int
	// File returns the inherited file descriptor fd as a file.
	File func(fd int, name string) *os.File
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{
		Getenv:   os.Getenv,
		Unsetenv: os.Unsetenv,
		Getpid:   os.Getpid,
		File:     func(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) },
	}
}

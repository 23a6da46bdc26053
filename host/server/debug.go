package server

import (
	"runtime"
	"time"
)

// dumpDebug logs every goroutine's stack and the busy worker instances.
func (s *Server) dumpDebug() {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	s.log.Info("SIGUSR1: goroutine stacks", "stacks", string(buf))
	busy := s.current.Load().BusyList()
	s.log.Info("SIGUSR1: busy workers", "count", len(busy))
	for _, b := range busy {
		s.log.Info("busy worker", "worker", b.Worker, "request", b.What, "running", time.Since(b.Since).Round(time.Millisecond))
	}
}

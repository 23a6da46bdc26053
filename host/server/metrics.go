package server

// setupMetrics creates the metric sinks the config asks for and sets the
// observers the pool and front ends report to.
func (s *Server) setupMetrics() error { return nil }

// startAdmin starts the admin listener when admin.bind is set and returns
// the function that stops it.
func (s *Server) startAdmin() (stop func(), err error) { return func() {}, nil }

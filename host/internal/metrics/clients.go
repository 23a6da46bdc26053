package metrics

// ClientPool is one outbound Thrift client pool: its size and the
// connections in use.
type ClientPool struct {
	Name        string
	Size, InUse int
}

// SetClientPools sets the source of the statsd runtime gauges
// clients.NAME.pool.size and clients.NAME.pool.in_use, read at each flush.
// (Prometheus has the pool gauges from the outbound clients themselves.)
func (m *Metrics) SetClientPools(f func() []ClientPool) { m.clientPools.Store(&f) }

// clients sends the client pool gauges.
func (s *Statsd) clients() {
	f := s.m.clientPools.Load()
	if f == nil {
		return
	}
	for _, p := range (*f)() {
		s.gauge("runtime.clients."+p.Name+".pool.size", float64(p.Size))
		s.gauge("runtime.clients."+p.Name+".pool.in_use", float64(p.InUse))
	}
}

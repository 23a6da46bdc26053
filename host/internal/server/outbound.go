package server

import (
	"fmt"

	"github.com/wasmserve/wasmserve/host/internal/config"
	"github.com/wasmserve/wasmserve/host/internal/metrics"
	"github.com/wasmserve/wasmserve/host/internal/outbound"
)

// setupOutbound creates the registry of the guests' outbound clients; its
// metrics join the process's when there is a metric sink. Guests can never
// reach the admin listener.
func (s *Server) setupOutbound() error {
	opts := outbound.Options{Logger: s.log, Service: s.cfg.AppName}
	if a := s.cfg.Server.Admin.Bind; a.Network == "tcp" {
		opts.Deny = append(opts.Deny, a.Address)
	}
	if s.metrics != nil {
		opts.Registerer = s.metrics.Registry()
		opts.Buckets = metrics.LatencyBuckets
	}
	r, err := outbound.NewRegistry(opts)
	if err != nil {
		return fmt.Errorf("outbound clients: %w", err)
	}
	s.outbound = r
	if s.metrics != nil {
		s.metrics.SetClientPools(func() []metrics.ClientPool {
			var out []metrics.ClientPool
			for _, p := range r.Pools() {
				out = append(out, metrics.ClientPool{Name: p.Name, Size: p.Size, InUse: p.InUse})
			}
			return out
		})
	}
	return nil
}

// outboundSet returns the clients of an app section, sharing with the
// generation serving now those whose configuration is unchanged.
func (s *Server) outboundSet(c config.Clients) *outbound.Set {
	cfg := outbound.Config{
		MaxResponseBody: c.MaxResponseBody,
		MaxOutbound:     c.MaxOutbound,
		HTTP: outbound.HTTPConfig{
			Allow:       c.HTTP.Allow,
			PoolMaxSize: c.HTTP.PoolMaxSize,
			MaxRetries:  c.HTTP.MaxRetries,
			Timeout:     c.HTTP.Timeout,
		},
	}
	for _, t := range c.Thrift {
		cfg.Thrift = append(cfg.Thrift, outbound.ThriftConfig{
			Name: t.Name, Endpoint: t.Endpoint, Size: t.Size, MaxAge: t.MaxAge,
			Timeout: t.Timeout, MaxRetries: t.MaxRetries, Protocol: t.Protocol,
		})
	}
	return s.outbound.Set(cfg)
}

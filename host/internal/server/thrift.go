package server

import (
	"github.com/wasmserve/wasmserve/host/internal/metrics"
	"github.com/wasmserve/wasmserve/host/internal/thriftfront"
)

var (
	_ Frontend             = (*thriftfront.Server)(nil)
	_ thriftfront.Observer = (*metrics.ThriftObserver)(nil)
)

func (s *Server) newThrift() Frontend {
	sc := s.cfg.Server
	opts := thriftfront.Options{
		Handler:        s.gens,
		MaxFrameSize:   sc.MaxFrameSize,
		MaxMessageSize: sc.MaxMessageSize,
		Keepalive:      sc.Keepalive,
		ReadTimeout:    sc.ReadTimeout,
		WriteTimeout:   sc.WriteTimeout,
		AccessLog:      sc.AccessLog,
		Logger:         s.log,
	}
	if m := s.metrics; m != nil {
		opts.Observer = m.ThriftObserver()
	}
	return thriftfront.New(opts)
}

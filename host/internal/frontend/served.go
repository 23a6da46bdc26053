package frontend

import "context"

// Served records which generation and worker served a request. A front end
// attaches one to the request's context with WithServed; the lifecycle's
// handler fills in Generation when it picks the generation that runs the
// request (before the guest runs, so a response writer can read it), and
// the front end reads it back with ServedFrom.
type Served struct {
	Generation int64
}

type servedKey struct{}

// WithServed returns ctx carrying a fresh Served record, and the record.
func WithServed(ctx context.Context) (context.Context, *Served) {
	s := &Served{}
	return context.WithValue(ctx, servedKey{}, s), s
}

// ServedFrom returns the Served record ctx carries, or nil.
func ServedFrom(ctx context.Context) *Served {
	s, _ := ctx.Value(servedKey{}).(*Served)
	return s
}

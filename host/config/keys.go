package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Server is the validated [server:NAME] section.
type Server struct {
	Factory               string        // "http" or "thrift"
	Bind                  Endpoint      // own listen address, when no socket is inherited
	Workers               int           // guest instances
	MaxConcurrency        int           // requests admitted at once (in service or waiting)
	RequestTimeout        time.Duration // per guest call; 0 = off
	MaxMemory             int64         // per instance, bytes, a multiple of 64 KiB
	MaxRequests           int           // recycle an instance after this many requests; 0 = never
	MaxRequestsJitter     int           // random extra requests per instance
	Isolation             string        // "worker" or "request"
	LimitRequestLine      int
	LimitRequestFields    int
	LimitRequestFieldSize int
	MaxRequestBody        int64
	Keepalive             time.Duration
	HeaderTimeout         time.Duration
	ReadTimeout           time.Duration
	AccessLog             bool
	CompilationCache      string // directory; "" = off
	DrainTime             time.Duration
	StopTimeout           time.Duration
	Backlog               int
	ReusePort             bool
	MaxFrameSize          int64
	MaxMessageSize        int64
	Admin                 Admin
	Metrics               Metrics
	Monitoring            Monitoring
	Log                   Log
}

// Admin configures the admin listener.
type Admin struct {
	Bind  Endpoint // zero = off
	Pprof bool
}

// Metrics configures the statsd sink and guest metrics.
type Metrics struct {
	Endpoint   string // statsd host:port over UDP; "" = off
	Namespace  string
	GuestLimit int // distinct guest metric names
}

// Monitoring configures baseplate's runtime reporters.
type Monitoring struct {
	Concurrency   bool
	GCStats       bool
	GCTiming      bool
	BlockedWorker time.Duration // 0 = off
}

// Log configures the process log.
type Log struct {
	Format string // "text" or "json"
}

// Key documents one server key.
type Key struct {
	Name    string
	Default string // as written in the INI; "" = none or computed (see Doc)
	Doc     string
	field   func(*Server) any // pointer to the field the key sets
	min     int               // integers: smallest value
	max     int               // integers: largest value, 0 = none
	choices []string          // strings: allowed values, nil = any
	size    bool              // int64 fields: a size in bytes
}

// set parses v into k's field of s.
func (k Key) set(s *Server, v string) error {
	switch p := k.field(s).(type) {
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not an integer")
		}
		if n < k.min || (k.max > 0 && n > k.max) {
			if k.max > 0 {
				return fmt.Errorf("must be between %d and %d", k.min, k.max)
			}
			return fmt.Errorf("must be at least %d", k.min)
		}
		*p = n
	case *int64:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*p = n
	case *time.Duration:
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	case *bool:
		b, err := ParseBool(v)
		if err != nil {
			return err
		}
		*p = b
	case *Endpoint:
		e, err := ParseEndpoint(v)
		if err != nil {
			return err
		}
		*p = e
	case *string:
		if k.choices != nil && !slices.Contains(k.choices, v) {
			return fmt.Errorf("want %s", quoteList(k.choices))
		}
		*p = v
	default:
		panic(fmt.Sprintf("config: key %s has an unsupported field type %T", k.Name, p))
	}
	return nil
}

// value returns the current value of k's field in s.
func (k Key) value(s *Server) any {
	switch p := k.field(s).(type) {
	case *int:
		return *p
	case *int64:
		return *p
	case *time.Duration:
		return *p
	case *bool:
		return *p
	case *Endpoint:
		return *p
	case *string:
		return *p
	}
	return nil
}

var serverKeys = []Key{
	{Name: "factory", Default: "", Doc: "`http` or `thrift` (required): the protocol front end", field: func(s *Server) any { return &s.Factory }, choices: []string{"http", "thrift"}},
	{Name: "bind", Default: "localhost:9090", Doc: "listen address: `host:port`, `:port`, `[v6]:port`, `unix:PATH`, a path, or `fd://N`; `--bind` overrides it; ignored when a socket is inherited", field: func(s *Server) any { return &s.Bind }},
	{Name: "workers", Default: "", Doc: "guest instances, each serving one request at a time; default max(2, GOMAXPROCS)", field: func(s *Server) any { return &s.Workers }, min: 1, max: 4096},
	{Name: "max_concurrency", Default: "", Doc: "requests admitted at once, waiting ones included; beyond it HTTP answers 503 with Retry-After; default max(100, workers)", field: func(s *Server) any { return &s.MaxConcurrency }, min: 1, max: 0},
	{Name: "request_timeout", Default: "30 seconds", Doc: "longest guest call; past it HTTP answers 504 and the instance is replaced; 0 = off (faster guest loops)", field: func(s *Server) any { return &s.RequestTimeout }},
	{Name: "max_memory", Default: "64 MiB", Doc: "linear memory limit per instance, rounded down to 64 KiB pages; growth beyond it traps", field: func(s *Server) any { return &s.MaxMemory }, size: true},
	{Name: "max_requests", Default: "0", Doc: "recycle an instance after this many requests (0 = never)", field: func(s *Server) any { return &s.MaxRequests }, min: 0, max: 0},
	{Name: "max_requests_jitter", Default: "0", Doc: "add up to this many requests to max_requests per instance, so they don't recycle together", field: func(s *Server) any { return &s.MaxRequestsJitter }, min: 0, max: 0},
	{Name: "isolation", Default: "worker", Doc: "`worker`: instances are reused and keep state; `request`: a fresh instance per request", field: func(s *Server) any { return &s.Isolation }, choices: []string{"worker", "request"}},
	{Name: "limit_request_line", Default: "4094", Doc: "longest HTTP request line (414 beyond); 0 = unlimited", field: func(s *Server) any { return &s.LimitRequestLine }, min: 0, max: 65536},
	{Name: "limit_request_fields", Default: "100", Doc: "most HTTP header fields (431 beyond)", field: func(s *Server) any { return &s.LimitRequestFields }, min: 0, max: 32768},
	{Name: "limit_request_field_size", Default: "8190", Doc: "longest HTTP header field (431 beyond)", field: func(s *Server) any { return &s.LimitRequestFieldSize }, min: 0, max: 1 << 20},
	{Name: "max_request_body", Default: "10 MiB", Doc: "largest HTTP request body (413 beyond)", field: func(s *Server) any { return &s.MaxRequestBody }, size: true},
	{Name: "keepalive", Default: "75 seconds", Doc: "idle keep-alive timeout; 0 disables keep-alive", field: func(s *Server) any { return &s.Keepalive }},
	{Name: "header_timeout", Default: "10 seconds", Doc: "time allowed to read request headers (slow clients)", field: func(s *Server) any { return &s.HeaderTimeout }},
	{Name: "read_timeout", Default: "60 seconds", Doc: "time allowed to read a whole request, body included", field: func(s *Server) any { return &s.ReadTimeout }},
	{Name: "access_log", Default: "true", Doc: "log one INFO line per request", field: func(s *Server) any { return &s.AccessLog }},
	{Name: "compilation_cache", Default: "", Doc: "wazero compilation cache directory, or `off`; default $XDG_CACHE_HOME/wasmserve or ~/.cache/wasmserve", field: func(s *Server) any { return &s.CompilationCache }},
	{Name: "drain_time", Default: "5 seconds", Doc: "after a stop signal, keep serving (reporting not ready) this long before closing listeners", field: func(s *Server) any { return &s.DrainTime }},
	{Name: "stop_timeout", Default: "10 seconds", Doc: "then wait this long for active requests before exiting anyway", field: func(s *Server) any { return &s.StopTimeout }},
	{Name: "backlog", Default: "2048", Doc: "listen(2) backlog of sockets wasmserve binds itself", field: func(s *Server) any { return &s.Backlog }, min: 1, max: 0},
	{Name: "reuse_port", Default: "false", Doc: "set SO_REUSEPORT on sockets wasmserve binds itself", field: func(s *Server) any { return &s.ReusePort }},
	{Name: "max_frame_size", Default: "16384000", Doc: "largest Thrift frame", field: func(s *Server) any { return &s.MaxFrameSize }, size: true},
	{Name: "max_message_size", Default: "100 MiB", Doc: "largest Thrift message", field: func(s *Server) any { return &s.MaxMessageSize }, size: true},
	{Name: "admin.bind", Default: "", Doc: "admin listener (/metrics, /health, pprof); off when unset", field: func(s *Server) any { return &s.Admin.Bind }},
	{Name: "admin.pprof", Default: "false", Doc: "serve /debug/pprof/ on the admin listener", field: func(s *Server) any { return &s.Admin.Pprof }},
	{Name: "metrics.endpoint", Default: "", Doc: "statsd host:port (UDP); off when unset; may also be set in the app section", field: func(s *Server) any { return &s.Metrics.Endpoint }},
	{Name: "metrics.namespace", Default: "", Doc: "statsd metric prefix; may also be set in the app section", field: func(s *Server) any { return &s.Metrics.Namespace }},
	{Name: "metrics.guest_limit", Default: "100", Doc: "distinct metric names a guest may create", field: func(s *Server) any { return &s.Metrics.GuestLimit }, min: 0, max: 0},
	{Name: "monitoring.concurrency", Default: "true", Doc: "report open_connections and active_requests gauges", field: func(s *Server) any { return &s.Monitoring.Concurrency }},
	{Name: "monitoring.gc.stats", Default: "true", Doc: "report Go GC gauges", field: func(s *Server) any { return &s.Monitoring.GCStats }},
	{Name: "monitoring.gc.timing", Default: "false", Doc: "report a gc.elapsed timer per GC cycle", field: func(s *Server) any { return &s.Monitoring.GCTiming }},
	{Name: "monitoring.blocked_worker", Default: "0", Doc: "report and log guest calls running longer than this; 0 = off", field: func(s *Server) any { return &s.Monitoring.BlockedWorker }},
	{Name: "log.format", Default: "text", Doc: "`text` or `json`", field: func(s *Server) any { return &s.Log.Format }, choices: []string{"text", "json"}},
}

// ServerKeys returns the documentation of every server key.
func ServerKeys() []Key { return append([]Key(nil), serverKeys...) }

func lookupKey(name string) (Key, bool) {
	for _, k := range serverKeys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// suggest returns the known key nearest to name, or "".
func suggest(name string) string {
	best, bestD := "", 4
	for _, k := range serverKeys {
		d := editDistance(name, k.Name)
		if d < bestD {
			best, bestD = k.Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func quoteList(xs []string) string {
	out := ""
	for i, x := range xs {
		switch {
		case i == 0:
		case i == len(xs)-1:
			out += " or "
		default:
			out += ", "
		}
		out += strconv.Quote(x)
	}
	return out
}

package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Server is the validated [server:NAME] section. Every field has a value:
// keys the file leaves out take the defaults listed by ServerKeys.
type Server struct {
	Factory               string        // factory: "http" or "thrift"
	Bind                  Endpoint      // bind, or Options.Bind: own listen address when no socket is inherited
	Workers               int           // workers: guest instances, at least 1
	MaxConcurrency        int           // max_concurrency: requests admitted at once, at least Workers
	RequestTimeout        time.Duration // request_timeout: longest guest call; 0 = off
	InitTimeout           time.Duration // init_timeout: longest start-up phase of an instance; 0 = off
	MaxMemory             int64         // max_memory: bytes per instance, a multiple of 64 KiB
	MaxRequests           int           // max_requests: recycle an instance after this many requests; 0 = never
	MaxRequestsJitter     int           // max_requests_jitter: up to this many extra requests per instance
	Isolation             string        // isolation: "worker" or "request"
	LimitRequestLine      int           // limit_request_line: bytes; 0 = unlimited
	LimitRequestFields    int           // limit_request_fields: header fields; 0 = unlimited
	LimitRequestFieldSize int           // limit_request_field_size: bytes; 0 = unlimited
	MaxRequestBody        int64         // max_request_body: bytes
	Keepalive             time.Duration // keepalive: idle keep-alive timeout; 0 disables keep-alive
	HeaderTimeout         time.Duration // header_timeout: time to read the request headers; 0 = none
	ReadTimeout           time.Duration // read_timeout: time to read a whole request; 0 = none
	WriteTimeout          time.Duration // write_timeout: time to write a response; 0 = none
	AccessLog             bool          // access_log: log one line per request
	CompilationCache      string        // compilation_cache: absolute directory; "" = off
	DrainTime             time.Duration // drain_time: keep serving this long after a stop signal
	StopTimeout           time.Duration // stop_timeout: then wait this long for active requests
	Backlog               int           // backlog: listen(2) backlog
	ReusePort             bool          // reuse_port: SO_REUSEPORT on sockets wasmserve binds
	MaxFrameSize          int64         // max_frame_size: largest Thrift frame, bytes
	MaxMessageSize        int64         // max_message_size: largest Thrift message, bytes
	GuestLogLimit         GuestLogLimit // guest_log_limit: guest log records per request
	MaxResponseHeaders    int           // max_response_headers: header fields in a guest response; 0 = unlimited
	MaxResponseHeaderSize int64         // max_response_header_bytes: their total bytes; 0 = unlimited
	Admin                 Admin
	Metrics               Metrics
	Monitoring            Monitoring
	Log                   Log
}

// Admin configures the admin listener.
type Admin struct {
	Bind  Endpoint // admin.bind; the zero Endpoint = no admin listener
	Pprof bool     // admin.pprof: serve /debug/pprof/
}

// Metrics configures the statsd sink and guest metrics. Endpoint and
// Namespace are taken from the app section when the server section
// leaves them out, where baseplate users put them.
type Metrics struct {
	Endpoint   string // metrics.endpoint: statsd host:port (UDP); "" = off
	Namespace  string // metrics.namespace: metric name prefix
	GuestLimit int    // metrics.guest_limit: distinct metric names a guest may create
}

// Monitoring configures baseplate's runtime reporters.
type Monitoring struct {
	Concurrency   bool          // monitoring.concurrency
	GCStats       bool          // monitoring.gc.stats
	GCTiming      bool          // monitoring.gc.timing
	BlockedWorker time.Duration // monitoring.blocked_worker; 0 = off
}

// Log configures the process log.
type Log struct {
	Format string // log.format: "text" or "json"
}

// Key describes one server key. The table of keys drives parsing,
// defaults, the unknown-key check and its suggestions, RestartKeys and the
// configuration reference in the README.
type Key struct {
	Name    string // lower-case, as written in the INI file
	Default string // as written in the INI file; "" when there is none or the Doc explains how it is computed
	Doc     string // one Markdown sentence for the configuration reference

	set    func(s *Server, v string) error // parses v into s
	format func(s *Server) string          // a value that set parses back to the same field
}

// ServerKeys returns the server keys in documentation order.
func ServerKeys() []Key { return slices.Clone(serverKeys) }

// KnownServerKeys returns the names of the server keys in documentation
// order.
func KnownServerKeys() []string {
	names := make([]string, len(serverKeys))
	for i, k := range serverKeys {
		names[i] = k.Name
	}
	return names
}

const (
	wasmPage     = 64 << 10
	maxWasmBytes = 4 << 30 // 65536 pages: the wasm32 limit
)

var serverKeys = []Key{
	choiceKey("factory", "", "`http` or `thrift` (required): the protocol front end",
		func(s *Server) *string { return &s.Factory }, "http", "thrift"),
	endpointKey("bind", "localhost:9090", "listen address: `host:port`, `:port`, `[v6]:port`, `unix:PATH`, a path, or `fd://N`; `--bind` overrides it; ignored when a socket is inherited",
		func(s *Server) *Endpoint { return &s.Bind }, false),
	intKey("workers", "", "guest instances, each serving one request at a time; default max(2, GOMAXPROCS), but no more than max_concurrency",
		func(s *Server) *int { return &s.Workers }, 1, -1),
	intKey("max_concurrency", "", "requests admitted at once, waiting ones included, at least workers; beyond it HTTP answers 503 with Retry-After; default max(100, workers)",
		func(s *Server) *int { return &s.MaxConcurrency }, 1, -1),
	durationKey("request_timeout", "30 seconds", "longest guest call; past it HTTP answers 504 and the instance is replaced; 0 = no deadline (the guest is still interrupted now and then so the Go runtime can run)",
		func(s *Server) *time.Duration { return &s.RequestTimeout }),
	durationKey("init_timeout", "30 seconds", "longest run of each start-up phase of an instance (wasm `start`, `_initialize`, `wasmserve_init`); past it the instance is refused: the server exits at start-up, a reload keeps the old generation; 0 = no deadline",
		func(s *Server) *time.Duration { return &s.InitTimeout }),
	key("max_memory", "64 MiB", "linear memory limit per instance, from 64 KiB to 4 GiB, rounded down to 64 KiB pages; growth beyond it traps",
		func(s *Server) *int64 { return &s.MaxMemory }, parseMemory, formatInt64),
	intKey("max_requests", "0", "recycle an instance after this many requests (0 = never)",
		func(s *Server) *int { return &s.MaxRequests }, 0, -1),
	intKey("max_requests_jitter", "0", "add up to this many requests to max_requests per instance, so they don't recycle together",
		func(s *Server) *int { return &s.MaxRequestsJitter }, 0, -1),
	choiceKey("isolation", "worker", "`worker`: instances are reused and keep state; `request`: every request starts from the instance's state right after start-up (restored from a snapshot, or a fresh instance when the module cannot be restored)",
		func(s *Server) *string { return &s.Isolation }, "worker", "request"),
	intKey("limit_request_line", "4094", "longest HTTP request line, at most 8190 (414 beyond); 0 = unlimited",
		func(s *Server) *int { return &s.LimitRequestLine }, 0, 8190),
	intKey("limit_request_fields", "100", "most HTTP header fields, at most 32768 (431 beyond)",
		func(s *Server) *int { return &s.LimitRequestFields }, 0, 32768),
	intKey("limit_request_field_size", "8190", "longest HTTP header field (431 beyond)",
		func(s *Server) *int { return &s.LimitRequestFieldSize }, 0, -1),
	sizeKey("max_request_body", "10 MiB", "largest HTTP request body (413 beyond)",
		func(s *Server) *int64 { return &s.MaxRequestBody }),
	durationKey("keepalive", "75 seconds", "idle keep-alive timeout; 0 disables keep-alive (Thrift: idle time allowed between calls; 0 = no limit)",
		func(s *Server) *time.Duration { return &s.Keepalive }),
	durationKey("header_timeout", "10 seconds", "time allowed to read request headers (slow clients)",
		func(s *Server) *time.Duration { return &s.HeaderTimeout }),
	durationKey("read_timeout", "60 seconds", "time allowed to read a whole request, body included (Thrift: a whole call, from its first byte)",
		func(s *Server) *time.Duration { return &s.ReadTimeout }),
	durationKey("write_timeout", "60 seconds", "time allowed to write a response (HTTP) or reply (Thrift) to a client that does not read; past it the connection is closed; the guest call does not count",
		func(s *Server) *time.Duration { return &s.WriteTimeout }),
	boolKey("access_log", "true", "log one INFO line per request (HTTP) or call (Thrift: method, seqid, status, duration, worker); HTTP lines go through a buffer written out at least every 100 ms and at shutdown",
		func(s *Server) *bool { return &s.AccessLog }),
	key("compilation_cache", "", "wazero compilation cache directory, relative to the INI file's, or `off`; default $XDG_CACHE_HOME/wasmserve or ~/.cache/wasmserve",
		func(s *Server) *string { return &s.CompilationCache }, parseString, formatCache),
	durationKey("drain_time", "5 seconds", "after a stop signal, keep serving (reporting not ready) this long before closing listeners",
		func(s *Server) *time.Duration { return &s.DrainTime }),
	durationKey("stop_timeout", "10 seconds", "then wait this long for active requests before exiting anyway",
		func(s *Server) *time.Duration { return &s.StopTimeout }),
	intKey("backlog", "2048", "listen(2) backlog of sockets wasmserve binds itself",
		func(s *Server) *int { return &s.Backlog }, 1, -1),
	boolKey("reuse_port", "false", "set SO_REUSEPORT on sockets wasmserve binds itself",
		func(s *Server) *bool { return &s.ReusePort }),
	sizeKey("max_frame_size", "16384000", "largest Thrift frame",
		func(s *Server) *int64 { return &s.MaxFrameSize }),
	sizeKey("max_message_size", "100 MiB", "largest Thrift message",
		func(s *Server) *int64 { return &s.MaxMessageSize }),
	key("guest_log_limit", "1000 lines, 1 MiB", "most guest log records (the `log` import and WASI stdout/stderr lines) per request or start-up, as `N lines`, a size, or both separated by a comma; past it records are dropped and one WARN says how many; `0` = unlimited",
		func(s *Server) *GuestLogLimit { return &s.GuestLogLimit }, parseGuestLogLimit, GuestLogLimit.String),
	intKey("max_response_headers", "100", "most header fields in a guest's response (HTTP or THeader); beyond it the request fails as `bad_response`; 0 = unlimited",
		func(s *Server) *int { return &s.MaxResponseHeaders }, 0, -1),
	sizeKey("max_response_header_bytes", "64 KiB", "largest total of a guest response's header names and values; beyond it the request fails as `bad_response`; 0 = unlimited",
		func(s *Server) *int64 { return &s.MaxResponseHeaderSize }),
	endpointKey("admin.bind", "", "admin listener (/metrics, /health, pprof); off when unset",
		func(s *Server) *Endpoint { return &s.Admin.Bind }, true),
	boolKey("admin.pprof", "false", "serve /debug/pprof/ on the admin listener",
		func(s *Server) *bool { return &s.Admin.Pprof }),
	key("metrics.endpoint", "", "statsd host:port (UDP); off when unset; may also be set in the app section",
		func(s *Server) *string { return &s.Metrics.Endpoint }, parseHostPort, formatString),
	key("metrics.namespace", "", "statsd metric prefix; may also be set in the app section",
		func(s *Server) *string { return &s.Metrics.Namespace }, parseString, formatString),
	intKey("metrics.guest_limit", "100", "distinct metric names a guest may create",
		func(s *Server) *int { return &s.Metrics.GuestLimit }, 0, -1),
	boolKey("monitoring.concurrency", "true", "report open_connections and active_requests gauges",
		func(s *Server) *bool { return &s.Monitoring.Concurrency }),
	boolKey("monitoring.gc.stats", "true", "report Go GC gauges",
		func(s *Server) *bool { return &s.Monitoring.GCStats }),
	boolKey("monitoring.gc.timing", "false", "report a gc.elapsed timer per GC cycle",
		func(s *Server) *bool { return &s.Monitoring.GCTiming }),
	durationKey("monitoring.blocked_worker", "0", "report and log guest calls running longer than this; 0 = off",
		func(s *Server) *time.Duration { return &s.Monitoring.BlockedWorker }),
	choiceKey("log.format", "text", "`text` or `json`",
		func(s *Server) *string { return &s.Log.Format }, "text", "json"),
}

// key builds a Key whose value parse turns into field's type.
func key[T any](name, def, doc string, field func(*Server) *T, parse func(string) (T, error), format func(T) string) Key {
	return Key{
		Name: name, Default: def, Doc: doc,
		set: func(s *Server, v string) error {
			x, err := parse(v)
			if err != nil {
				return err
			}
			*field(s) = x
			return nil
		},
		format: func(s *Server) string { return format(*field(s)) },
	}
}

func intKey(name, def, doc string, field func(*Server) *int, lo, hi int) Key {
	parse := func(v string) (int, error) { return parseInt(v, lo, hi) }
	return key(name, def, doc, field, parse, strconv.Itoa)
}

func sizeKey(name, def, doc string, field func(*Server) *int64) Key {
	return key(name, def, doc, field, ParseSize, formatInt64)
}

func durationKey(name, def, doc string, field func(*Server) *time.Duration) Key {
	return key(name, def, doc, field, ParseDuration, time.Duration.String)
}

func boolKey(name, def, doc string, field func(*Server) *bool) Key {
	return key(name, def, doc, field, ParseBool, strconv.FormatBool)
}

func endpointKey(name, def, doc string, field func(*Server) *Endpoint, optional bool) Key {
	parse := func(v string) (Endpoint, error) {
		if optional && v == "" {
			return Endpoint{}, nil
		}
		return ParseEndpoint(v)
	}
	return key(name, def, doc, field, parse, Endpoint.String)
}

func choiceKey(name, def, doc string, field func(*Server) *string, choices ...string) Key {
	parse := func(v string) (string, error) {
		if c := strings.ToLower(v); slices.Contains(choices, c) {
			return c, nil
		}
		return "", fmt.Errorf("want %s", quoteList(choices))
	}
	return key(name, def, doc, field, parse, formatString)
}

func parseString(v string) (string, error) { return v, nil }
func formatString(v string) string         { return v }
func formatInt64(n int64) string           { return strconv.FormatInt(n, 10) }

func formatCache(dir string) string {
	if dir == "" {
		return "off"
	}
	return dir
}

// parseMemory parses a size and rounds it down to whole wasm pages.
func parseMemory(v string) (int64, error) {
	n, err := ParseSize(v)
	switch {
	case err != nil:
		return 0, err
	case n < wasmPage:
		return 0, errors.New("must be at least 64 KiB (one wasm page)")
	case n > maxWasmBytes:
		return 0, errors.New("must be at most 4 GiB (the wasm32 limit)")
	}
	return n &^ (wasmPage - 1), nil
}

// parseHostPort accepts "" (off) or host:port with a numeric port.
func parseHostPort(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", errors.New("want host:port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("bad port %q", port)
	}
	return v, nil
}

func lookupKey(name string) (Key, bool) {
	for _, k := range serverKeys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// suggest returns the server key name is most likely a misspelling of,
// or "": the nearest key by edit distance, among keys at most 3 edits
// away (and fewer edits than name has bytes) or that name is a prefix of,
// or that are a prefix of name.
func suggest(name string) string {
	return nearest(name, len(serverKeys), func(i int) string { return serverKeys[i].Name })
}

// nearest returns the one of the n candidates (the i-th is candidate(i))
// that name is most likely a misspelling of, or "", as suggest describes.
func nearest(name string, n int, candidate func(int) string) string {
	best, bestD := "", 0
	for i := range n {
		c := candidate(i)
		d := editDistance(name, c)
		near := d <= 3 && d < len(name)
		prefix := len(name) >= 3 && (strings.HasPrefix(c, name) || strings.HasPrefix(name, c))
		if (near || prefix) && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList returns `"a", "b" or "c"`.
func quoteList(xs []string) string {
	var b strings.Builder
	for i, x := range xs {
		switch {
		case i == 0:
		case i == len(xs)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(x))
	}
	return b.String()
}

// RestartKeys returns, sorted, the names of the server keys whose values
// differ between s and next. Every server key is read once at startup, so
// none of them takes effect on a reload: a change needs a restart.
func (s Server) RestartKeys(next Server) []string {
	var out []string
	for _, k := range serverKeys {
		if k.format(&s) != k.format(&next) {
			out = append(out, k.Name)
		}
	}
	slices.Sort(out)
	return out
}

package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Clients is the outbound part of the app section: what guests may call
// and how (see "Calling other services" in the README).
type Clients struct {
	MaxResponseBody int64 // max_response_body: largest outbound reply
	MaxOutbound     int   // max_outbound: outbound calls one request may hold open
	HTTP            HTTPClient
	Thrift          []ThriftClient // sorted by name
}

// HTTPClient is the http.* keys.
type HTTPClient struct {
	Allow       []string      // http.allow: scheme://host[:port] patterns
	PoolMaxSize int           // http.pool_maxsize
	MaxRetries  int           // http.max_retries
	Timeout     time.Duration // http.timeout
}

// ThriftClient is one Thrift client: the NAME.* keys of a NAME that has
// NAME.endpoint.
type ThriftClient struct {
	Name       string
	Endpoint   string        // NAME.endpoint: host:port, or a unix socket path
	Size       int           // NAME.size
	MaxAge     time.Duration // NAME.max_age
	Timeout    time.Duration // NAME.timeout
	MaxRetries int           // NAME.max_retries
	Protocol   string        // NAME.protocol
}

// ClientKey describes one app-section key of the outbound clients, for
// the README reference and the unknown-key check.
type ClientKey struct {
	Name    string // "max_outbound", "http.allow", or "NAME.size" for a Thrift client's
	Default string
	Doc     string
}

// ThriftProtocols are the values NAME.protocol accepts.
var ThriftProtocols = []string{"header", "header-compact", "framed", "framed-compact"}

var clientKeys = []ClientKey{
	{"max_response_body", "10 MiB", "largest reply of an outbound HTTP or Thrift call; a larger one fails the call with `response too large`"},
	{"max_outbound", "64", "outbound calls one request may hold open at once; beyond it a call fails with the limit error"},
	{"http.allow", "", "what guests may reach over HTTP: `scheme://host[:port]` patterns separated by commas or newlines, `*` for a host label or the port; nothing when unset (deny by default). A loopback address is reachable only when listed literally, address and port"},
	{"http.pool_maxsize", "10", "idle connections kept per upstream host"},
	{"http.max_retries", "0", "extra connection attempts after a DNS or connect failure (never once a request was sent)"},
	{"http.timeout", "10 seconds", "longest outbound HTTP request, connect to last body byte; the inbound request's remaining time bounds it too"},
	{"NAME.endpoint", "", "defines the Thrift client NAME: `host:port` or a unix socket path"},
	{"NAME.size", "10", "most connections the client's pool opens; calls beyond it wait"},
	{"NAME.max_age", "1 minute", "a connection older than this is closed instead of reused"},
	{"NAME.timeout", "1 second", "connect and call timeout; the inbound request's remaining time bounds it too, and it is sent as `Deadline-Budget`"},
	{"NAME.max_retries", "3", "connection attempts (a call is never sent twice)"},
	{"NAME.protocol", "header", "`header` (THeader, binary), `header-compact`, `framed` (framed binary) or `framed-compact`"},
}

// notClients are prefixes of the app section that are not Thrift
// clients, though they may have an endpoint key (metrics.endpoint is
// statsd's).
var notClients = []string{"http", "metrics", "wasi"}

// ClientKeys returns the outbound client keys in documentation order.
func ClientKeys() []ClientKey { return slices.Clone(clientKeys) }

// clients reads the outbound client keys of the app section. Keys under
// http. and under a Thrift client's NAME. must be known ones.
func (l *loader) clients(sec *section) (Clients, error) {
	c := Clients{MaxResponseBody: 10 << 20, MaxOutbound: 64, HTTP: HTTPClient{PoolMaxSize: 10, Timeout: 10 * time.Second}}
	var err error
	// The Thrift clients are the prefixes that have an endpoint.
	thrift := map[string]*ThriftClient{}
	for _, kv := range sec.keys {
		if name, ok := strings.CutSuffix(kv.name, ".endpoint"); ok && name != "" && !slices.Contains(notClients, name) {
			thrift[name] = &ThriftClient{Name: name, Size: 10, MaxAge: time.Minute, Timeout: time.Second, MaxRetries: 3, Protocol: "header"}
		}
	}
	for _, kv := range sortedByLine(sec.keys) {
		fail := func(e error) error { return l.errAt(sec, kv, e) }
		switch kv.name {
		case "max_response_body":
			if c.MaxResponseBody, err = ParseSize(kv.value); err != nil {
				return c, fail(err)
			}
			if c.MaxResponseBody == 0 {
				return c, fail(errors.New("must be at least 1 byte"))
			}
			continue
		case "max_outbound":
			if c.MaxOutbound, err = parseInt(kv.value, 1, 1<<20); err != nil {
				return c, fail(err)
			}
			continue
		}
		if rest, ok := strings.CutPrefix(kv.name, "http."); ok {
			switch rest {
			case "allow":
				c.HTTP.Allow = splitAllow(kv.value)
				for _, p := range c.HTTP.Allow {
					if err := checkAllow(p); err != nil {
						return c, fail(err)
					}
				}
			case "pool_maxsize":
				if c.HTTP.PoolMaxSize, err = parseInt(kv.value, 1, -1); err != nil {
					return c, fail(err)
				}
			case "max_retries":
				if c.HTTP.MaxRetries, err = parseInt(kv.value, 0, 100); err != nil {
					return c, fail(err)
				}
			case "timeout":
				if c.HTTP.Timeout, err = ParseDuration(kv.value); err != nil {
					return c, fail(err)
				}
				if c.HTTP.Timeout == 0 {
					return c, fail(errors.New("must be more than 0"))
				}
			default:
				return c, fail(unknownClientKey(kv.name, "the HTTP client", "http.", []string{"allow", "pool_maxsize", "max_retries", "timeout"}))
			}
			continue
		}
		i := strings.LastIndexByte(kv.name, '.')
		if i < 0 {
			continue
		}
		t := thrift[kv.name[:i]]
		if t == nil {
			continue // the guest's own key
		}
		switch kv.name[i+1:] {
		case "endpoint":
			if t.Endpoint, err = parseClientEndpoint(kv.value); err != nil {
				return c, fail(err)
			}
		case "size":
			if t.Size, err = parseInt(kv.value, 1, 10000); err != nil {
				return c, fail(err)
			}
		case "max_age":
			if t.MaxAge, err = ParseDuration(kv.value); err != nil {
				return c, fail(err)
			}
		case "timeout":
			if t.Timeout, err = ParseDuration(kv.value); err != nil {
				return c, fail(err)
			}
			if t.Timeout == 0 {
				return c, fail(errors.New("must be more than 0"))
			}
		case "max_retries":
			if t.MaxRetries, err = parseInt(kv.value, 1, 100); err != nil {
				return c, fail(err)
			}
		case "protocol":
			p := strings.ToLower(strings.TrimSpace(kv.value))
			if !slices.Contains(ThriftProtocols, p) {
				return c, fail(fmt.Errorf("want %s", quoteList(ThriftProtocols)))
			}
			t.Protocol = p
		default:
			return c, fail(unknownClientKey(kv.name, fmt.Sprintf("the Thrift client %q", t.Name), t.Name+".",
				[]string{"endpoint", "size", "max_age", "timeout", "max_retries", "protocol"}))
		}
	}
	for _, t := range thrift {
		c.Thrift = append(c.Thrift, *t)
	}
	slices.SortFunc(c.Thrift, func(a, b ThriftClient) int { return strings.Compare(a.Name, b.Name) })
	return c, nil
}

// unknownClientKey is the error of a key under a client's prefix that the
// client does not have, naming the nearest one.
func unknownClientKey(name, client, prefix string, known []string) error {
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(name, prefix+k)
		if best == "" || d < bestD {
			best, bestD = prefix+k, d
		}
	}
	return errorf(ErrUnknownKey, "unknown key %q for %s (did you mean %q?)", name, client, best)
}

// splitAllow splits http.allow on commas and white space (a continuation
// line per pattern reads well).
func splitAllow(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// checkAllow validates one http.allow pattern: scheme://host[:port] with
// "*" for a whole host label or the port.
func checkAllow(p string) error {
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return fmt.Errorf("%q: want http://HOST[:PORT] or https://HOST[:PORT]", p)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		return fmt.Errorf("%q: want scheme://host[:port] only, without a path, query or user", p)
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host = rest[:i]
		if port := rest[i+1:]; port != "*" {
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
				return fmt.Errorf("%q: bad port %q", p, port)
			}
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" {
		return fmt.Errorf("%q: empty host", p)
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || (strings.Contains(l, "*") && l != "*") {
			return fmt.Errorf("%q: a host label is a name or exactly \"*\"", p)
		}
	}
	return nil
}

// parseClientEndpoint accepts host:port with a numeric port, or a unix
// socket path (absolute, or unix:PATH).
func parseClientEndpoint(v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "unix:") {
		return v, nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return "", errors.New("want host:port or a unix socket path")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("bad port %q", port)
	}
	return v, nil
}

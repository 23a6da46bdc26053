package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Endpoint is a listen or connect address.
type Endpoint struct {
	// Network is "tcp", "unix", or "fd" (an inherited file descriptor
	// number in Address, as gunicorn's fd://N).
	Network string
	Address string
}

// String returns the endpoint in the form ParseEndpoint accepts.
func (e Endpoint) String() string {
	switch e.Network {
	case "unix":
		return "unix:" + e.Address
	case "fd":
		return "fd://" + e.Address
	}
	return e.Address
}

// IsZero reports whether e is unset.
func (e Endpoint) IsZero() bool { return e.Network == "" }

// ParseEndpoint parses host:port, :port (all interfaces), [v6]:port,
// unix:PATH, fd://N, or any value containing "/" (a UNIX socket path).
func ParseEndpoint(s string) (Endpoint, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Endpoint{}, errors.New("empty address")
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if p == "" {
			return Endpoint{}, errors.New("empty unix socket path")
		}
		return Endpoint{"unix", p}, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := strconv.Atoi(s[5:])
		if err != nil || n < 0 {
			return Endpoint{}, fmt.Errorf("bad file descriptor %q", s[5:])
		}
		return Endpoint{"fd", strconv.Itoa(n)}, nil
	case strings.Contains(s, "/"):
		return Endpoint{"unix", s}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("want host:port, :port, [v6]:port, unix:PATH or a socket path: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return Endpoint{}, fmt.Errorf("bad port %q", port)
	}
	if strings.ContainsAny(host, " \t") {
		return Endpoint{}, fmt.Errorf("bad host %q", host)
	}
	return Endpoint{"tcp", s}, nil
}

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
	// Network is "tcp", "unix", or "fd" for an inherited file descriptor.
	// It is "" in the zero Endpoint, which means "not set".
	Network string
	// Address is host:port for "tcp" (as written: ":9090" means every
	// interface), a socket path for "unix", and a decimal descriptor
	// number for "fd".
	Address string
}

// String returns e in a form ParseEndpoint parses back to e: "host:port",
// "unix:PATH" or "fd://N", and "" for the zero Endpoint.
func (e Endpoint) String() string {
	switch e.Network {
	case "unix":
		if strings.HasPrefix(e.Address, "//") {
			return "unix://" + e.Address // "unix://" would drop the leading "//"
		}
		return "unix:" + e.Address
	case "fd":
		return "fd://" + e.Address
	}
	return e.Address
}

// IsZero reports whether e is the zero Endpoint (not set).
func (e Endpoint) IsZero() bool { return e == Endpoint{} }

// ParseEndpoint parses an address in the forms baseplate-serve and
// gunicorn accept:
//
//   - "host:port", or ":port" for every interface: Network "tcp";
//   - "[v6]:port": Network "tcp";
//   - "unix:PATH" (also "unix://PATH"), or any value containing "/":
//     Network "unix", Address PATH;
//   - "fd://N", an inherited file descriptor: Network "fd", Address "N".
//
// The port must be a number from 0 to 65535. Surrounding space is
// ignored.
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
		return Endpoint{Network: "unix", Address: p}, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := strconv.ParseUint(s[len("fd://"):], 10, 31)
		if err != nil {
			return Endpoint{}, fmt.Errorf("bad file descriptor %q", s[len("fd://"):])
		}
		return Endpoint{Network: "fd", Address: strconv.FormatUint(n, 10)}, nil
	case strings.Contains(s, "/"):
		return Endpoint{Network: "unix", Address: s}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return Endpoint{}, fmt.Errorf("%w (want host:port, :port, [v6]:port, unix:PATH, a socket path or fd://N)", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Endpoint{}, fmt.Errorf("bad port %q", port)
	}
	if strings.ContainsAny(host, " \t") {
		return Endpoint{}, fmt.Errorf("bad host %q", host)
	}
	return Endpoint{Network: "tcp", Address: s}, nil
}

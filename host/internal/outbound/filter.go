package outbound

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// allowRule is one http.allow pattern: scheme://host[:port], where a host
// label or the port may be "*". A leading "*" label matches one or more
// labels ("*.example.com" matches a.b.example.com, not example.com); a
// host of "*" matches every host. A pattern without a port allows the
// scheme's default port.
type allowRule struct {
	raw    string
	scheme string
	labels []string   // host labels, lower case; nil for an IP literal
	ip     netip.Addr // valid for an IP literal host
	port   string     // "*" for any
}

// parseAllow parses one http.allow pattern.
func parseAllow(p string) (allowRule, error) {
	r := allowRule{raw: p}
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return r, fmt.Errorf("%q: want http://HOST[:PORT] or https://HOST[:PORT]", p)
	}
	r.scheme = scheme
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@") || rest == "" {
		return r, fmt.Errorf("%q: want scheme://host[:port] only, without a path, query or user", p)
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		if port != "*" {
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
				return r, fmt.Errorf("%q: bad port %q", p, port)
			}
		}
	}
	if port == "" {
		port = defaultPort(scheme)
	}
	r.port = port
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil {
		r.ip = ip.Unmap()
		return r, nil
	}
	if host == "" {
		return r, fmt.Errorf("%q: empty host", p)
	}
	r.labels = strings.Split(strings.ToLower(host), ".")
	for _, l := range r.labels {
		if l == "" || (strings.Contains(l, "*") && l != "*") {
			return r, fmt.Errorf("%q: a host label is a name or exactly \"*\"", p)
		}
	}
	return r, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// match reports whether the rule allows scheme://host:port (host lower
// case, without brackets).
func (r *allowRule) match(scheme, host, port string) bool {
	if scheme != r.scheme || (r.port != "*" && r.port != port) {
		return false
	}
	if r.ip.IsValid() {
		ip, err := netip.ParseAddr(host)
		return err == nil && ip.Unmap() == r.ip
	}
	if len(r.labels) == 1 && r.labels[0] == "*" {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return false // a name pattern never matches an address literal
	}
	hl := strings.Split(host, ".")
	pl := r.labels
	if pl[0] == "*" && len(hl) > len(pl) {
		// The leading * takes the extra labels.
		hl = append([]string{"*"}, hl[len(hl)-len(pl)+1:]...)
	}
	if len(hl) != len(pl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// allowList is the parsed http.allow.
type allowList []allowRule

func newAllowList(patterns []string) (allowList, error) {
	var out allowList
	for _, p := range patterns {
		r, err := parseAllow(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// allows reports whether u may be requested.
func (a allowList) allows(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	for i := range a {
		if a[i].match(u.Scheme, host, port) {
			return true
		}
	}
	return false
}

// explicit reports whether addr appears literally (address and port) in
// the list: the only way a loopback address is reachable.
func (a allowList) explicit(addr netip.AddrPort) bool {
	port := strconv.Itoa(int(addr.Port()))
	for i := range a {
		if a[i].ip.IsValid() && a[i].ip == addr.Addr() && (a[i].port == "*" || a[i].port == port) {
			return true
		}
	}
	return false
}

// denyList is the listener addresses no guest may reach.
type denyList struct {
	addrs []netip.AddrPort
	ports map[uint16]bool // listeners on an unspecified address: any local address
	local []netip.Addr    // this machine's addresses, for ports
}

func newDenyList(listeners []string) (denyList, error) {
	d := denyList{ports: map[uint16]bool{}}
	for _, l := range listeners {
		host, port, err := net.SplitHostPort(l)
		if err != nil {
			continue // a unix socket: not reachable over TCP
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return d, fmt.Errorf("deny %q: bad port", l)
		}
		if host == "" {
			d.ports[uint16(p)] = true
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil {
			return d, fmt.Errorf("deny %q: %w", l, err)
		}
		for _, ip := range ips {
			ip = ip.Unmap()
			if ip.IsUnspecified() {
				d.ports[uint16(p)] = true
				continue
			}
			d.addrs = append(d.addrs, netip.AddrPortFrom(ip, uint16(p)))
		}
	}
	if len(d.ports) > 0 {
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, a := range as {
				if pfx, err := netip.ParsePrefix(a.String()); err == nil {
					d.local = append(d.local, pfx.Addr().Unmap())
				}
			}
		}
	}
	return d, nil
}

// denied reports whether addr is a denied listener.
func (d *denyList) denied(addr netip.AddrPort) bool {
	for _, a := range d.addrs {
		if a == addr {
			return true
		}
	}
	if d.ports[addr.Port()] {
		if addr.Addr().IsLoopback() || addr.Addr().IsUnspecified() {
			return true
		}
		for _, l := range d.local {
			if l == addr.Addr() {
				return true
			}
		}
	}
	return false
}

// refusal says why a resolved address may not be dialled, or "".
func (c *httpClient) refusal(addr netip.AddrPort) string {
	ip := addr.Addr()
	switch {
	case c.reg.deny.denied(addr):
		return "it is the admin listener"
	case ip.IsUnspecified(), ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "it is not a unicast address"
	case ip.IsLinkLocalUnicast():
		return "it is link-local (cloud metadata services live there)"
	case ip.IsLoopback() && !c.allow.explicit(addr):
		return "it is a loopback address not listed literally (address and port) in http.allow"
	}
	return ""
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// Probe types of baseplate's IsHealthyProbe.
var probes = map[string]int32{"readiness": 1, "liveness": 2, "startup": 3}

const healthUsage = `usage: wasmserve healthcheck {thrift|http} ENDPOINT [--probe readiness|liveness|startup] [--timeout 5s]

Checks a server the way baseplate-healthcheck does: thrift calls
BaseplateServiceV2.is_healthy, http requests GET /health?type=N (the admin
listener) and wants a 2xx. Prints OK! and exits 0 when healthy; exits 1 with
the reason otherwise. ENDPOINT is host:port or a UNIX socket path.
`

// healthcheck runs the healthcheck subcommand.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, healthUsage); fs.PrintDefaults() }
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, healthUsage)
			fs.PrintDefaults()
			return 0
		}
	}
	probe := fs.String("probe", "readiness", "readiness, liveness or startup")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	p, ok := probes[*probe]
	if len(pos) != 2 || !ok {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var err error
	switch pos[0] {
	case "http":
		err = checkHTTP(ctx, pos[1], p)
	case "thrift":
		err = checkThrift(ctx, pos[1], p)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "wasmserve healthcheck: %s %s (%s): %v\n", pos[0], pos[1], *probe, err)
		return 1
	}
	fmt.Fprintln(stdout, "OK!")
	return 0
}

// dialer connects to host:port or, for a value containing "/", a UNIX
// socket.
func dialer(endpoint string) (network, address string) {
	if a, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		return "unix", a
	}
	if strings.Contains(endpoint, "/") {
		return "unix", endpoint
	}
	return "tcp", endpoint
}

func checkHTTP(ctx context.Context, endpoint string, probe int32) error {
	network, address := dialer(endpoint)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, address)
		},
	}}
	host := address
	if network == "unix" {
		host = "localhost"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/health?type=%d", host, probe), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("status %s: %s: no /health here; is %s the app's port? wasmserve answers health checks on its admin listener: set admin.bind in [server:main] (or WASMSERVE_ADMIN_BIND) and check that address",
			resp.Status, strings.TrimSpace(string(body)), endpoint)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// firstBytes records the first bytes read from a connection, to tell a
// server that answered in another protocol.
type firstBytes struct {
	net.Conn
	head []byte
}

func (c *firstBytes) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if len(c.head) < 8 {
		c.head = append(c.head, p[:min(n, 8-len(c.head))]...)
	}
	return n, err
}

// wrongProtocol returns a hint when the reply so far is HTTP.
func wrongProtocol(c *firstBytes, endpoint string, err error) error {
	if strings.HasPrefix(string(c.head), "HTTP/") {
		return fmt.Errorf("%s answered in HTTP, not Thrift: it is an HTTP port (check the Thrift server's address, or use healthcheck http against the admin listener): %w", endpoint, err)
	}
	return err
}

// checkThrift calls BaseplateServiceV2.is_healthy(IsHealthyRequest{probe})
// over a THeader connection, as baseplate-healthcheck does.
func checkThrift(ctx context.Context, endpoint string, probe int32) error {
	network, address := dialer(endpoint)
	conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	rec := &firstBytes{Conn: conn}
	if err := isHealthy(ctx, rec, probe); err != nil {
		return wrongProtocol(rec, endpoint, err)
	}
	return nil
}

// isHealthy makes the is_healthy call on conn.
func isHealthy(ctx context.Context, conn net.Conn, probe int32) error {
	cfg := &thrift.TConfiguration{}
	trans := thrift.NewTHeaderTransportConf(thrift.NewTSocketFromConnConf(conn, cfg), cfg)
	proto := thrift.NewTHeaderProtocolConf(trans, cfg)
	write := func() error {
		if err := proto.WriteMessageBegin(ctx, "is_healthy", thrift.CALL, 1); err != nil {
			return err
		}
		proto.WriteStructBegin(ctx, "is_healthy_args")
		proto.WriteFieldBegin(ctx, "request", thrift.STRUCT, 1)
		proto.WriteStructBegin(ctx, "IsHealthyRequest")
		proto.WriteFieldBegin(ctx, "probe", thrift.I32, 1)
		proto.WriteI32(ctx, probe)
		proto.WriteFieldEnd(ctx)
		proto.WriteFieldStop(ctx)
		proto.WriteStructEnd(ctx)
		proto.WriteFieldEnd(ctx)
		proto.WriteFieldStop(ctx)
		proto.WriteStructEnd(ctx)
		if err := proto.WriteMessageEnd(ctx); err != nil {
			return err
		}
		return proto.Flush(ctx)
	}
	if err := write(); err != nil {
		return fmt.Errorf("send is_healthy: %w", err)
	}
	_, typ, _, err := proto.ReadMessageBegin(ctx)
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if typ == thrift.EXCEPTION {
		exc := thrift.NewTApplicationException(0, "")
		if err := exc.Read(ctx, proto); err != nil {
			return fmt.Errorf("read exception: %w", err)
		}
		return exc
	}
	healthy, found := false, false
	if _, err := proto.ReadStructBegin(ctx); err != nil {
		return err
	}
	for {
		_, ft, id, err := proto.ReadFieldBegin(ctx)
		if err != nil {
			return err
		}
		if ft == thrift.STOP {
			break
		}
		if id == 0 && ft == thrift.BOOL {
			if healthy, err = proto.ReadBool(ctx); err != nil {
				return err
			}
			found = true
		} else if err := proto.Skip(ctx, ft); err != nil {
			return err
		}
		proto.ReadFieldEnd(ctx)
	}
	if !found {
		return errors.New("is_healthy returned no result")
	}
	if !healthy {
		return errors.New("is_healthy returned false")
	}
	return nil
}

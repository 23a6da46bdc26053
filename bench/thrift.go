package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

// benchThrift compares Thrift echo through wasmserve with a native Go
// TSimpleServer running the same generated code, with a framed binary and
// a THeader client.
func benchThrift(o *options, b *builds, r *report) error {
	native, err := startThrift(o, "native Go TSimpleServer", b.thriftNative, "-addr", "127.0.0.1:PORT")
	if err != nil {
		return err
	}
	defer native.stop()
	// The example as shipped: its own app.ini, only the address changed.
	ini := filepath.Join(o.root, "guests/examples/thrift-go/app.ini")
	ws, err := startThrift(o, "wasmserve (thrift-go guest, shipped app.ini)", b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
	if err != nil {
		return err
	}
	defer ws.stop()
	servers := []*server{native, ws}
	for _, client := range []string{"framed binary", "THeader"} {
		runs := make([][]result, len(servers))
		for round := 0; round < o.rounds; round++ {
			for _, i := range order(round, len(servers)) {
				s := servers[i]
				res, err := thriftLoad(o, b, s, client)
				if err != nil {
					return err
				}
				runs[i] = append(runs[i], res)
			}
		}
		t := table{title: "Thrift echo, " + client + " client", unit: "calls/s"}
		for i, s := range servers {
			t.rows = append(t.rows, row{name: s.name, r: median(runs[i])})
		}
		r.tables = append(r.tables, t)
	}
	fmt.Println("thrift done")
	return nil
}

func startThrift(o *options, name string, argv ...string) (*server, error) {
	port := fmt.Sprint(freePort())
	for i := range argv {
		if argv[i] == "127.0.0.1:PORT" {
			argv[i] = "127.0.0.1:" + port
		}
	}
	s := &server{name: name, addr: "127.0.0.1:" + port, log: filepath.Join(o.work, slug(name)+".log")}
	if err := s.launch(o, argv); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		c, err := dialThrift(s.addr, "THeader")
		if err == nil {
			got, err := c.Echo(context.Background(), "hello")
			if err == nil && got == "hello" {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	log, _ := os.ReadFile(s.log)
	return nil, fmt.Errorf("%s did not answer echo on %s within 90s:\n%s", name, s.addr, log)
}

func dialThrift(addr, client string) (*example.ExampleClient, error) {
	cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 30 * time.Second}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	sock := thrift.NewTSocketFromConnConf(conn, cfg)
	var p thrift.TProtocol
	if client == "THeader" {
		p = thrift.NewTHeaderProtocolConf(thrift.NewTHeaderTransportConf(sock, cfg), cfg)
	} else {
		p = thrift.NewTBinaryProtocolConf(thrift.NewTFramedTransportConf(sock, cfg), cfg)
	}
	return example.NewExampleClient(thrift.NewTStandardClient(p, p)), nil
}

// thriftLoad runs the thriftload generator (its own process, on the load
// generator's CPU) against s for o.duration with o.conns connections.
func thriftLoad(o *options, b *builds, s *server, client string) (result, error) {
	cpu0 := s.cpu()
	argv := pinned(o, loadCPU, b.thriftLoad, "-addr", s.addr, "-client", client,
		"-conns", fmt.Sprint(o.conns), "-duration", o.duration.String())
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		return result{}, fmt.Errorf("%s, %s client: thriftload: %v: %s", s.name, client, err, out)
	}
	var n int
	var elapsed, p50, p99 time.Duration
	var errText string
	if _, err := fmt.Sscanf(string(out), "%d %d %d %d %q", &n, &elapsed, &p50, &p99, &errText); err != nil {
		return result{}, fmt.Errorf("%s, %s client: thriftload printed %q: %v", s.name, client, out, err)
	}
	if errText != "" {
		return result{}, fmt.Errorf("%s, %s client: %s", s.name, client, errText)
	}
	r := result{rss: s.rss(), p50: p50, p99: p99}
	if n > 0 && elapsed > 0 {
		r.rps = float64(n) / elapsed.Seconds()
		r.cpuPerRq = (s.cpu() - cpu0) / time.Duration(n)
	}
	return r, nil
}

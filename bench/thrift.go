package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
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
	ini := wasmserveINI(o, "thrift", "thrift", filepath.Join(o.root, "guests/examples/thrift-go/thrift.wasm"), "")
	ws, err := startThrift(o, "wasmserve (thrift-go guest)", b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
	if err != nil {
		return err
	}
	defer ws.stop()
	servers := []*server{native, ws}
	for _, client := range []string{"framed binary", "THeader"} {
		runs := make([][]result, len(servers))
		for round := 0; round < o.rounds; round++ {
			for i, s := range servers {
				res, err := thriftLoad(o, s, client)
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
	if err := s.launch(argv); err != nil {
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

// thriftLoad runs o.conns clients calling echo for o.duration.
func thriftLoad(o *options, s *server, client string) (result, error) {
	cpu0 := s.cpu()
	deadline := time.Now().Add(o.duration)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialThrift(s.addr, client)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				got, err := c.Echo(context.Background(), "hello")
				if err != nil || got != "hello" {
					mu.Lock()
					firstErr = fmt.Errorf("echo = %q, %v", got, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return result{}, fmt.Errorf("%s, %s client: %w", s.name, client, firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / elapsed.Seconds(), rss: s.rss()}
	if n := len(lat); n > 0 {
		r.p50, r.p99 = lat[n/2], lat[n*99/100]
		r.cpuPerRq = (s.cpu() - cpu0) / time.Duration(n)
	}
	return r, nil
}

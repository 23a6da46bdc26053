// Command thriftload is the bench's Thrift load generator: -conns clients,
// each on its own connection, call echo("hello") back to back for
// -duration and it prints one line: calls, elapsed, p50, p99 (nanoseconds)
// and the first error, if any. It runs as its own process, pinned to the
// load generator's CPU, so that it never shares a core with the server it
// measures.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

func main() {
	addr := flag.String("addr", "", "server host:port")
	client := flag.String("client", "framed binary", `"framed binary" or "THeader"`)
	conns := flag.Int("conns", 16, "connections")
	duration := flag.Duration("duration", 3*time.Second, "load duration")
	flag.Parse()
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	clients := make([]*example.ExampleClient, *conns)
	for i := range clients {
		c, err := dial(*addr, *client)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		clients[i] = c
	}
	start := time.Now()
	deadline := start.Add(*duration)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				got, err := c.Echo(context.Background(), "hello")
				if err != nil || got != "hello" {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("echo = %q, %v", got, err)
					}
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
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var p50, p99 time.Duration
	if n := len(lat); n > 0 {
		p50, p99 = lat[n/2], lat[n*99/100]
	}
	errText := ""
	if firstErr != nil {
		errText = firstErr.Error()
	}
	fmt.Printf("%d %d %d %d %q\n", len(lat), elapsed, p50, p99, errText)
}

func dial(addr, client string) (*example.ExampleClient, error) {
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

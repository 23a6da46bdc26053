//go:build wasip1

// Command gateway-go is the outbound-calls example: a Go guest that calls
// an HTTP upstream with net/http and a Thrift backend with a generated
// client, both through the host's clients.
//
// Routes:
//
//	GET /                    a short usage line
//	GET /http?path=P         GET upstream+P; answers the upstream's status and body
//	GET /http?url=U          GET any absolute URL (refused unless http.allow covers it: 502 and the host's message)
//	GET /thrift              is_healthy on the Thrift client "backend": "true" or "false"
//	GET /thrift/lookup?header=H   Example.lookup: the THeader header H as the backend received it
//	GET /fanout?n=N          N concurrent GETs of upstream + "/"; answers the number that succeeded
//	GET /open?n=N[&path=P]   starts N calls and never waits on them; answers how many started, and the first error
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/wasmserve/wasmserve/abi"
	"github.com/wasmserve/wasmserve/abi/guest"
	_ "github.com/wasmserve/wasmserve/abi/guest/outbound"
	"github.com/wasmserve/wasmserve/abi/guest/thriftguest"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

var (
	upstream string // the app's upstream key, ${UPSTREAM_HTTP}
	backend  *example.ExampleClient
)

func init() {
	guest.OnInit(func() error {
		upstream, _ = guest.Config("upstream")
		upstream = strings.TrimSuffix(upstream, "/")
		backend = example.NewExampleClient(thriftguest.Client("backend"))
		return nil
	})
	guest.Handle(guest.HandlerFunc(serve))
}

func serve(w guest.ResponseWriter, r *guest.Request) {
	q := r.Query()
	switch r.Path {
	case "/":
		w.Write([]byte("gateway-go: try /http?path=/, /thrift, /fanout?n=8\n"))
	case "/http":
		target := q.Get("url")
		if target == "" {
			target = upstream + q.Get("path")
		}
		proxy(w, r, target)
	case "/thrift":
		ok, err := backend.IsHealthy(context.Background(), &baseplate.IsHealthyRequest{})
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintf(w, "%t\n", ok)
	case "/thrift/lookup":
		v, err := backend.Lookup(context.Background(), q.Get("header"), "")
		if err != nil {
			fail(w, err)
			return
		}
		w.Write([]byte(strings.TrimSuffix(v, "|") + "\n"))
	case "/fanout":
		n, _ := strconv.Atoi(q.Get("n"))
		n = max(0, min(n, 256))
		var mu sync.Mutex
		var wg sync.WaitGroup
		okCount, firstErr := 0, ""
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(upstream + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && firstErr == "":
					firstErr = err.Error()
				case err == nil && resp.StatusCode == 200:
					okCount++
				}
			}()
		}
		wg.Wait()
		fmt.Fprintf(w, "%d\n", okCount)
		if firstErr != "" {
			fmt.Fprintf(w, "first error: %s\n", firstErr)
		}
	case "/open":
		n, _ := strconv.Atoi(q.Get("n"))
		started := 0
		var firstErr error
		for range max(0, min(n, 1000)) {
			rec := abi.AppendOutboundRequest(nil, "GET", upstream+q.Get("path"), nil, nil)
			if _, err := guest.SendHTTP(rec); err != nil {
				firstErr = err
				break
			}
			started++
		}
		fmt.Fprintf(w, "%d\n", started)
		if firstErr != nil {
			fmt.Fprintf(w, "error: %v\n", firstErr)
		}
	default:
		w.WriteHeader(404)
		w.Write([]byte("not found: try /http?path=/, /thrift, /fanout?n=8\n"))
	}
}

// proxy answers with target's status and body, or 502 with the error.
func proxy(w guest.ResponseWriter, r *guest.Request, target string) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		w.WriteHeader(400)
		fmt.Fprintf(w, "bad URL: %v\n", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(w, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail(w, err)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func fail(w guest.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(502)
	fmt.Fprintf(w, "upstream call failed: %v\n", err)
}

func main() {}

// Command nativeproxy is the native Go counterpart of the gateway-go
// example for the bench: GET /http?path=P proxies to the upstream with
// net/http/httputil's ReverseProxy, and GET /thrift calls is_healthy on a
// Thrift backend through a pool of THeader clients.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/baseplate"
	"github.com/wasmserve/wasmserve/guests/examples/thrift-go/gen-go/example"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "HTTP upstream, http://host:port")
	backend := flag.String("thrift", "", "Thrift backend, host:port")
	pool := flag.Int("pool", 10, "Thrift connections")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 10
	proxy := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = u.Scheme, u.Host
			r.Out.URL.Path, r.Out.URL.RawQuery = r.In.URL.Query().Get("path"), ""
			r.Out.Host = u.Host
		},
	}
	clients := make(chan *example.ExampleClient, *pool)
	for range *pool {
		clients <- nil
	}
	cfg := &thrift.TConfiguration{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "nativeproxy") })
	mux.Handle("/http", proxy)
	mux.HandleFunc("/thrift", func(w http.ResponseWriter, r *http.Request) {
		c := <-clients
		if c == nil {
			sock := thrift.NewTSocketConf(*backend, cfg)
			if err := sock.Open(); err != nil {
				clients <- nil
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			t := thrift.NewTHeaderTransportConf(sock, cfg)
			p := thrift.NewTHeaderProtocolConf(t, cfg)
			c = example.NewExampleClient(thrift.NewTStandardClient(p, p))
		}
		ok, err := c.IsHealthy(context.Background(), &baseplate.IsHealthyRequest{})
		if err != nil {
			clients <- nil
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		clients <- c
		fmt.Fprintf(w, "%t\n", ok)
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// benchClients compares outbound calls made by a guest through the host's
// clients with the same calls made by native Go: the gateway-go example
// proxying HTTP (GET /http?path=/) against net/http/httputil's
// ReverseProxy, and calling is_healthy on a Thrift backend (GET /thrift)
// against a native pool of THeader clients. Both sides call the same
// native upstream and the same native Thrift server.
func benchClients(o *options, b *builds, r *report) error {
	proxyBin := filepath.Join(o.work, "nativeproxy")
	if err := sh(filepath.Join(o.root, "bench"), "go", "build", "-o", proxyBin, "./nativeproxy"); err != nil {
		return err
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	up, err := start(o, "upstream", b.native, "-addr", "127.0.0.1:PORT")
	if err != nil {
		return err
	}
	servers = append(servers, up)
	backend, err := startThrift(o, "thrift backend", b.thriftNative, "-addr", "127.0.0.1:PORT")
	if err != nil {
		return err
	}
	servers = append(servers, backend)
	native, err := start(o, "native Go (httputil.ReverseProxy, Thrift client pool)", proxyBin,
		"-addr", "127.0.0.1:PORT", "-upstream", "http://"+up.addr, "-thrift", backend.addr)
	if err != nil {
		return err
	}
	servers = append(servers, native)
	ini := filepath.Join(o.work, "gateway.ini")
	module := filepath.Join(o.root, "guests", "examples", "gateway-go", "gateway.wasm")
	text := fmt.Sprintf("[server:main]\nfactory = http\nworkers = 2\naccess_log = false\nrequest_timeout = 0\ncompilation_cache = %s\ndrain_time = 0\n"+
		"[app:main]\nfactory = %s\nupstream = http://%s\nhttp.allow = http://%s\nbackend.endpoint = %s\n",
		filepath.Join(o.work, "cache"), module, up.addr, up.addr, backend.addr)
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		return err
	}
	gw, err := start(o, "wasmserve (gateway-go guest)", b.wasmserve, "--bind", "127.0.0.1:PORT", ini)
	if err != nil {
		return err
	}
	servers = append(servers, gw)
	pair := []*server{native, gw}
	for _, c := range []struct{ title, path, want string }{
		{"Outbound HTTP: proxy GET / of a local upstream", "/http?path=/", "hello, world"},
		{"Outbound Thrift: is_healthy on a local backend per request", "/thrift", "true"},
	} {
		for _, s := range pair {
			resp, err := http.Get("http://" + s.addr + c.path)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != c.want {
				return fmt.Errorf("%s GET %s = %d %q, want %q", s.name, c.path, resp.StatusCode, body, c.want)
			}
		}
		runs := make([][]result, len(pair))
		for round := 0; round < o.rounds; round++ {
			for i, s := range pair {
				res, err := wrk(o, s, c.path, 0)
				if err != nil {
					return err
				}
				runs[i] = append(runs[i], res)
			}
		}
		t := table{title: c.title, unit: "requests/s"}
		for i, s := range pair {
			t.rows = append(t.rows, row{name: s.name, r: median(runs[i])})
		}
		r.tables = append(r.tables, t)
	}
	fmt.Println("outbound clients done")
	return nil
}

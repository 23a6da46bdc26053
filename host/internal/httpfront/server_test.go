package httpfront_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmserve/wasmserve/host/internal/engine"
	"github.com/wasmserve/wasmserve/host/internal/httpfront"
	"github.com/wasmserve/wasmserve/host/internal/pool"
	"github.com/wasmserve/wasmserve/internal/testguest"
)

// serve starts an HTTP front end for the hello-go example on 127.0.0.1.
func serve(t *testing.T, opts httpfront.Options) (string, *httpfront.Server) {
	t.Helper()
	ctx := context.Background()
	m, err := engine.Load(ctx, engine.Options{
		Path:      testguest.Module(t, "hello-go", "hello.wasm"),
		CacheDir:  testguest.CacheDir(),
		MaxMemory: 64 << 20,
		Config:    []engine.ConfigEntry{{Key: "greeting", Value: "hello from front"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, m, pool.Options{Workers: 2, MaxConcurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	opts.Handler = p
	s := httpfront.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		s.Close()
		p.Close(ctx)
	})
	return "http://" + ln.Addr().String(), s
}

func defaults() httpfront.Options {
	return httpfront.Options{
		LimitRequestLine: 4094, LimitRequestFields: 100, LimitRequestFieldSize: 8190,
		MaxRequestBody: 1 << 20, Keepalive: time.Minute, HeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, defaults())
	manyHeaders := http.Header{}
	for i := 0; i < 101; i++ {
		manyHeaders.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	cases := []struct {
		name   string
		path   string
		header http.Header
		body   []byte
		want   int
	}{
		{name: "ok", path: "/", want: 200},
		{name: "long request line", path: "/" + strings.Repeat("a", 4100), want: 414},
		{name: "too many headers", path: "/", header: manyHeaders, want: 431},
		{name: "header too large", path: "/", header: http.Header{"X-Big": {strings.Repeat("b", 8200)}}, want: 431},
		{name: "host too large", path: "/", header: http.Header{"Host": {strings.Repeat("h", 8200)}}, want: 431},
		{name: "body too large", path: "/echo", body: make([]byte, 1<<20+1), want: 413},
		{name: "body at limit", path: "/echo", body: make([]byte, 1<<20), want: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			method := "GET"
			if c.body != nil {
				method = "POST"
			}
			req, _ := http.NewRequest(method, url+c.path, bytes.NewReader(c.body))
			for k, v := range c.header {
				req.Header[k] = v
			}
			if h := c.header.Get("Host"); h != "" {
				req.Host = h
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}

func TestEchoAndHeaders(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, defaults())
	body := []byte("binary\x00\xffsafe")
	req, _ := http.NewRequest("PUT", url+"/echo?a=1&b=%20", bytes.NewReader(body))
	req.Header.Add("X-Test-Multi", "one")
	req.Header.Add("X-Test-Multi", "two")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("body %q, want %q", got, body)
	}
	for k, want := range map[string]string{"X-Echo-Method": "PUT", "X-Echo-Path": "/echo", "X-Echo-Query": "a=1&b=%20"} {
		if v := resp.Header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if v := resp.Header.Values("X-Test-Multi"); len(v) != 2 || v[0] != "one" || v[1] != "two" {
		t.Errorf("X-Test-Multi = %q, want [one two]", v)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(body))
	}
}

func TestShuttingDownClosesConnections(t *testing.T) {
	t.Parallel()
	url, s := serve(t, defaults())
	for _, shutting := range []bool{false, true} {
		if shutting {
			s.SetShuttingDown()
		}
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close != shutting {
			t.Fatalf("shutting down %v: status %d, Connection: close %v", shutting, resp.StatusCode, resp.Close)
		}
	}
}

// A request with both Content-Length and Transfer-Encoding is answered,
// and its connection closed (RFC 9112, section 6.3): a request pipelined
// after it on the same connection is not served.
func TestContentLengthWithTransferEncodingCloses(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, defaults())
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c) // ends when the server closes the connection
	if err != nil {
		t.Fatalf("read: %v (the connection was not closed)", err)
	}
	if n := strings.Count(string(all), "HTTP/1.1 "); n != 1 || !strings.Contains(string(all), "Connection: close") {
		t.Fatalf("got %d responses, want exactly one with Connection: close:\n%s", n, all)
	}
}

// connObserver reports connections the server closed.
type connObserver struct{ closed chan struct{} }

func (connObserver) RequestStarted()                        {}
func (connObserver) RequestDone(string, int, time.Duration) {}
func (o connObserver) ConnState(_ net.Conn, st http.ConnState) {
	if st == http.StateClosed {
		o.closed <- struct{}{}
	}
}

// A response the client does not read is abandoned after write_timeout:
// the server closes the connection.
func TestWriteTimeoutClosesStuckConnection(t *testing.T) {
	t.Parallel()
	opts := defaults()
	opts.MaxRequestBody = 16 << 20
	opts.WriteTimeout = 500 * time.Millisecond
	obs := connObserver{closed: make(chan struct{}, 1)}
	opts.Observer = obs
	url, _ := serve(t, opts)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := bytes.Repeat([]byte("x"), 9<<20) // more than the socket buffers hold
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	select {
	case <-obs.closed:
	case <-time.After(60 * time.Second):
		t.Fatal("the server kept a connection whose client does not read past write_timeout")
	}
}

// A guest's 1xx status is answered 500, never sent as an informational
// response; a request pipelined after it is served normally.
func TestInformationalStatusIsAnError(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, defaults())
	for _, code := range []string{"100", "101", "103", "199"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "GET /status/"+code+" HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
		all, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The Go SDK, like net/http, treats WriteHeader(100), (103) and
		// (199) as informational and answers 200 in the end; 101 reaches
		// the host as the guest's status.
		first, _, _ := strings.Cut(string(all), "\r\n")
		if code == "101" && first != "HTTP/1.1 500 Internal Server Error" {
			t.Fatalf("guest status %s answered %q, want 500:\n%s", code, first, all)
		}
		if strings.Contains(string(all), "HTTP/1.1 1") || strings.Count(string(all), "HTTP/1.1 ") != 2 || !strings.Contains(string(all), "HTTP/1.1 200 OK") {
			t.Fatalf("guest status %s: got\n%s", code, all)
		}
	}
}

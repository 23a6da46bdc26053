package guest

import (
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
)

// record parses the request record for info, as the guest receives it.
func record(t testing.TB, info *abi.RequestInfo) *abi.Request {
	t.Helper()
	r, err := abi.ParseRequest(abi.AppendRequest(nil, info))
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func benchHeaders() abi.Fields {
	h := abi.AppendField(nil, "Host", "example.test")
	h = abi.AppendField(h, "User-Agent", "bench/1")
	return abi.AppendField(h, "Accept", "*/*")
}

var helloBody = []byte("hello, world")

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(helloBody)
}

// TestNetServerRequest checks the *http.Request built from a record and
// that the strings handed to one request survive the next.
func TestNetServerRequest(t *testing.T) {
	var got *http.Request
	var path, agent, multi, body string
	s := newNetServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.Method != "PATCH" {
			return
		}
		path, agent = r.URL.Path, r.Header.Get("User-Agent")
		multi = strings.Join(r.Header.Values("X-Multi"), ",")
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Add("X-A", "1")
		w.Header().Add("X-A", "2")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "ok")
	}))
	h := abi.AppendField(nil, "host", "example.test:8080")
	h = abi.AppendField(h, "User-Agent", "t/1")
	h = abi.AppendField(h, "x-multi", "one")
	h = abi.AppendField(h, "X-Multi", "two")
	out := s.serve(record(t, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "PATCH", Path: "/a%20b/c",
		Query: "q=1&r=%26", Headers: h, Body: []byte("payload"), Remote: "10.0.0.1:5"}), nil)
	resp, err := abi.ParseResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	var hs []string
	_ = resp.Headers.Range(func(k, v []byte) bool { hs = append(hs, string(k)+"="+string(v)); return true })
	if resp.Status != 201 || string(resp.Body) != "ok" || len(hs) != 2 || hs[0] != "X-A=1" || hs[1] != "X-A=2" {
		t.Errorf("response = %d %q %q", resp.Status, resp.Body, hs)
	}
	r := got
	for _, c := range [][2]string{
		{r.Method, "PATCH"}, {r.URL.Path, "/a b/c"}, {r.URL.RawPath, "/a%20b/c"}, {r.URL.RawQuery, "q=1&r=%26"},
		{r.URL.Query().Get("r"), "&"}, {r.RequestURI, "/a%20b/c?q=1&r=%26"}, {r.Host, "example.test:8080"},
		{r.RemoteAddr, "10.0.0.1:5"}, {r.Proto, "HTTP/1.1"}, {agent, "t/1"}, {multi, "one,two"}, {body, "payload"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
	if r.ContentLength != 7 || r.Header.Get("Host") != "" || len(r.Header) != 2 {
		t.Errorf("ContentLength %d, Header %q", r.ContentLength, r.Header)
	}
	// Serve enough requests to fill several arenas: strings kept from the
	// first request keep their value.
	for i := range 3 * arenaSize / 32 {
		n := strconv.Itoa(i)
		s.serve(record(t, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/zzzzzzzzzzzzzzzz" + n,
			Query: "zzzzzzzz", Headers: abi.AppendField(nil, "User-Agent", "zzzzzzzzzzzz"+n)}), nil)
	}
	if path != "/a b/c" || agent != "t/1" || got.Method != "GET" || got.Body != http.NoBody {
		t.Errorf("after reuse: path %q agent %q method %q body %v", path, agent, got.Method, got.Body)
	}
}

// TestNetServerHeaderReuse serves a sequence of requests whose header
// names change, repeat and move, to a handler that modifies the request's
// header map, and checks each request's Header is exactly its own.
func TestNetServerHeaderReuse(t *testing.T) {
	var got http.Header
	s := newNetServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		// Handlers may modify the request's header: replace, add, delete.
		r.Header.Set("Accept", "changed")
		r.Header.Add("X-Added", "1")
		r.Header.Del("X-B")
		if vs := r.Header["X-A"]; len(vs) > 0 {
			vs[0] = "scribbled"
		}
	}))
	seq := [][][2]string{
		{{"Accept", "a"}, {"X-A", "1"}, {"X-B", "2"}},
		{{"Accept", "a"}, {"X-A", "1"}, {"X-B", "2"}},
		{{"Accept", "b"}, {"X-A", "1"}, {"X-B", "3"}},
		{{"X-A", "1"}, {"Accept", "a"}},
		{{"X-A", "1"}, {"X-A", "2"}, {"Accept", "a"}, {"x-a", "3"}},
		{{"X-A", "1"}, {"Accept", "a"}, {"X-C", "c"}},
		{{"X-A", "1"}, {"Accept", "a"}, {"X-C", "c"}},
		{},
		{{"X-Added", "mine"}, {"Host", "h"}, {"X-B", "b"}},
		{{"Host", "h"}, {"X-Added", "mine"}, {"X-B", "b"}, {"X-B", "bb"}},
	}
	for i, hs := range seq {
		var f abi.Fields
		want := http.Header{}
		for _, kv := range hs {
			f = abi.AppendField(f, kv[0], kv[1])
			if kv[0] != "Host" {
				want.Add(kv[0], kv[1])
			}
		}
		s.serve(record(t, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/", Headers: f}), nil)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %d: Header = %q, want %q", i, got, want)
		}
	}
}

// TestNetServerAllocs: serving a request like the previous one allocates
// nothing in the SDK, only the handler's own (Header().Set's value slice).
func TestNetServerAllocs(t *testing.T) {
	s := newNetServer(http.HandlerFunc(hello))
	r := record(t, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/hello", Query: "a=1",
		Headers: benchHeaders(), Remote: "127.0.0.1:5000"})
	out := make([]byte, 0, 256)
	s.serve(r, out)
	if n := testing.AllocsPerRun(1000, func() { s.serve(r, out[:0]) }); n > 1 {
		t.Errorf("%.2f allocations per request, want 1 (the handler's)", n)
	}
}

// BenchmarkNetServer is HandleHTTP's request path run natively, for its
// allocations: go test -bench NetServer -benchmem ./abi/guest
func BenchmarkNetServer(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", hello)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"plain", http.HandlerFunc(hello)},
		{"ServeMux", mux},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := newNetServer(c.h)
			r := record(b, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/hello",
				Headers: benchHeaders(), Remote: "127.0.0.1:5000"})
			out := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				s.serve(r, out[:0])
			}
		})
	}
}

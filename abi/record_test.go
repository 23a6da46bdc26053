package abi_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/wasmserve/wasmserve/abi"
)

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []abi.RequestInfo{
		{Kind: abi.KindHTTP},
		{Kind: abi.KindHTTP, Method: "POST", Path: "/a%20b", Query: "x=1&y", Body: []byte("\x00\xffbody"), Remote: "127.0.0.1:1",
			Headers: abi.Fields(abi.AppendField(abi.AppendField(nil, "X-A", "1"), "X-A", "2"))},
		{Kind: abi.KindThrift, Method: "echo", Body: []byte{0x80, 1, 0, 1}, ThriftProtocol: abi.ThriftCompact, ThriftType: abi.ThriftOneway, ThriftSeqID: -7},
	}
	for _, in := range cases {
		rec := abi.AppendRequest([]byte("prefix"), &in)[len("prefix"):]
		got, err := abi.ParseRequest(rec)
		if err != nil {
			t.Fatalf("ParseRequest(%+v): %v", in, err)
		}
		if got.Kind != in.Kind || string(got.Method) != in.Method || string(got.Path) != in.Path || string(got.Query) != in.Query ||
			!bytes.Equal(got.Body, in.Body) || string(got.Remote) != in.Remote || !bytes.Equal(got.Headers, in.Headers) ||
			got.ThriftProtocol != in.ThriftProtocol || got.ThriftType != in.ThriftType || got.ThriftSeqID != in.ThriftSeqID {
			t.Errorf("round trip of %+v gave %+v", in, got)
		}
	}
}

func TestParseRequestRejects(t *testing.T) {
	t.Parallel()
	good := abi.AppendRequest(nil, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/"})
	mutate := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	cases := map[string][]byte{
		"short":           good[:10],
		"method past end": mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[8:], 1<<20) }),
		"offset wraps":    mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 0xffffffff) }),
		"bad headers": append(mutate(func(b []byte) {
			binary.LittleEndian.PutUint32(b[28:], uint32(len(good)))
			binary.LittleEndian.PutUint32(b[32:], 9)
		}), 1, 0, 0, 0, 1, 0, 0, 0, 'x'),
	}
	for name, b := range cases {
		if _, err := abi.ParseRequest(b); err == nil {
			t.Errorf("%s: ParseRequest accepted a bad record", name)
		}
	}
}

func TestResponse(t *testing.T) {
	t.Parallel()
	h := abi.AppendField(abi.AppendField(nil, "X-Multi", "one"), "X-Multi", "two")
	rec := append(abi.AppendResponseHeader(nil, 201, h), "body"...)
	r, err := abi.ParseResponse(rec)
	if err != nil || r.Status != 201 || string(r.Body) != "body" {
		t.Fatalf("ParseResponse = %+v, %v", r, err)
	}
	var got []string
	r.Headers.Range(func(k, v []byte) bool { got = append(got, string(k)+"="+string(v)); return true })
	if len(got) != 2 || got[0] != "X-Multi=one" || got[1] != "X-Multi=two" {
		t.Errorf("headers %v", got)
	}
	for _, bad := range [][]byte{{1, 2}, {200, 0, 0, 0, 9, 0, 0, 0, 1}} {
		if _, err := abi.ParseResponse(bad); err == nil {
			t.Errorf("ParseResponse(%v) accepted", bad)
		}
	}
}

func TestPackResult(t *testing.T) {
	t.Parallel()
	if v := abi.PackResult(0x1000, 5); v != 0x0000100000000005 {
		t.Fatalf("PackResult = %#x", v)
	}
	if p, n := abi.UnpackResult(abi.PackResult(0xfffffff0, 0xffffffff)); p != 0xfffffff0 || n != 0xffffffff {
		t.Fatalf("UnpackResult = %#x %#x", p, n)
	}
}

// FuzzParseRequest checks that arbitrary records never panic the host and
// that every accepted record's slices lie inside it.
func FuzzParseRequest(f *testing.F) {
	f.Add(abi.AppendRequest(nil, &abi.RequestInfo{Kind: abi.KindHTTP, Method: "GET", Path: "/", Headers: abi.AppendField(nil, "A", "b")}))
	f.Add(make([]byte, abi.RequestHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.ParseRequest(b)
		if err != nil {
			return
		}
		total := len(r.Method) + len(r.Path) + len(r.Query) + len(r.Headers) + len(r.Body) + len(r.Remote)
		if total > 6*len(b) {
			t.Fatalf("slices larger than the record")
		}
		r.Headers.Range(func(k, v []byte) bool { return true })
	})
}

// FuzzParseResponse checks the host's decoding of guest response records.
func FuzzParseResponse(f *testing.F) {
	f.Add(append(abi.AppendResponseHeader(nil, 200, abi.AppendField(nil, "K", "V")), "body"...))
	f.Add([]byte{200, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.ParseResponse(b)
		if err != nil {
			return
		}
		if len(r.Headers)+len(r.Body)+abi.ResponseHeaderSize != len(b) {
			t.Fatalf("parts do not add up to the record")
		}
		if err := r.Headers.Validate(); err != nil {
			t.Fatalf("accepted invalid headers: %v", err)
		}
	})
}

package outbound

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/wasmserve/wasmserve/abi"
)

// Trace is the trace context of an inbound request, which its outbound
// calls continue: each call is a new span whose parent is the inbound
// request's span.
type Trace struct {
	ID      string // trace id as baseplate sends it (decimal), or derived from traceparent
	Span    string // the inbound request's span id: the calls' parent
	Sampled string // "1" or "0"; "" when unknown
	Flags   string
	Edge    string // Edge-Request, opaque
	w3c     string // 32 hex digits
}

// TraceFrom reads the trace context of an inbound request from its
// headers: X-Trace, X-Span, X-Sampled, X-Flags, X-Edge-Request and W3C
// traceparent for HTTP; Trace, Span, Sampled, Flags and Edge-Request
// THeader headers for Thrift. A request without one starts a new trace.
func TraceFrom(kind abi.Kind, headers abi.Fields) Trace {
	var t Trace
	var traceparent string
	_ = headers.Range(func(k, v []byte) bool {
		name := strings.ToLower(string(k))
		if kind == abi.KindHTTP {
			if name == "traceparent" {
				traceparent = string(v)
				return true
			}
			if !strings.HasPrefix(name, "x-") {
				return true
			}
			name = name[2:]
		}
		switch name {
		case "trace":
			t.ID = string(v)
		case "span":
			t.Span = string(v)
		case "sampled":
			t.Sampled = string(v)
		case "flags":
			t.Flags = string(v)
		case "edge-request":
			t.Edge = string(v)
		}
		return true
	})
	if parts := strings.Split(traceparent, "-"); len(parts) == 4 && len(parts[1]) == 32 && len(parts[2]) == 16 {
		t.w3c = strings.ToLower(parts[1])
		if t.ID == "" {
			t.ID = t.w3c
			t.Span = parts[2]
			if f, err := strconv.ParseUint(parts[3], 16, 8); err == nil {
				t.Sampled = strconv.FormatUint(f&1, 10)
			}
		}
	}
	if t.ID == "" {
		t.ID = strconv.FormatUint(rand.Uint64()>>1, 10)
	}
	if t.w3c == "" {
		if n, err := strconv.ParseUint(t.ID, 10, 64); err == nil {
			t.w3c = strings.Repeat("0", 16) + hex16(n)
		} else if b, err := hex.DecodeString(t.ID); err == nil && len(b) == 16 {
			t.w3c = strings.ToLower(t.ID)
		} else {
			t.w3c = hex16(rand.Uint64()) + hex16(rand.Uint64())
		}
	}
	return t
}

func hex16(n uint64) string {
	s := strconv.FormatUint(n, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

func newSpanID() uint64 { return rand.Uint64()>>1 | 1 }

// addHTTP adds the headers of a new span to h, leaving those the guest
// set itself.
func (t *Trace) addHTTP(h http.Header) {
	if t.ID == "" {
		return
	}
	span := newSpanID()
	set := func(k, v string) {
		if v != "" && h.Get(k) == "" {
			h.Set(k, v)
		}
	}
	set("X-Trace", t.ID)
	set("X-Parent", t.Span)
	set("X-Span", strconv.FormatUint(span, 10))
	set("X-Sampled", t.Sampled)
	set("X-Flags", t.Flags)
	set("X-Edge-Request", t.Edge)
	flags := "00"
	if t.Sampled == "1" {
		flags = "01"
	}
	if h.Get("Traceparent") == "" {
		h["traceparent"] = []string{"00-" + t.w3c + "-" + hex16(span) + "-" + flags}
	}
}

// thriftHeaders returns the THeader headers of a new span.
func (t *Trace) thriftHeaders() [][2]string {
	if t.ID == "" {
		return nil
	}
	out := [][2]string{{"Trace", t.ID}, {"Span", strconv.FormatUint(newSpanID(), 10)}}
	if t.Span != "" {
		out = append(out, [2]string{"Parent", t.Span})
	}
	if t.Sampled != "" {
		out = append(out, [2]string{"Sampled", t.Sampled})
	}
	if t.Flags != "" {
		out = append(out, [2]string{"Flags", t.Flags})
	}
	if t.Edge != "" {
		out = append(out, [2]string{"Edge-Request", t.Edge})
	}
	return out
}

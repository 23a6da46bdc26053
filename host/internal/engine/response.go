package engine

import (
	"fmt"

	"github.com/wasmserve/wasmserve/abi"
)

// response reads and validates the response record the guest's handle
// call returned (i.stack[0]) for a request of the given kind. The checks
// apply to both front ends, so neither sends what the other would refuse:
//
//   - the record lies inside memory and parses (abi.ParseResponse);
//   - at most Options.MaxResponseHeaders header fields, whose names and
//     values total at most Options.MaxResponseHeaderBytes;
//   - HTTP only: the status is 200–999 (informational responses belong to
//     the host's HTTP server: a guest 1xx would desynchronise the
//     connection), every header name is an RFC 9110 token and no value
//     holds a control character other than HTAB (NUL, CR and LF would
//     split or truncate the header block).
//
// Thrift statuses are not checked: 0 or 200 is success and anything else
// becomes a TApplicationException carrying the body.
func (i *Instance) response(kind abi.Kind) (abi.Response, error) {
	ptr, n := abi.UnpackResult(i.stack[0])
	rec, ok := i.m.Memory().Read(ptr, n)
	if !ok {
		return abi.Response{}, fmt.Errorf("response record [%#x, +%d) outside memory of %d bytes", ptr, n, i.m.Memory().Size())
	}
	resp, err := abi.ParseResponse(rec)
	if err != nil {
		return abi.Response{}, err
	}
	if err := checkResponse(&resp, kind, i.mod.opts.MaxResponseHeaders, i.mod.opts.MaxResponseHeaderBytes); err != nil {
		return abi.Response{}, err
	}
	return resp, nil
}

// checkResponse applies the checks listed on response to a parsed
// response of the given kind; maxFields and maxBytes of 0 are unlimited.
// The error names the offending header.
func checkResponse(r *abi.Response, kind abi.Kind, maxFields, maxBytes int) error {
	if kind == abi.KindHTTP && (r.Status < 200 || r.Status > 999) {
		return fmt.Errorf("response status %d outside 200–999 (a guest may not send 1xx informational responses)", r.Status)
	}
	fields, size := 0, 0
	var bad error
	_ = r.Headers.Range(func(name, value []byte) bool {
		fields++
		size += len(name) + len(value)
		switch {
		case maxFields > 0 && fields > maxFields:
			bad = fmt.Errorf("response has more than %d header fields (max_response_headers)", maxFields)
		case maxBytes > 0 && size > maxBytes:
			bad = fmt.Errorf("response header fields exceed %d bytes (max_response_header_bytes) at header %s", maxBytes, quoteName(name))
		case kind != abi.KindHTTP:
		case !validName(name):
			bad = fmt.Errorf("response header %s: name is not an HTTP token (letters, digits and !#$%%&'*+-.^_`|~ only)", quoteName(name))
		default:
			if c, ok := badValueByte(value); ok {
				bad = fmt.Errorf("response header %s: value contains control byte %#02x (NUL, CR, LF and other controls but HTAB are refused)", quoteName(name), c)
			}
		}
		return bad == nil
	})
	return bad
}

// quoteName quotes a header name for a message, shortened past 64 bytes.
func quoteName(name []byte) string {
	if len(name) > 64 {
		return fmt.Sprintf("%q…", name[:64])
	}
	return fmt.Sprintf("%q", name)
}

// validName reports whether name is an RFC 9110 token.
func validName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

// badValueByte returns the first byte of value that may not appear in an
// HTTP field value: a control character other than HTAB, or DEL.
func badValueByte(value []byte) (byte, bool) {
	for _, c := range value {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return c, true
		}
	}
	return 0, false
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

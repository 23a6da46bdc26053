package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RequestHeaderSize is the size of the fixed part of a request record. The
// record starts with these little-endian fields, each an unsigned 32-bit
// integer unless noted; every (offset, length) pair locates a byte string
// inside the record, offsets counting from the record's first byte:
//
//	 0 kind              KindHTTP or KindThrift
//	 4 method offset     8 method length    HTTP method, or Thrift message name
//	12 path offset      16 path length      HTTP path as sent (escaped), no query
//	20 query offset     24 query length     HTTP query without '?'
//	28 headers offset   32 headers length   field list: HTTP or THeader headers
//	36 body offset      40 body length      HTTP body, or the whole Thrift message
//	44 remote offset    48 remote length    client address, "ip:port" or a path
//	52 thrift protocol                      ThriftBinary/ThriftCompact, 0 for HTTP
//	56 thrift message type                  ThriftCall/ThriftOneway, 0 for HTTP
//	60 thrift seqid (signed)
const RequestHeaderSize = 64

// ResponseHeaderSize is the size of the fixed part of a response record:
//
//	0 status          HTTP status code; for Thrift 0 or 200 means success
//	4 headers length  length of the field list that follows
//	8 headers         field list: response headers (HTTP) or THeader headers
//	  body            the rest of the record
const ResponseHeaderSize = 8

// Errors returned when a record does not parse.
var (
	ErrShortRecord = errors.New("record shorter than its header")
	ErrBadField    = errors.New("field list entry runs past its end")
)

// Fields is a field list: a sequence of entries, each
// name length (u32 LE), value length (u32 LE), name bytes, value bytes.
// Names may repeat; order is kept.
type Fields []byte

// AppendField appends one entry to a field list.
func AppendField(dst []byte, name, value string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(name)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	dst = append(dst, name...)
	return append(dst, value...)
}

// Range calls fn for each entry in order until fn returns false. It reports
// ErrBadField if the list is malformed; entries before the fault are visited.
func (f Fields) Range(fn func(name, value []byte) bool) error {
	for len(f) > 0 {
		if len(f) < 8 {
			return ErrBadField
		}
		nl := uint64(binary.LittleEndian.Uint32(f))
		vl := uint64(binary.LittleEndian.Uint32(f[4:]))
		if nl+vl > uint64(len(f)-8) {
			return ErrBadField
		}
		name := f[8 : 8+nl]
		value := f[8+nl : 8+nl+vl]
		f = f[8+nl+vl:]
		if !fn(name, value) {
			return nil
		}
	}
	return nil
}

// Validate reports whether the list is well formed.
func (f Fields) Validate() error { return f.Range(func(_, _ []byte) bool { return true }) }

// Request is a parsed request record. Its byte slices alias the record.
type Request struct {
	Kind           Kind
	Method         []byte
	Path           []byte
	Query          []byte
	Headers        Fields
	Body           []byte
	Remote         []byte
	ThriftProtocol ThriftProtocol
	ThriftType     uint32
	ThriftSeqID    int32
}

// RequestInfo is what the host encodes into a request record.
type RequestInfo struct {
	Kind           Kind
	Method         string
	Path           string
	Query          string
	Headers        Fields
	Body           []byte
	Remote         string
	ThriftProtocol ThriftProtocol
	ThriftType     uint32
	ThriftSeqID    int32
}

// AppendRequest appends the request record for r to dst and returns the
// extended slice. dst is typically a reused buffer truncated to length 0.
func AppendRequest(dst []byte, r *RequestInfo) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, RequestHeaderSize)...)
	h := dst[start : start+RequestHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(h[0:], uint32(r.Kind))
	le.PutUint32(h[52:], uint32(r.ThriftProtocol))
	le.PutUint32(h[56:], r.ThriftType)
	le.PutUint32(h[60:], uint32(r.ThriftSeqID))
	put := func(slot int, n int) {
		h := dst[start : start+RequestHeaderSize]
		le.PutUint32(h[slot:], uint32(len(dst)-start))
		le.PutUint32(h[slot+4:], uint32(n))
	}
	put(4, len(r.Method))
	dst = append(dst, r.Method...)
	put(12, len(r.Path))
	dst = append(dst, r.Path...)
	put(20, len(r.Query))
	dst = append(dst, r.Query...)
	put(28, len(r.Headers))
	dst = append(dst, r.Headers...)
	put(36, len(r.Body))
	dst = append(dst, r.Body...)
	put(44, len(r.Remote))
	dst = append(dst, r.Remote...)
	return dst
}

// ParseRequest parses a request record. Every offset and length is checked
// against the record; the field list is validated.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) < RequestHeaderSize {
		return r, ErrShortRecord
	}
	le := binary.LittleEndian
	span := func(slot int, what string) ([]byte, error) {
		off := uint64(le.Uint32(b[slot:]))
		n := uint64(le.Uint32(b[slot+4:]))
		if off+n > uint64(len(b)) {
			return nil, fmt.Errorf("request %s [%d,+%d) outside record of %d bytes", what, off, n, len(b))
		}
		return b[off : off+n : off+n], nil
	}
	var err error
	r.Kind = Kind(le.Uint32(b[0:]))
	if r.Method, err = span(4, "method"); err != nil {
		return r, err
	}
	if r.Path, err = span(12, "path"); err != nil {
		return r, err
	}
	if r.Query, err = span(20, "query"); err != nil {
		return r, err
	}
	var h []byte
	if h, err = span(28, "headers"); err != nil {
		return r, err
	}
	r.Headers = Fields(h)
	if err = r.Headers.Validate(); err != nil {
		return r, fmt.Errorf("request headers: %w", err)
	}
	if r.Body, err = span(36, "body"); err != nil {
		return r, err
	}
	if r.Remote, err = span(44, "remote"); err != nil {
		return r, err
	}
	r.ThriftProtocol = ThriftProtocol(le.Uint32(b[52:]))
	r.ThriftType = le.Uint32(b[56:])
	r.ThriftSeqID = int32(le.Uint32(b[60:]))
	return r, nil
}

// Response is a parsed response record. Its byte slices alias the record.
type Response struct {
	Status  uint32
	Headers Fields
	Body    []byte
}

// AppendResponseHeader appends the fixed part of a response record and its
// field list to dst; the body is whatever is appended after it.
func AppendResponseHeader(dst []byte, status uint32, headers Fields) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, status)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(headers)))
	return append(dst, headers...)
}

// ParseResponse parses a response record and validates its field list.
func ParseResponse(b []byte) (Response, error) {
	var r Response
	if len(b) < ResponseHeaderSize {
		return r, ErrShortRecord
	}
	r.Status = binary.LittleEndian.Uint32(b)
	hl := uint64(binary.LittleEndian.Uint32(b[4:]))
	if hl > uint64(len(b)-ResponseHeaderSize) {
		return r, fmt.Errorf("response headers length %d exceeds record of %d bytes", hl, len(b))
	}
	r.Headers = Fields(b[ResponseHeaderSize : ResponseHeaderSize+hl])
	if err := r.Headers.Validate(); err != nil {
		return r, fmt.Errorf("response headers: %w", err)
	}
	r.Body = b[ResponseHeaderSize+hl:]
	return r, nil
}

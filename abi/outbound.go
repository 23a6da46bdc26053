package abi

import "encoding/binary"

// Outbound calls (optional imports; see "Outbound calls" in ABI.md). A
// guest starts a call with ImportHTTPSend or ImportThriftSend, which
// return a handle (> 0) at once while the host runs the call; it waits on
// the handle with ImportOutboundWait and copies the reply with
// ImportOutboundRead. Several handles may be in flight at once.
const (
	// ImportHTTPSend has the signature (req_ptr, req_len i32) -> i32. It
	// starts the HTTP request encoded by AppendOutboundRequest and returns
	// its handle, or a negative error code.
	ImportHTTPSend = "http_send"
	// ImportThriftSend has the signature (client_ptr, client_len, msg_ptr,
	// msg_len i32) -> i32. It sends one complete Thrift message (call or
	// oneway) through the configured Thrift client named client and returns
	// the call's handle, or a negative error code.
	ImportThriftSend = "thrift_send"
	// ImportOutboundWait has the signature (handle, timeout_ms i32) -> i32.
	// It waits until the call is done (timeout_ms < 0: until its own
	// deadline; 0: does not wait) and returns the reply's length, or
	// ErrPending when the call is still running, or the call's error code
	// (after which the handle is released).
	ImportOutboundWait = "outbound_wait"
	// ImportOutboundRead has the signature (handle, buf_ptr, buf_len i32)
	// -> i32. It returns the length of a finished call's reply and copies
	// it when it fits in buf_len; a copy releases the handle.
	ImportOutboundRead = "outbound_read"
	// ImportOutboundClose has the signature (handle i32) -> i32. It cancels
	// the call if it is running and releases the handle: 0, or ErrNotFound.
	ImportOutboundClose = "outbound_close"
	// ImportOutboundError has the signature (buf_ptr, buf_len i32) -> i32.
	// It returns the message of the instance's last failed outbound call,
	// copying it when it fits.
	ImportOutboundError = "outbound_error"
)

// Error codes of the outbound imports. They start at -10, leaving the
// codes in between to other imports.
const (
	ErrDenied   int32 = -10 // refused by policy: http.allow or address filtering
	ErrConnect  int32 = -11 // DNS failure, connection refused, no connection
	ErrTimeout  int32 = -12 // the call's deadline passed
	ErrTooLarge int32 = -13 // the reply exceeds max_response_body
	ErrProtocol int32 = -14 // the peer broke the protocol or the connection mid-call
	ErrPending  int32 = -15 // outbound_wait: the call has not finished yet
	ErrCanceled int32 = -16 // the call was cancelled (the request ended)
)

// OutboundRequestHeaderSize is the fixed part of an outbound HTTP request
// record:
//
//	0 method length   4 URL length   8 headers length
//	12 method | URL (absolute) | headers (field list) | body (the rest)
//
// The reply of an HTTP call is a response record (see ParseResponse); the
// reply of a Thrift call is the reply message's bytes, empty for oneway.
const OutboundRequestHeaderSize = 12

// AppendOutboundRequest appends an outbound HTTP request record to dst.
func AppendOutboundRequest(dst []byte, method, url string, headers Fields, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(method)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(url)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(headers)))
	dst = append(dst, method...)
	dst = append(dst, url...)
	dst = append(dst, headers...)
	return append(dst, body...)
}

// OutboundRequest is a parsed outbound HTTP request record; its fields
// alias the record.
type OutboundRequest struct {
	Method, URL []byte
	Headers     Fields
	Body        []byte
}

// ParseOutboundRequest parses a record made by AppendOutboundRequest.
func ParseOutboundRequest(b []byte) (OutboundRequest, error) {
	if len(b) < OutboundRequestHeaderSize {
		return OutboundRequest{}, ErrShortRecord
	}
	ml := uint64(binary.LittleEndian.Uint32(b))
	ul := uint64(binary.LittleEndian.Uint32(b[4:]))
	hl := uint64(binary.LittleEndian.Uint32(b[8:]))
	rest := b[OutboundRequestHeaderSize:]
	if ml+ul+hl > uint64(len(rest)) {
		return OutboundRequest{}, ErrBadField
	}
	r := OutboundRequest{Method: rest[:ml], URL: rest[ml : ml+ul], Headers: Fields(rest[ml+ul : ml+ul+hl]), Body: rest[ml+ul+hl:]}
	if err := r.Headers.Validate(); err != nil {
		return OutboundRequest{}, err
	}
	return r, nil
}

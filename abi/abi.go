// Package abi defines version 1 of the wasmserve host ABI: the names a guest
// module imports and exports, the numeric codes that cross the boundary, and
// the byte layouts of the request and response records.
//
// The normative description is ABI.md in this directory; this package is its
// Go form, shared by the host and by Go guests. It imports only the standard
// library and builds for every GOOS, including wasip1.
package abi

// Version is the ABI version this package describes. A guest declares the
// version it was built against by exporting ExportABIVersion; the host refuses
// to load a module whose version differs.
const Version = 1

// ModuleName is the import module name of every host function.
const ModuleName = "wasmserve"

// Host functions, imported by the guest from ModuleName. A guest imports only
// those it uses.
const (
	// ImportRequestRead has the signature (buf_ptr, buf_len i32) -> i32. It
	// copies the current request record (see RequestHeaderSize) into guest
	// memory, at most buf_len bytes, and returns the record's full length
	// (0 outside a request). The whole range [buf_ptr, buf_ptr+buf_len) must
	// lie inside memory, however short the record: otherwise the call traps.
	ImportRequestRead = "request_read"
	// ImportConfigGet has the signature (key_ptr, key_len, buf_ptr, buf_len
	// i32) -> i32. It copies the app config value for key into the buffer
	// when it fits and returns its full length, or ErrNotFound.
	ImportConfigGet = "config_get"
	// ImportConfigList has the signature (buf_ptr, buf_len i32) -> i32. It
	// copies every app config entry as a field list (see AppendField) when it
	// fits and returns the list's full length.
	ImportConfigList = "config_list"
	// ImportLog has the signature (level, msg_ptr, msg_len i32). It writes
	// one message to the host log at the given level (LogDebug … LogError).
	ImportLog = "log"
	// ImportShuttingDown has the signature () -> i32. It returns 1 once the
	// server has begun graceful shutdown, and 0 before.
	ImportShuttingDown = "shutting_down"
	// ImportMetric has the signature (kind, name_ptr, name_len i32, value
	// f64) -> i32. It records value for the guest metric name (see
	// MetricCounter) and returns 0, or ErrInvalid / ErrLimit.
	ImportMetric = "metric"
	// ImportGeneration has the signature () -> i64. It returns the reload
	// generation of the instance, starting at 1.
	ImportGeneration = "generation"
)

// Guest exports.
const (
	// ExportABIVersion (required) has the signature () -> i32 and returns
	// the ABI version the guest implements.
	ExportABIVersion = "wasmserve_abi_version"
	// ExportInit (optional) has the signature () -> i32. The host calls it
	// once per instance, after ExportInitialize and before the first
	// request; a non-zero result fails the instance.
	ExportInit = "wasmserve_init"
	// ExportHandle (required) has the signature (request_len i32) -> i64.
	// The host calls it once per request. The result packs the address and
	// length of the response record: address<<32 | length, read as unsigned
	// (see UnpackResult).
	ExportHandle = "wasmserve_handle"
	// ExportMemory (required) is the guest's linear memory.
	ExportMemory = "memory"
	// ExportInitialize (optional) is the WASI reactor initialiser; the host
	// calls it once per instance before anything else.
	ExportInitialize = "_initialize"
)

// Error codes returned by host functions as negative i32 values.
const (
	ErrNotFound int32 = -1 // the config key does not exist
	ErrInvalid  int32 = -2 // an argument has a value outside its domain
	ErrLimit    int32 = -3 // a host limit refused the call
)

// Log levels for ImportLog. They match log/slog's levels.
const (
	LogDebug int32 = -4
	LogInfo  int32 = 0
	LogWarn  int32 = 4
	LogError int32 = 8
)

// Metric kinds for ImportMetric.
const (
	MetricCounter   int32 = 1 // add value (≥ 0) to a counter
	MetricGauge     int32 = 2 // set a gauge to value
	MetricHistogram int32 = 3 // observe value in a histogram
)

// Kind says which front end produced a request.
type Kind uint32

const (
	KindHTTP   Kind = 1
	KindThrift Kind = 2
)

// ThriftProtocol is the Thrift protocol of a message's bytes.
type ThriftProtocol uint32

const (
	ThriftBinary  ThriftProtocol = 1
	ThriftCompact ThriftProtocol = 2
)

// Thrift message types, as on the wire.
const (
	ThriftCall      uint32 = 1
	ThriftReply     uint32 = 2
	ThriftException uint32 = 3
	ThriftOneway    uint32 = 4
)

// PackResult packs a response address and length as ExportHandle returns
// them. For example PackResult(0x1000, 5) is 0x0000100000000005.
func PackResult(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// UnpackResult is the inverse of PackResult.
func UnpackResult(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }

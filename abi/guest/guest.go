//go:build wasip1

// Package guest is the Go SDK for wasmserve guests: it implements the guest
// side of the host ABI (see abi/ABI.md) for modules built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// A guest registers its handler from an init function (a c-shared module's
// main function never runs):
//
//	func init() { guest.Handle(guest.HandlerFunc(hello)) }
//
// The package defines the module's exports wasmserve_abi_version,
// wasmserve_handle and wasmserve_init; a module imports it exactly once.
package guest

import (
	"unsafe"

	"github.com/wasmserve/wasmserve/abi"
)

// RawHandler handles one request record of a given kind. It appends the
// response record to w (see abi.AppendResponseHeader) and returns it.
// Packages building on this one (such as the Thrift SDK) register one.
type RawHandler func(req *abi.Request, w []byte) []byte

var (
	raw     [3]RawHandler
	initFns []func() error
	reqBuf  []byte
	// curRecord is the current request record, aliasing reqBuf.
	curRecord []byte
	curReq    abi.Request
	respBuf   []byte
	inited    bool
	initFail  bool
)

// RegisterRaw sets the handler for requests of kind k, replacing any
// previous one. It must be called during package initialisation.
func RegisterRaw(k abi.Kind, h RawHandler) {
	if int(k) >= len(raw) {
		panic("guest: unknown request kind")
	}
	raw[k] = h
}

// OnInit registers fn to run once per instance when the host initialises it,
// after every package init function and before the first request. App
// config is readable there. An error fails the instance; the host logs it.
func OnInit(fn func() error) { initFns = append(initFns, fn) }

// declaredVersion, when set at link time
// (-ldflags=-X github.com/wasmserve/wasmserve/abi/guest.declaredVersion=N),
// replaces the ABI version the module declares. It exists to build
// deliberately mismatched modules for the host's tests.
var declaredVersion string

//go:wasmexport wasmserve_abi_version
func exportABIVersion() int32 {
	if declaredVersion != "" {
		n := int32(0)
		for _, c := range declaredVersion {
			n = n*10 + int32(c-'0')
		}
		return n
	}
	return abi.Version
}

//go:wasmexport wasmserve_init
func exportInit() int32 {
	if inited {
		return 0
	}
	inited = true
	for _, fn := range initFns {
		if err := fn(); err != nil {
			Error("init: " + err.Error())
			initFail = true
			return 1
		}
	}
	return 0
}

//go:wasmexport wasmserve_handle
func exportHandle(n int32) int64 {
	if cap(reqBuf) < int(n) {
		reqBuf = make([]byte, n)
	}
	b := reqBuf[:n]
	curRecord = b
	if n > 0 {
		requestRead(unsafe.Pointer(&b[0]), uint32(n))
	}
	var err error
	req := &curReq
	*req, err = abi.ParseRequest(b)
	var out []byte
	switch {
	case err != nil:
		out = plain(respBuf[:0], 500, "guest: malformed request record: "+err.Error())
	case int(req.Kind) < len(raw) && raw[req.Kind] != nil:
		out = raw[req.Kind](req, respBuf[:0])
	default:
		out = plain(respBuf[:0], 501, "guest: no handler registered for this kind of request")
	}
	respBuf = out
	if len(out) == 0 {
		return 0
	}
	return int64(abi.PackResult(uint32(uintptr(unsafe.Pointer(&out[0]))), uint32(len(out))))
}

func plain(w []byte, status uint32, msg string) []byte {
	w = abi.AppendResponseHeader(w, status, abi.AppendField(nil, "Content-Type", "text/plain; charset=utf-8"))
	return append(w, msg...)
}

// Config returns the app config value for key (a key of the [app:NAME]
// section, lower case, dots kept) and whether it exists.
func Config(key string) (string, bool) {
	var stack [256]byte
	buf := stack[:]
	for {
		n := configGet(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if n < 0 {
			return "", false
		}
		if int(n) <= len(buf) {
			return string(buf[:n]), true
		}
		buf = make([]byte, n)
	}
}

// ConfigEntry is one app config key and value.
type ConfigEntry struct{ Key, Value string }

// ConfigAll returns every app config entry in file order.
func ConfigAll() []ConfigEntry {
	buf := make([]byte, 1024)
	for {
		n := configList(unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if int(n) <= len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, n)
	}
	var out []ConfigEntry
	_ = abi.Fields(buf).Range(func(k, v []byte) bool {
		out = append(out, ConfigEntry{string(k), string(v)})
		return true
	})
	return out
}

// ShuttingDown reports whether the server has begun graceful shutdown;
// readiness health checks should fail from then on.
func ShuttingDown() bool { return shuttingDown() != 0 }

// Generation returns the reload generation serving this instance (1 for the
// module loaded at start-up).
func Generation() int64 { return hostGeneration() }

func logAt(level int32, msg string) {
	hostLog(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

// Debug, Info, Warn and Error write msg to the host log at that level,
// tagged by the host with the worker, generation and trace id.
func Debug(msg string) { logAt(abi.LogDebug, msg) }

// Info writes msg to the host log at INFO level.
func Info(msg string) { logAt(abi.LogInfo, msg) }

// Warn writes msg to the host log at WARN level.
func Warn(msg string) { logAt(abi.LogWarn, msg) }

// Error writes msg to the host log at ERROR level.
func Error(msg string) { logAt(abi.LogError, msg) }

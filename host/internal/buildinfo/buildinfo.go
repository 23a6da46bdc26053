// Package buildinfo holds the release version of the running wasmserve,
// which the command sets once at start-up (host.SetVersion), for the parts
// that report it (the admin listener's wasmserve_build_info).
package buildinfo

import (
	"runtime"
	"strconv"
	"sync/atomic"

	"github.com/wasmserve/wasmserve/abi"
)

var version atomic.Pointer[string]

// SetVersion records the release version.
func SetVersion(v string) { version.Store(&v) }

// Version returns the release version, "unknown" until SetVersion.
func Version() string {
	if v := version.Load(); v != nil {
		return *v
	}
	return "unknown"
}

// ABI is the host ABI version, as a label value.
func ABI() string { return strconv.Itoa(abi.Version) }

// Go is the Go release that built the binary.
func Go() string { return runtime.Version() }

//go:build wasip1

package outbound

import "unsafe"

//go:wasmimport wasmserve http_send
func httpSend(rec unsafe.Pointer, n uint32) int32

//go:wasmimport wasmserve thrift_send
func thriftSend(name unsafe.Pointer, nameLen uint32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport wasmserve outbound_wait
func outboundWait(h int32, timeoutMS int32) int32

//go:wasmimport wasmserve outbound_read
func outboundRead(h int32, buf unsafe.Pointer, n uint32) int32

//go:wasmimport wasmserve outbound_close
func outboundClose(h int32) int32

//go:wasmimport wasmserve outbound_error
func outboundError(buf unsafe.Pointer, n uint32) int32

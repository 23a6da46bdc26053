//go:build wasip1

package guest

import "unsafe"

//go:wasmimport wasmserve request_read
func requestRead(buf unsafe.Pointer, n uint32) int32

//go:wasmimport wasmserve config_get
func configGet(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport wasmserve config_list
func configList(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport wasmserve log
func hostLog(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport wasmserve shutting_down
func shuttingDown() int32

//go:wasmimport wasmserve metric
func hostMetric(kind int32, name unsafe.Pointer, nameLen uint32, value float64) int32

//go:wasmimport wasmserve generation
func hostGeneration() int64

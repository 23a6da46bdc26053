module github.com/wasmserve/wasmserve

go 1.26.0

require github.com/tetratelabs/wazero v1.12.0

require (
	github.com/apache/thrift v0.25.0 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/common v0.73.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/ini.v1 v1.67.3 // indirect
)

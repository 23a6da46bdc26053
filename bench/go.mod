module github.com/wasmserve/wasmserve/bench

go 1.26.0

replace github.com/wasmserve/wasmserve => ../

require (
	github.com/http-wasm/http-wasm-host-go v0.7.0
	gonum.org/v1/plot v0.17.0
)

require (
	codeberg.org/go-fonts/liberation v0.5.0 // indirect
	codeberg.org/go-latex/latex v0.2.0 // indirect
	codeberg.org/go-pdf/fpdf v0.11.1 // indirect
	git.sr.ht/~sbinet/gg v0.7.0 // indirect
	github.com/ajstarks/svgo v0.0.0-20211024235047-1546f124cd8b // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang/freetype v0.0.0-20170609003504-e2365dfdc4a0 // indirect
	github.com/tetratelabs/wazero v1.12.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/image v0.30.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.28.0 // indirect
)

require (
	github.com/apache/thrift v0.25.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/wasmserve/wasmserve v0.0.0
	go.etcd.io/bbolt v1.5.0
)

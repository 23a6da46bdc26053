package main

// The SDK files `wasmserve new` copies into a skeleton are embedded, so that
// a wasmserve binary without its source tree can still write them; when the
// source tree is found, its files are copied instead. TestSkeletonSDK checks
// that the embedded copies match the tree; refresh them with:
//
//go:generate sh -c "cp ../../guests/sdk/c/wasmserve.h skeleton/sdk/c/ && cp ../../guests/sdk/rust/src/lib.rs ../../guests/sdk/rust/Cargo.toml ../../guests/sdk/rust/wasm-rustc.sh skeleton/sdk/rust/ && cp ../../guests/sdk/assemblyscript/package.json ../../guests/sdk/assemblyscript/package-lock.json ../../guests/sdk/assemblyscript/assembly/index.ts skeleton/sdk/as/"

// sdkFile is one SDK file a skeleton gets: its path in the source tree,
// its embedded copy and where it goes in the skeleton.
type sdkFile struct{ tree, embedded, dest string }

var sdkFiles = map[string][]sdkFile{
	"c": {{"guests/sdk/c/wasmserve.h", "skeleton/sdk/c/wasmserve.h", "wasmserve.h"}},
	"rust": {
		{"guests/sdk/rust/src/lib.rs", "skeleton/sdk/rust/lib.rs", "wasmserve/src/lib.rs"},
		{"guests/sdk/rust/Cargo.toml", "skeleton/sdk/rust/Cargo.toml", "wasmserve/Cargo.toml"},
		{"guests/sdk/rust/wasm-rustc.sh", "skeleton/sdk/rust/wasm-rustc.sh", "wasmserve/wasm-rustc.sh"},
	},
	"as": {
		{"guests/sdk/assemblyscript/package.json", "skeleton/sdk/as/package.json", "sdk/package.json"},
		{"guests/sdk/assemblyscript/package-lock.json", "skeleton/sdk/as/package-lock.json", "sdk/package-lock.json"},
		{"guests/sdk/assemblyscript/assembly/index.ts", "skeleton/sdk/as/index.ts", "sdk/assembly/index.ts"},
	},
}

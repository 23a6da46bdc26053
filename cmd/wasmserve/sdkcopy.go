package main

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The SDK files `wasmserve new` copies into a skeleton are embedded, so that
// a wasmserve binary without its source tree can still write them; when the
// source tree is found, its files are copied instead. Each entry is a file
// or a directory of the tree, embedded under skeleton/sdk/LANG/DEST.
// TestSkeletonSDK checks that the embedded copies match the tree; refresh
// them with:
//
//go:generate sh -c "rm -rf skeleton/sdk && mkdir -p skeleton/sdk/c skeleton/sdk/rust/wasmserve skeleton/sdk/as/sdk && cp ../../guests/sdk/c/* skeleton/sdk/c/ && cp -r ../../guests/sdk/rust/src ../../guests/sdk/rust/Cargo.toml ../../guests/sdk/rust/wasm-rustc.sh skeleton/sdk/rust/wasmserve/ && cp -r ../../guests/sdk/assemblyscript/package.json ../../guests/sdk/assemblyscript/package-lock.json ../../guests/sdk/assemblyscript/assembly skeleton/sdk/as/sdk/"

// sdkEntry is a file or directory of the source tree (tree) and where it
// goes in the skeleton (dest).
type sdkEntry struct{ tree, dest string }

var sdkEntries = map[string][]sdkEntry{
	"c": {{"guests/sdk/c", ""}}, // wasmserve.h and the headers it may include
	"rust": {
		{"guests/sdk/rust/src", "wasmserve/src"},
		{"guests/sdk/rust/Cargo.toml", "wasmserve/Cargo.toml"},
		{"guests/sdk/rust/wasm-rustc.sh", "wasmserve/wasm-rustc.sh"},
	},
	"as": {
		{"guests/sdk/assemblyscript/package.json", "sdk/package.json"},
		{"guests/sdk/assemblyscript/package-lock.json", "sdk/package-lock.json"},
		{"guests/sdk/assemblyscript/assembly", "sdk/assembly"},
	},
}

// sdkFiles returns the SDK files of lang by skeleton path: from the source
// tree when source is not "" and has them, else the embedded copies.
func sdkFiles(lang, source string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, e := range sdkEntries[lang] {
		var fsys fs.FS
		root := path.Join("skeleton/sdk", lang, e.dest)
		fsys = skeletons
		if source != "" {
			if _, err := os.Stat(filepath.Join(source, e.tree)); err == nil {
				fsys, root = os.DirFS(source), e.tree
			}
		}
		err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			out[path.Join(e.dest, strings.TrimPrefix(strings.TrimPrefix(p, root), "/"))] = data
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

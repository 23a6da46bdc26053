package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// The SDK files `wasmserve new` copies into a skeleton come from the
// wasmserve source tree, where they are maintained; a binary that cannot
// find the tree asks for --source.

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

// sdkFiles returns the SDK files of lang by skeleton path, read from the
// source tree at source.
func sdkFiles(lang, source string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, e := range sdkEntries[lang] {
		if source == "" {
			return nil, fmt.Errorf("cannot find the wasmserve source tree for the %s SDK: pass --source DIR (a checkout of %s)", lang, modulePath)
		}
		fsys, root := os.DirFS(source), e.tree
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

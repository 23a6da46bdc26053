#!/bin/sh
# Finds a Rust compiler that can build wasmserve guests: the first of $RUSTC,
# the rustc on PATH and Debian's /usr/bin/rustc whose sysroot holds a WASI
# standard library. Prints "RUSTC TARGET" (target wasm32-wasip1, Rust 1.78 and
# later, else wasm32-wasi), or explains on stderr what to install and exits 1.
# rustup's rustc, usually first on PATH, has no WASI target until one is added.
tried=""
for rustc in ${RUSTC:-} rustc /usr/bin/rustc; do
  path=$(command -v "$rustc" 2>/dev/null) || continue
  sysroot=$("$path" --print sysroot 2>/dev/null) || continue
  for target in wasm32-wasip1 wasm32-wasi; do
    if [ -d "$sysroot/lib/rustlib/$target/lib" ]; then
      echo "$path $target"
      exit 0
    fi
  done
  tried="$tried
  $path ($("$path" --version 2>/dev/null)): no $sysroot/lib/rustlib/wasm32-wasip1 or wasm32-wasi"
done
cat >&2 <<MSG
no Rust compiler with a WebAssembly (WASI) standard library; tried:${tried:-
  (no rustc found)}
install either:
  Debian:  apt-get install rustc libstd-rust-dev-wasm32    (rustc 1.63, target wasm32-wasi, offline)
  rustup:  rustup target add wasm32-wasip1                 (Rust 1.78 or later)
or point RUSTC at a rustc that has one.
MSG
exit 1

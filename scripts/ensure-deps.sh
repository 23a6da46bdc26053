#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need when they are
# missing. As root it runs apt-get; otherwise it names what is missing and fails.
set -euo pipefail

# command-or-path:package
need=(
  clang:clang
  wasm-ld:lld
  /usr/include/wasm32-wasi/stdio.h:wasi-libc
  /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a:libclang-rt-14-dev-wasm32
  wat2wasm:wabt
  thrift:thrift-compiler
  /usr/lib/python3/dist-packages/thrift/__init__.py:python3-thrift
  start_server:libserver-starter-perl
  wrk:wrk
  /usr/bin/rustc:rustc
  /usr/lib/rustlib/wasm32-wasi/lib:libstd-rust-dev-wasm32
  /usr/bin/cargo:cargo
  npm:npm
  systemd-socket-activate:systemd
  curl:curl
  gunicorn:gunicorn
  /usr/lib/python3/dist-packages/gevent/__init__.py:python3-gevent
  redis-server:redis-server
)
missing=()
for entry in "${need[@]}"; do
  what=${entry%%:*} pkg=${entry#*:}
  if [[ $what == /* ]]; then [[ -e $what ]] && continue
  else command -v "$what" >/dev/null 2>&1 && continue; fi
  missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

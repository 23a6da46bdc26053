#!/bin/sh
# Serves the app on a private UNIX socket and checks that GET / answers 200
# with the greeting of app.ini. Run by `make test`.
set -eu
cd "$(dirname "$0")"
WASMSERVE=${WASMSERVE:-wasmserve}
tmp=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
"$WASMSERVE" check app.ini
"$WASMSERVE" --bind "unix:$tmp/app.sock" app.ini >"$tmp/log" 2>&1 &
pid=$!
i=0
until curl -s -o /dev/null --unix-socket "$tmp/app.sock" http://app/; do
  i=$((i + 1))
  if [ $i -ge 600 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "test: the app did not start:" >&2; cat "$tmp/log" >&2; exit 1
  fi
  sleep 0.1
done
body=$(curl -s -w '\n%{http_code}' --unix-socket "$tmp/app.sock" http://app/)
code=$(echo "$body" | tail -n 1)
want=$(sed -n 's/^greeting *= *//p' app.ini)
if [ "$code" != 200 ] || ! echo "$body" | grep -qF "$want"; then
  echo "test: GET / answered $code, want 200 with \"$want\":" >&2; echo "$body" >&2; exit 1
fi
echo "test: ok: GET / answered 200 with \"$want\""

;; The bench's hello and echo routes for http-wasm-host-go (the http-wasm
;; ABI): GET / writes "hello, world"; /echo copies the request body.
(module
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "set_header_value" (func $set_header (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 4)
  (data (i32.const 16) "hello, world")
  (data (i32.const 32) "Content-Type")
  (data (i32.const 48) "text/plain; charset=utf-8")
  (func (export "handle_request") (result i64)
    (local $r i64) (local $n i32)
    ;; uri at 128 (up to 64 bytes); "/echo" is 5 bytes
    (if (i32.eq (call $get_uri (i32.const 128) (i32.const 64)) (i32.const 5))
      (then
        (loop $more
          (local.set $r (call $read_body (i32.const 0) (i32.const 1024) (i32.const 65536)))
          (local.set $n (i32.wrap_i64 (local.get $r)))
          (if (local.get $n) (then (call $write_body (i32.const 1) (i32.const 1024) (local.get $n))))
          (br_if $more (i64.eqz (i64.shr_u (local.get $r) (i64.const 32)))))
        (return (i64.const 0))))
    (call $set_header (i32.const 1) (i32.const 32) (i32.const 12) (i32.const 48) (i32.const 25))
    (call $write_body (i32.const 1) (i32.const 16) (i32.const 12))
    (i64.const 0))
  (func (export "handle_response") (param i32 i32)))

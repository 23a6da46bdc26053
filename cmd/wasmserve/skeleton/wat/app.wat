;; {{.Name}}: a wasmserve app written by hand in WebAssembly text, built with
;; wabt's wat2wasm. No SDK and no WASI: two host imports and four exports are
;; the whole ABI it needs (see abi/ABI.md in the wasmserve source tree).
;;
;; Memory map:
;;   0x0000 - 0x00ff  constant strings (data segments)
;;   0x1000 - 0x1fff  the greeting read from app config
;;   0x2000 - 0x3fff  the response record
;;   0x10000          the request record, copied here by request_read
(module
  (import "wasmserve" "request_read" (func $request_read (param $buf i32) (param $len i32) (result i32)))
  (import "wasmserve" "config_get" (func $config_get (param $key i32) (param $key_len i32) (param $buf i32) (param $len i32) (result i32)))

  (memory (export "memory") 2)

  (data (i32.const 0x00) "greeting")                  ;; 8 bytes: the config key
  (data (i32.const 0x10) "hello, world\n")            ;; 13: the default greeting
  (data (i32.const 0x20) "not found\n")               ;; 10
  (data (i32.const 0x30) "Content-Type")              ;; 12
  (data (i32.const 0x40) "text/plain; charset=utf-8") ;; 25

  (global $REQ i32 (i32.const 0x10000))
  (global $RESP i32 (i32.const 0x2000))
  (global $greeting (mut i32) (i32.const 0x10))
  (global $greeting_len (mut i32) (i32.const 13))

  ;; The host refuses a module whose version differs from its own.
  (func (export "wasmserve_abi_version") (result i32)
    (i32.const 1))

  ;; Once per instance, before the first request: the greeting from app.ini.
  (func (export "wasmserve_init") (result i32)
    (local $n i32)
    (local.set $n (call $config_get (i32.const 0x00) (i32.const 8) (i32.const 0x1000) (i32.const 4095)))
    (if (i32.and (i32.ge_s (local.get $n) (i32.const 0)) (i32.lt_s (local.get $n) (i32.const 4095)))
      (then
        (i32.store8 (i32.add (i32.const 0x1000) (local.get $n)) (i32.const 10)) ;; "\n"
        (global.set $greeting (i32.const 0x1000))
        (global.set $greeting_len (i32.add (local.get $n) (i32.const 1)))))
    (i32.const 0))

  ;; Grows memory so that [0, end) is addressable; traps if max_memory forbids.
  (func $ensure (param $end i32)
    (local $have i32)
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (i32.const -1)
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
                                      (i32.const 16))))
          (then unreachable)))))

  ;; Builds the response record at $RESP — u32 status | u32 headers_len |
  ;; field list (one Content-Type entry) | body — and returns its address
  ;; << 32 | its length.
  (func $respond (param $status i32) (param $body i32) (param $n i32) (result i64)
    (i32.store (global.get $RESP) (local.get $status))
    (i32.store offset=4 (global.get $RESP) (i32.const 45))   ;; 8 + 12 + 25
    (i32.store offset=8 (global.get $RESP) (i32.const 12))
    (i32.store offset=12 (global.get $RESP) (i32.const 25))
    (memory.copy (i32.add (global.get $RESP) (i32.const 16)) (i32.const 0x30) (i32.const 12))
    (memory.copy (i32.add (global.get $RESP) (i32.const 28)) (i32.const 0x40) (i32.const 25))
    (memory.copy (i32.add (global.get $RESP) (i32.const 53)) (local.get $body) (local.get $n))
    (i64.or (i64.shl (i64.extend_i32_u (global.get $RESP)) (i64.const 32))
            (i64.extend_i32_u (i32.add (i32.const 53) (local.get $n)))))

  ;; One request: the record is request_len bytes; the path's offset and
  ;; length are the u32s at 12 and 16.
  (func (export "wasmserve_handle") (param $len i32) (result i64)
    (local $path i32)
    (call $ensure (i32.add (global.get $REQ) (local.get $len)))
    (drop (call $request_read (global.get $REQ) (local.get $len)))
    (local.set $path (i32.add (global.get $REQ) (i32.load offset=12 (global.get $REQ))))
    (if (i32.and (i32.eq (i32.load offset=16 (global.get $REQ)) (i32.const 1))
                 (i32.eq (i32.load8_u (local.get $path)) (i32.const 0x2f))) ;; "/"
      (then (return (call $respond (i32.const 200) (global.get $greeting) (global.get $greeting_len)))))
    (call $respond (i32.const 404) (i32.const 0x20) (i32.const 10)))
)

;; The bench's spinning guest: GET /?N runs a loop of N iterations, then
;; answers "hello, world"; GET / answers at once. It measures how one long
;; guest call affects the requests other workers serve.
(module
  (import "wasmserve" "request_read" (func $request_read (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $sink (mut i64) (i64.const 0))
  (data (i32.const 0x100) "\c8\00\00\00\00\00\00\00hello, world")
  (func (export "wasmserve_abi_version") (result i32) (i32.const 1))
  (func (export "wasmserve_handle") (param $len i32) (result i64)
    (local $q i32) (local $ql i32) (local $c i32) (local $n i64) (local $i i64)
    (if (i32.gt_u (local.get $len) (i32.const 0x10000)) (then (unreachable)))
    (drop (call $request_read (i32.const 0x10000) (local.get $len)))
    (local.set $q (i32.add (i32.const 0x10000) (i32.load (i32.const 0x10014))))
    (local.set $ql (i32.load (i32.const 0x10018)))
    (block $parsed
      (loop $digit
        (br_if $parsed (i32.eqz (local.get $ql)))
        (local.set $c (i32.sub (i32.load8_u (local.get $q)) (i32.const 48)))
        (if (i32.lt_u (local.get $c) (i32.const 10))
          (then (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10)) (i64.extend_i32_u (local.get $c))))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (local.set $ql (i32.sub (local.get $ql) (i32.const 1)))
        (br $digit)))
    (block $done
      (br_if $done (i64.eqz (local.get $n)))
      (loop $spin
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br_if $spin (i64.lt_u (local.get $i) (local.get $n)))))
    (global.set $sink (local.get $i))
    (i64.const 0x00000100_00000014)))

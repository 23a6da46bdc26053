;; A CPU-bound wasmserve guest: every request runs a loop of 2,000,000
;; iterations, then answers "done". It measures the per-loop cost of
;; request_timeout (wazero's close-on-context-done check).
(module
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (data (i32.const 1024) "\c8\00\00\00\00\00\00\00done")
  (func (export "wasmserve_abi_version") (result i32) i32.const 1)
  (func (export "wasmserve_handle") (param i32) (result i64)
    (local $i i32)
    (loop $l
      (global.set $sink (i32.add (global.get $sink) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 2000000))))
    i64.const 0x4000000000C))

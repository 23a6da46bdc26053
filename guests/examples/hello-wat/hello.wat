;; hello-wat: the wasmserve example app written by hand in WebAssembly text.
;; It uses no SDK and no WASI: four host imports and two exports are the whole
;; ABI a guest needs (abi/ABI.md, "Writing a guest in a new language"). It
;; answers the same conformance routes as every other example.
;;
;; Memory map:
;;   0x0000 - 0x02ff  constant strings (data segments at the end)
;;   0x0300 - 0x031f  scratch for formatting a decimal number
;;   0x0320 - 0x033f  more constant strings (the last data segments)
;;   0x0400 - 0x043f  static buffer: /isolation/secret's "global" copy
;;   0x0800 - 0x0fff  shadow stack, growing down from $sp (0x1000); call
;;                    frames of /isolation/secret's stack copy live here
;;   0x1000 - 0xffff  heap: blocks handed out by the bump pointer $heap,
;;                    never freed; it starts over at 0x1000 when full
;;   0x10000          the request record, copied here by request_read
;;   after it         the response record being built (8-aligned)
;; Memory grows on demand, so bodies of any size up to max_memory work;
;; /isolation/secret also grows it by one page to write there
;; (/isolation/secret-in-place does not).
(module
  ;; Host functions (module "wasmserve"). Pointers and lengths are i32 offsets
  ;; into this module's memory.
  (import "wasmserve" "request_read" (func $request_read (param $buf i32) (param $len i32) (result i32)))
  (import "wasmserve" "config_get" (func $config_get (param $key i32) (param $key_len i32) (param $buf i32) (param $len i32) (result i32)))
  (import "wasmserve" "log" (func $log (param $level i32) (param $msg i32) (param $len i32)))
  (import "wasmserve" "shutting_down" (func $shutting_down (result i32)))

  (memory (export "memory") 2)

  (global $REQ i32 (i32.const 0x10000))    ;; where the request record is read to
  (global $resp (mut i32) (i32.const 0))   ;; start of the response record
  (global $out (mut i32) (i32.const 0))    ;; next byte of the response record to write
  (global $body (mut i32) (i32.const 0))   ;; start of the body; 0 while headers are written
  (global $counter (mut i64) (i64.const 0));; requests to /counter on this instance
  (global $spins (mut i64) (i64.const 0))  ;; the runaway loop's counter
  (global $STATIC i32 (i32.const 0x400))   ;; the 64-byte static buffer
  (global $sp (mut i32) (i32.const 0x1000));; shadow stack pointer (grows down to 0x800)
  (global $heap (mut i32) (i32.const 0x1000)) ;; bump pointer: next free heap byte
  (global $last_block (mut i32) (i32.const 0)) ;; the last heap block, kept reachable
  (global $sink (mut i32) (i32.const 0))   ;; checksums of stack frames, discarded

  ;; The host refuses a module whose version differs from its own.
  (func (export "wasmserve_abi_version") (result i32)
    (i32.const 1)) ;; ABI_VERSION

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

  ;; Whether the n bytes at a and at b are equal.
  (func $mem_eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b)))
          (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; Whether [p, p+n) equals the constant string [s, s+sn).
  (func $eq (param $p i32) (param $n i32) (param $s i32) (param $sn i32) (result i32)
    (if (result i32) (i32.ne (local.get $n) (local.get $sn))
      (then (i32.const 0))
      (else (call $mem_eq (local.get $p) (local.get $s) (local.get $n)))))

  ;; Whether [p, p+n) starts with the constant string [s, s+sn).
  (func $prefix (param $p i32) (param $n i32) (param $s i32) (param $sn i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (local.get $sn))
      (then (i32.const 0))
      (else (call $mem_eq (local.get $p) (local.get $s) (local.get $sn)))))

  ;; Response record: u32 status | u32 headers_len | header field list | body.

  ;; Starts a response record at $at.
  (func $begin (param $at i32)
    (global.set $resp (local.get $at))
    (global.set $out (i32.add (local.get $at) (i32.const 8)))
    (global.set $body (i32.const 0))
    (call $ensure (global.get $out)))

  ;; Appends one header entry: u32 name_len | u32 value_len | name | value.
  (func $header (param $name i32) (param $nl i32) (param $value i32) (param $vl i32)
    (local $o i32)
    (local.set $o (global.get $out))
    (call $ensure (i32.add (i32.add (local.get $o) (i32.const 8)) (i32.add (local.get $nl) (local.get $vl))))
    (i32.store (local.get $o) (local.get $nl))
    (i32.store offset=4 (local.get $o) (local.get $vl))
    (memory.copy (i32.add (local.get $o) (i32.const 8)) (local.get $name) (local.get $nl))
    (memory.copy (i32.add (i32.add (local.get $o) (i32.const 8)) (local.get $nl)) (local.get $value) (local.get $vl))
    (global.set $out (i32.add (i32.add (local.get $o) (i32.const 8)) (i32.add (local.get $nl) (local.get $vl)))))

  ;; Ends the header list, storing headers_len at record offset 4, once.
  (func $end_headers
    (if (i32.eqz (global.get $body))
      (then
        (i32.store offset=4 (global.get $resp)
          (i32.sub (global.get $out) (i32.add (global.get $resp) (i32.const 8))))
        (global.set $body (global.get $out)))))

  ;; Appends [p, p+n) to the body.
  (func $write (param $p i32) (param $n i32)
    (call $end_headers)
    (call $ensure (i32.add (global.get $out) (local.get $n)))
    (memory.copy (global.get $out) (local.get $p) (local.get $n))
    (global.set $out (i32.add (global.get $out) (local.get $n))))

  ;; Appends the decimal form of v to the body.
  (func $write_u64 (param $v i64)
    (local $p i32)
    (local.set $p (i32.const 0x320)) ;; digits are written backwards from the scratch's end
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 0x30) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (call $write (local.get $p) (i32.sub (i32.const 0x320) (local.get $p))))

  ;; Appends the app config value of key [k, k+kn) to the body and returns its
  ;; length, or -1 when the key does not exist. config_get copies only when
  ;; the value fits, so the first call (with no room) just measures it.
  (func $write_config (param $k i32) (param $kn i32) (result i32)
    (local $n i32)
    (call $end_headers)
    (local.set $n (call $config_get (local.get $k) (local.get $kn) (global.get $out) (i32.const 0)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (return (i32.const -1))))
    (call $ensure (i32.add (global.get $out) (local.get $n)))
    (drop (call $config_get (local.get $k) (local.get $kn) (global.get $out) (local.get $n)))
    (global.set $out (i32.add (global.get $out) (local.get $n)))
    (local.get $n))

  ;; Stores the status and returns what wasmserve_handle returns: the
  ;; record's address << 32 | its length.
  (func $finish (param $status i32) (result i64)
    (call $end_headers)
    (i32.store (global.get $resp) (local.get $status))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $resp)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $out) (global.get $resp)))))

  ;; The decimal number [p, p+n) of at most 9 digits, else 400.
  (func $atoi (param $p i32) (param $n i32) (result i32)
    (local $v i32)
    (local $c i32)
    (if (i32.or (i32.eqz (local.get $n)) (i32.gt_u (local.get $n) (i32.const 9)))
      (then (return (i32.const 400))))
    (loop $next
      (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 0x30)))
      (if (i32.gt_u (local.get $c) (i32.const 9))
        (then (return (i32.const 400))))
      (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10)) (local.get $c)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $v))

  ;; Echoes every header whose name starts with X-Test-, walking the field
  ;; list [p, p+n): u32 name_len | u32 value_len | name | value, repeated.
  (func $echo_test_headers (param $p i32) (param $n i32)
    (local $end i32)
    (local $nl i32)
    (local $vl i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $entry
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $nl (i32.load (local.get $p)))
        (local.set $vl (i32.load offset=4 (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (if (call $prefix (local.get $p) (local.get $nl) (i32.const 0x1c0) (i32.const 7)) ;; "X-Test-"
          (then
            (call $header (local.get $p) (local.get $nl)
                          (i32.add (local.get $p) (local.get $nl)) (local.get $vl))))
        (local.set $p (i32.add (local.get $p) (i32.add (local.get $nl) (local.get $vl))))
        (br $entry))))

  ;; Isolation routes. The "mark" is the request body with every byte XORed
  ;; with 0x5A; it is only ever built by $put_mark, at the places
  ;; $secret chooses, and /isolation/scan compares on the fly.

  ;; Writes the mark of [src, src+n) to [dst, dst+n).
  (func $put_mark (param $dst i32) (param $src i32) (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $dst) (i32.xor (i32.load8_u (local.get $src)) (i32.const 0x5a)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))

  ;; Hands out a heap block of n bytes (rounded up to 8) from the bump
  ;; pointer; blocks are never freed. n is at most 64 here.
  (func $alloc (param $n i32) (result i32)
    (local $p i32)
    (local.set $n (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 0x10000))
      (then (global.set $heap (i32.const 0x1000))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  ;; Writes the mark of [src, src+n) (n <= 64) into a 64-byte buffer in its
  ;; own call frame on the shadow stack, and returns the buffer's byte sum so
  ;; the writes are used. The frame is popped but not cleared, as on a real
  ;; stack.
  (func $stack_mark (param $src i32) (param $n i32) (result i32)
    (local $frame i32)
    (local $sum i32)
    (local $k i32)
    (local.set $frame (i32.sub (global.get $sp) (i32.const 64)))
    (global.set $sp (local.get $frame))
    (call $put_mark (local.get $frame) (local.get $src) (local.get $n))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (i32.load8_u (i32.add (local.get $frame) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
    (global.set $sp (i32.add (local.get $frame) (i32.const 64)))
    (local.get $sum))

  ;; /isolation/secret: the mark of the body [src, src+n), at most 64 bytes
  ;; of it, in the static buffer, a heap block, a stack frame and, when
  ;; $grow is set, the first byte of a page grown now (skipped if the grow
  ;; fails). /isolation/secret-in-place clears $grow: memory keeps its size.
  (func $secret (param $src i32) (param $n i32) (param $grow i32)
    (local $old i32)
    (if (i32.gt_u (local.get $n) (i32.const 64))
      (then (local.set $n (i32.const 64))))
    (call $put_mark (global.get $STATIC) (local.get $src) (local.get $n))
    (global.set $last_block (call $alloc (local.get $n)))
    (call $put_mark (global.get $last_block) (local.get $src) (local.get $n))
    (global.set $sink (i32.add (global.get $sink) (call $stack_mark (local.get $src) (local.get $n))))
    (if (i32.eqz (local.get $grow))
      (then (return)))
    (local.set $old (memory.grow (i32.const 1)))
    (if (i32.ne (local.get $old) (i32.const -1))
      (then (call $put_mark (i32.shl (local.get $old) (i32.const 16)) (local.get $src) (local.get $n)))))

  ;; /isolation/scan: how many offsets i in [0, memory.size*65536 - n] hold
  ;; the mark of the body [s, s+n), XORing the body's bytes while comparing.
  ;; An empty body counts 0.
  (func $scan (param $s i32) (param $n i32) (result i64)
    (local $i i32)
    (local $last i32)
    (local $k i32)
    (local $count i64)
    (local.set $last (i32.shl (memory.size) (i32.const 16)))
    (if (i32.or (i32.eqz (local.get $n)) (i32.gt_u (local.get $n) (local.get $last)))
      (then (return (i64.const 0))))
    (local.set $last (i32.sub (local.get $last) (local.get $n)))
    (block $done
      (loop $offset
        (local.set $k (i32.const 0))
        (block $differ
          (loop $byte
            (br_if $differ
              (i32.ne (i32.load8_u (i32.add (local.get $i) (local.get $k)))
                      (i32.xor (i32.load8_u (i32.add (local.get $s) (local.get $k))) (i32.const 0x5a))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $byte (i32.lt_u (local.get $k) (local.get $n))))
          (local.set $count (i64.add (local.get $count) (i64.const 1))))
        (br_if $done (i32.ge_u (local.get $i) (local.get $last)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $offset)))
    (local.get $count))

  ;; Handles one request of request_len bytes and returns the location of the
  ;; response record. The request record is a 64-byte header of u32 fields;
  ;; (offset, length) pairs count from the record's start:
  ;;   0 kind | 4,8 method | 12,16 path | 20,24 query | 28,32 headers
  ;;   36,40 body | 44,48 remote | 52 protocol | 56 type | 60 seqid
  ;; The host builds the record, so this guest trusts its offsets.
  (func (export "wasmserve_handle") (param $len i32) (result i64)
    (local $path i32)
    (local $plen i32)
    (call $ensure (i32.add (global.get $REQ) (local.get $len)))
    (drop (call $request_read (global.get $REQ) (local.get $len)))
    (call $begin (i32.and (i32.add (i32.add (global.get $REQ) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (local.set $path (i32.add (global.get $REQ) (i32.load offset=12 (global.get $REQ))))
    (local.set $plen (i32.load offset=16 (global.get $REQ)))

    ;; / : the greeting from app config, or "hello, world"
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x2c0) (i32.const 1))
      (then
        (call $header (i32.const 0x110) (i32.const 12) (i32.const 0x120) (i32.const 25))
        (if (i32.lt_s (call $write_config (i32.const 0x1e0) (i32.const 8)) (i32.const 0))
          (then (call $write (i32.const 0x100) (i32.const 12))))
        (return (call $finish (i32.const 200)))))

    ;; /echo : method, path and query as headers, X-Test-* headers, the body
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x140) (i32.const 5))
      (then
        (call $header (i32.const 0x190) (i32.const 13)
          (i32.add (global.get $REQ) (i32.load offset=4 (global.get $REQ))) (i32.load offset=8 (global.get $REQ)))
        (call $header (i32.const 0x1a0) (i32.const 11) (local.get $path) (local.get $plen))
        (call $header (i32.const 0x1b0) (i32.const 12)
          (i32.add (global.get $REQ) (i32.load offset=20 (global.get $REQ))) (i32.load offset=24 (global.get $REQ)))
        (call $echo_test_headers
          (i32.add (global.get $REQ) (i32.load offset=28 (global.get $REQ))) (i32.load offset=32 (global.get $REQ)))
        (call $write
          (i32.add (global.get $REQ) (i32.load offset=36 (global.get $REQ))) (i32.load offset=40 (global.get $REQ)))
        (return (call $finish (i32.const 200)))))

    ;; /status/NNN : that status, empty body
    (if (call $prefix (local.get $path) (local.get $plen) (i32.const 0x148) (i32.const 8))
      (then
        (return (call $finish
          (call $atoi (i32.add (local.get $path) (i32.const 8)) (i32.sub (local.get $plen) (i32.const 8)))))))

    ;; /headers : a header with two values
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x150) (i32.const 8))
      (then
        (call $header (i32.const 0x1c8) (i32.const 7) (i32.const 0x1d0) (i32.const 3))
        (call $header (i32.const 0x1c8) (i32.const 7) (i32.const 0x1d4) (i32.const 3))
        (call $write (i32.const 0x1d8) (i32.const 7))
        (return (call $finish (i32.const 200)))))

    ;; /config/KEY : the app config value, or 404 "missing"
    (if (call $prefix (local.get $path) (local.get $plen) (i32.const 0x158) (i32.const 8))
      (then
        (if (i32.lt_s (call $write_config (i32.add (local.get $path) (i32.const 8))
                                          (i32.sub (local.get $plen) (i32.const 8)))
                      (i32.const 0))
          (then
            (call $write (i32.const 0x1e8) (i32.const 7))
            (return (call $finish (i32.const 404)))))
        (return (call $finish (i32.const 200)))))

    ;; /log : one message at each level (-4 debug, 0 info, 4 warn, 8 error)
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x160) (i32.const 4))
      (then
        (call $log (i32.const -4) (i32.const 0x220) (i32.const 17))
        (call $log (i32.const 0) (i32.const 0x240) (i32.const 16))
        (call $log (i32.const 4) (i32.const 0x260) (i32.const 16))
        (call $log (i32.const 8) (i32.const 0x280) (i32.const 17))
        (call $write (i32.const 0x200) (i32.const 6))
        (return (call $finish (i32.const 200)))))

    ;; /shutting-down : "true" once graceful shutdown has begun
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x180) (i32.const 14))
      (then
        (if (call $shutting_down)
          (then (call $write (i32.const 0x208) (i32.const 4)))
          (else (call $write (i32.const 0x20c) (i32.const 5))))
        (return (call $finish (i32.const 200)))))

    ;; /counter : this instance's request count, kept across requests
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x164) (i32.const 8))
      (then
        (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
        (call $write_u64 (global.get $counter))
        (return (call $finish (i32.const 200)))))

    ;; /panic : trap (the host answers 500 and replaces the instance)
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x16c) (i32.const 6))
      (then
        (call $log (i32.const 8) (i32.const 0x2a0) (i32.const 27))
        unreachable))

    ;; /spin : loop until request_timeout stops the call (504)
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x172) (i32.const 5))
      (then
        (loop $forever
          (global.set $spins (i64.add (global.get $spins) (i64.const 1)))
          (br $forever))))

    ;; /grow : grow memory a page at a time until max_memory refuses, then trap
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x177) (i32.const 5))
      (then
        (loop $more
          (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))

    ;; /isolation/secret : the body's mark in four places, "stored"
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x2d0) (i32.const 17))
      (then
        (call $secret
          (i32.add (global.get $REQ) (i32.load offset=36 (global.get $REQ))) (i32.load offset=40 (global.get $REQ))
          (i32.const 1))
        (call $write (i32.const 0x2f8) (i32.const 6))
        (return (call $finish (i32.const 200)))))

    ;; /isolation/secret-in-place : the same without growing memory: the
    ;; mark in the static buffer, a heap block and a stack frame, "stored"
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x320) (i32.const 26))
      (then
        (call $secret
          (i32.add (global.get $REQ) (i32.load offset=36 (global.get $REQ))) (i32.load offset=40 (global.get $REQ))
          (i32.const 0))
        (call $write (i32.const 0x2f8) (i32.const 6))
        (return (call $finish (i32.const 200)))))

    ;; /isolation/scan : how many copies of the body's mark memory holds
    (if (call $eq (local.get $path) (local.get $plen) (i32.const 0x2e8) (i32.const 15))
      (then
        (call $write_u64 (call $scan
          (i32.add (global.get $REQ) (i32.load offset=36 (global.get $REQ))) (i32.load offset=40 (global.get $REQ))))
        (return (call $finish (i32.const 200)))))

    ;; anything else
    (call $write (i32.const 0x1f0) (i32.const 9))
    (call $finish (i32.const 404)))

  ;; Constant strings: address, then contents (length in the comment).
  (data (i32.const 0x100) "hello, world")              ;; 12
  (data (i32.const 0x110) "Content-Type")              ;; 12
  (data (i32.const 0x120) "text/plain; charset=utf-8") ;; 25
  (data (i32.const 0x140) "/echo")                     ;; 5
  (data (i32.const 0x148) "/status/")                  ;; 8
  (data (i32.const 0x150) "/headers")                  ;; 8
  (data (i32.const 0x158) "/config/")                  ;; 8
  (data (i32.const 0x160) "/log")                      ;; 4
  (data (i32.const 0x164) "/counter")                  ;; 8
  (data (i32.const 0x16c) "/panic")                    ;; 6
  (data (i32.const 0x172) "/spin")                     ;; 5
  (data (i32.const 0x177) "/grow")                     ;; 5
  (data (i32.const 0x180) "/shutting-down")            ;; 14
  (data (i32.const 0x190) "X-Echo-Method")             ;; 13
  (data (i32.const 0x1a0) "X-Echo-Path")               ;; 11
  (data (i32.const 0x1b0) "X-Echo-Query")              ;; 12
  (data (i32.const 0x1c0) "X-Test-")                   ;; 7
  (data (i32.const 0x1c8) "X-Multi")                   ;; 7
  (data (i32.const 0x1d0) "one")                       ;; 3
  (data (i32.const 0x1d4) "two")                       ;; 3
  (data (i32.const 0x1d8) "headers")                   ;; 7
  (data (i32.const 0x1e0) "greeting")                  ;; 8
  (data (i32.const 0x1e8) "missing")                   ;; 7
  (data (i32.const 0x1f0) "not found")                 ;; 9
  (data (i32.const 0x200) "logged")                    ;; 6
  (data (i32.const 0x208) "true")                      ;; 4
  (data (i32.const 0x20c) "false")                     ;; 5
  (data (i32.const 0x220) "conformance debug")         ;; 17
  (data (i32.const 0x240) "conformance info")          ;; 16
  (data (i32.const 0x260) "conformance warn")          ;; 16
  (data (i32.const 0x280) "conformance error")         ;; 17
  (data (i32.const 0x2a0) "hello-wat: /panic requested") ;; 27
  (data (i32.const 0x2c0) "/")                         ;; 1
  (data (i32.const 0x2d0) "/isolation/secret")         ;; 17
  (data (i32.const 0x2e8) "/isolation/scan")           ;; 15
  (data (i32.const 0x2f8) "stored")                    ;; 6
  (data (i32.const 0x320) "/isolation/secret-in-place")) ;; 26

;; A list worker: writes one line to stdout,
;; "<REDIS_LIST> <REDIS_DELIVERY> <payload>\n", then acts on the payload's
;; first byte:
;;   'p' (poison): always fails, proc_exit(1);
;;   'f' (flaky):  fails on its first delivery (REDIS_DELIVERY = "1"), then
;;                 succeeds;
;;   's' (slow):   sleeps 2 s (poll_oneoff on the monotonic clock), succeeds;
;;   'w' (work):   sleeps one millisecond per payload byte, succeeds;
;;   anything else succeeds.
;; A variable that is not set is written as "-".
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 3)
  ;; 100: "REDIS_LIST=" (11), 120: "REDIS_DELIVERY=" (15), 140: " ",
  ;; 141: "\n", 142: "-"
  (data (i32.const 100) "REDIS_LIST=")
  (data (i32.const 120) "REDIS_DELIVERY=")
  (data (i32.const 140) " \n-")
  ;; Layout: 200 environ sizes; 1024 environ pointers (256 at most);
  ;; 2048 environ strings (16 KiB at most); 20480 the payload (up to
  ;; 64 KiB); 86016 the line (its length at 92), 0 its iovec, 96 the bytes
  ;; written; 512 the clock subscription, 600 its event, 640 the number of
  ;; events.

  ;; The length of the NUL-terminated string at $p.
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end (loop $more
      (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (local.get $n))

  ;; Whether the $len bytes at $a and $b are equal.
  (func $equal (param $a i32) (param $b i32) (param $len i32) (result i32)
    (local $i i32)
    (block $no (loop $more
      (if (i32.ge_u (local.get $i) (local.get $len)) (then (return (i32.const 1))))
      (br_if $no (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                         (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (i32.const 0))

  ;; The value of the variable whose "NAME=" is the $len bytes at $name, or
  ;; 0 when it is not set.
  (func $getenv (param $name i32) (param $len i32) (result i32)
    (local $i i32) (local $entry i32)
    (block $none (loop $each
      (br_if $none (i32.ge_u (local.get $i) (i32.load (i32.const 200))))
      (local.set $entry (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 4)))))
      (if (call $equal (local.get $entry) (local.get $name) (local.get $len))
        (then (return (i32.add (local.get $entry) (local.get $len)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (i32.const 0))

  ;; Appends the $len bytes at $from to the line at 86016 (its length at 92).
  (func $put (param $from i32) (param $len i32)
    (local $i i32) (local $at i32)
    (local.set $at (i32.add (i32.const 86016) (i32.load (i32.const 92))))
    (block $end (loop $more
      (br_if $end (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (local.get $at) (local.get $i))
                  (i32.load8_u (i32.add (local.get $from) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (i32.store (i32.const 92) (i32.add (i32.load (i32.const 92)) (local.get $len))))

  ;; Appends the variable value $p (NUL-terminated), or "-" for 0.
  (func $put_var (param $p i32)
    (if (i32.eqz (local.get $p))
      (then (call $put (i32.const 142) (i32.const 1)))
      (else (call $put (local.get $p) (call $strlen (local.get $p))))))

  (func (export "_start")
    (local $total i32) (local $n i32) (local $list i32) (local $delivery i32) (local $first i32)
    (drop (call $sizes (i32.const 200) (i32.const 204)))
    (drop (call $environ (i32.const 1024) (i32.const 2048)))
    (local.set $list (call $getenv (i32.const 100) (i32.const 11)))
    (local.set $delivery (call $getenv (i32.const 120) (i32.const 15)))
    ;; the payload
    (loop $more
      (i32.store (i32.const 80) (i32.add (i32.const 20480) (local.get $total)))
      (i32.store (i32.const 84) (i32.sub (i32.const 65535) (local.get $total)))
      (drop (call $fd_read (i32.const 0) (i32.const 80) (i32.const 1) (i32.const 88)))
      (local.set $n (i32.load (i32.const 88)))
      (local.set $total (i32.add (local.get $total) (local.get $n)))
      (br_if $more (i32.gt_u (local.get $n) (i32.const 0))))
    ;; the line, built at 86016 and written at once
    (call $put_var (local.get $list))
    (call $put (i32.const 140) (i32.const 1))
    (call $put_var (local.get $delivery))
    (call $put (i32.const 140) (i32.const 1))
    (call $put (i32.const 20480) (local.get $total))
    (call $put (i32.const 141) (i32.const 1))
    (i32.store (i32.const 0) (i32.const 86016))
    (i32.store (i32.const 4) (i32.load (i32.const 92)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 96)))
    (local.set $first (if (result i32) (local.get $total)
      (then (i32.load8_u (i32.const 20480)))
      (else (i32.const 0))))
    ;; 'p': poison
    (if (i32.eq (local.get $first) (i32.const 112))
      (then (call $proc_exit (i32.const 1))))
    ;; 'f': flaky, fails while REDIS_DELIVERY is "1"
    (if (i32.and
          (i32.eq (local.get $first) (i32.const 102))
          (i32.and
            (i32.ne (local.get $delivery) (i32.const 0))
            (i32.eq (call $strlen (local.get $delivery)) (i32.const 1))))
      (then
        (if (i32.eq (i32.load8_u (local.get $delivery)) (i32.const 49))
          (then (call $proc_exit (i32.const 1))))))
    ;; 's': slow, 2 s
    (if (i32.eq (local.get $first) (i32.const 115))
      (then (call $sleep (i64.const 2000000000))))
    ;; 'w': work, 1 ms per byte
    (if (i32.eq (local.get $first) (i32.const 119))
      (then (call $sleep (i64.mul (i64.extend_i32_u (local.get $total)) (i64.const 1000000))))))

  ;; Waits $ns nanoseconds: one relative clock subscription at 512.
  (func $sleep (param $ns i64)
    (i32.store (i32.const 528) (i32.const 1))   ;; clock id: monotonic
    (i64.store (i32.const 536) (local.get $ns)) ;; timeout
    (drop (call $poll_oneoff (i32.const 512) (i32.const 600) (i32.const 1) (i32.const 640)))))

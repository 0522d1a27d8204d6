;; The payload-size rows' handler: reads stdin to its end through one
;; 32 KiB buffer (so any payload size fits its one page of memory) and
;; writes "ok\n" once; exits 0.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "ok\n")
  (func (export "_start")
    (local $n i32)
    (loop $more
      ;; iovec at 80: the buffer at 1024, 32 KiB
      (i32.store (i32.const 80) (i32.const 1024))
      (i32.store (i32.const 84) (i32.const 32768))
      (drop (call $fd_read (i32.const 0) (i32.const 80) (i32.const 1) (i32.const 88)))
      (local.set $n (i32.load (i32.const 88)))
      (br_if $more (i32.gt_u (local.get $n) (i32.const 0))))
    ;; "ok\n" through an iovec at 64
    (i32.store (i32.const 64) (i32.const 100))
    (i32.store (i32.const 68) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))))

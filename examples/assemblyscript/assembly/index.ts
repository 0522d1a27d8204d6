// as-wc: a compat (wagi) handler for spin-redis, written in AssemblyScript.
//
// Like `wc`, it counts the lines (newline bytes), words (runs of bytes that are
// not ASCII whitespace) and bytes of the Redis message payload it reads from
// stdin, and prints them with the channel name:
//
//     <REDIS_CHANNEL>: <n> line(s), <n> word(s), <n> byte(s)
//
// The counts are over bytes, so any payload, UTF-8 or not, gives deterministic
// output. A payload holding a NUL byte is taken for binary data and refused.
//
// Exit codes: 0 counted (also an empty payload), 1 stdin could not be read,
// 3 the payload holds a NUL byte.
//
// Built with @assemblyscript/wasi-shim: this top-level code runs in `_start`.

function envOr(name: string, fallback: string): string {
  return process.env.has(name) ? process.env.get(name) : fallback;
}

function plural(n: i32, word: string): string {
  return n.toString() + " " + word + (n == 1 ? "" : "s");
}

// fd_read is called directly (not through process.stdin.read, which throws on
// an error, and AssemblyScript cannot catch exceptions) so that a read error
// becomes exit code 1 instead of an abort.
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;

// iovec { buf, buf_len } followed by the nread out value.
const scratch = memory.data(3 * sizeof<usize>());

// Reads stdin to end of file; returns null on a read error (its errno in readErrno).
let readErrno: u16 = 0;
function readAll(): Uint8Array | null {
  let buf = new ArrayBuffer(4096);
  let len = 0;
  while (true) {
    if (len == buf.byteLength) {
      const bigger = new ArrayBuffer(buf.byteLength * 2);
      memory.copy(changetype<usize>(bigger), changetype<usize>(buf), <usize>len);
      buf = bigger;
    }
    store<usize>(scratch, changetype<usize>(buf) + <usize>len);
    store<usize>(scratch, <usize>(buf.byteLength - len), sizeof<usize>());
    readErrno = fd_read(0, scratch, 1, scratch + 2 * sizeof<usize>());
    if (readErrno != 0) return null;
    const n = <i32>load<usize>(scratch, 2 * sizeof<usize>());
    if (n == 0) break;
    len += n;
  }
  return Uint8Array.wrap(buf, 0, len);
}

function isSpace(b: u8): bool {
  // ' ', \t, \n, \v, \f, \r: C's isspace() in the "C" locale.
  return b == 0x20 || (b >= 0x09 && b <= 0x0d);
}

const me = process.argv.length > 0 && process.argv[0].length > 0 ? process.argv[0] : "as-wc";
const channel = envOr("REDIS_CHANNEL", "(unknown channel)");

const read = readAll();
if (read == null) {
  process.stderr.write(
    me + ": cannot read the payload from stdin (WASI errno " + readErrno.toString() + ")\n",
  );
  process.exit(1);
}
const payload = read!;

let lines = 0;
let words = 0;
let inWord = false;
let nulAt = -1;
for (let i = 0; i < payload.length; i++) {
  const b = unchecked(payload[i]);
  if (b == 0 && nulAt < 0) nulAt = i;
  if (b == 0x0a) lines++;
  if (isSpace(b)) {
    inWord = false;
  } else if (!inWord) {
    inWord = true;
    words++;
  }
}

if (nulAt >= 0) {
  process.stderr.write(
    me + ": the payload on " + channel + " has a NUL byte at offset " + nulAt.toString() +
    ": binary data is not counted\n",
  );
  process.exit(3);
}

process.stdout.write(
  channel + ": " + plural(lines, "line") + ", " + plural(words, "word") + ", " +
  plural(payload.length, "byte") + "\n",
);

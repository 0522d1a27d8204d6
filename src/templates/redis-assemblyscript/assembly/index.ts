// A Redis message handler for spin-redis, written in AssemblyScript.
//
// spin-redis runs it under its wagi executor: for every message published on
// the channel it starts the module afresh with the payload on stdin and
// REDIS_CHANNEL in the environment, and writes its stdout to the component's
// log and the terminal. A non-zero exit status fails the message.
//
// Built with @assemblyscript/wasi-shim: this top-level code runs in `_start`.

// Reads stdin to its end: one `read` returns one read's worth.
function readAll(): ArrayBuffer {
  let buf = new ArrayBuffer(4096);
  let len = 0;
  while (true) {
    if (len == buf.byteLength) {
      const bigger = new ArrayBuffer(buf.byteLength * 2);
      memory.copy(changetype<usize>(bigger), changetype<usize>(buf), <usize>len);
      buf = bigger;
    }
    const n = process.stdin.read(buf, len);
    if (n == 0) break;
    len += n;
  }
  return buf.slice(0, len);
}

const channel = process.env.has("REDIS_CHANNEL") ? process.env.get("REDIS_CHANNEL") : "(unknown channel)";
const payload = readAll();
process.stdout.write("message on " + channel + ": ");
process.stdout.write(payload);
process.stdout.write("\n");

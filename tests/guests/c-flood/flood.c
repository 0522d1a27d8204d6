/*
 * c-flood: an adversarial compat (wagi) handler for spin-redis's tests.
 *
 * Writes stdout in 64 KiB chunks forever, straight through write(2) (WASI's
 * fd_write), so only the deadline stops it and only the output cap keeps the
 * host's memory bounded. It never reads its payload.
 */
#include <string.h>
#include <unistd.h>

static char chunk[64 * 1024];

int main(void) {
    memset(chunk, 'f', sizeof chunk);
    chunk[sizeof chunk - 1] = '\n';
    for (;;) {
        size_t off = 0;
        while (off < sizeof chunk) {
            ssize_t n = write(1, chunk + off, sizeof chunk - off);
            if (n <= 0) {
                /* The host never fails a write because of the cap: a failure
                 * here is reported and the module ends with an error. */
                static const char msg[] = "c-flood: write to stdout failed\n";
                write(2, msg, sizeof msg - 1);
                return 3;
            }
            off += (size_t)n;
        }
    }
}

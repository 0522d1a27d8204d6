/*
 * c-sleep: an adversarial compat (wagi) handler for spin-redis's tests.
 *
 * Reads the whole payload from stdin, prints "sleeping on <payload>\n" to
 * stdout and flushes it, then sleeps for an hour in a host call (sleep(3) is
 * WASI's poll_oneoff on a clock), which only a deadline that holds against
 * blocking host calls can stop. The payload "quick" exits 0 right after the
 * line instead.
 *
 * Exit codes: 0 "quick" (or, should the sleep ever end, after it); 2 stdin
 * could not be read or memory ran out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fputs("c-sleep: out of memory\n", stderr);
        return 2;
    }
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap);
            if (!bigger) {
                fputs("c-sleep: out of memory\n", stderr);
                return 2;
            }
            buf = bigger;
        }
        size_t n = fread(buf + len, 1, cap - len, stdin);
        len += n;
        if (n == 0) {
            if (ferror(stdin)) {
                fputs("c-sleep: cannot read the payload from stdin\n", stderr);
                return 2;
            }
            break;
        }
    }

    fputs("sleeping on ", stdout);
    fwrite(buf, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);

    if (len == 5 && memcmp(buf, "quick", 5) == 0) {
        return 0;
    }
    sleep(3600);
    return 0;
}

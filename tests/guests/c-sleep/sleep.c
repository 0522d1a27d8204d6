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

/* The payload loop of the C example, shared rather than copied. */
#include "../../../examples/c/payload.h"

int main(void) {
    size_t len;
    unsigned char *buf = read_payload("c-sleep", &len);
    if (!buf) {
        return 2;
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

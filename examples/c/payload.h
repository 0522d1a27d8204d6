/*
 * read_payload: reads the whole Redis message payload from stdin, as the
 * wagi executor hands it to a handler. Shared by shout.c and the test guest
 * tests/guests/c-sleep, so that the loop is written once.
 *
 * Returns a malloc'd buffer holding *len bytes (not NUL-terminated), or NULL
 * after printing "<me>: <why>" to stderr when memory ran out or stdin could
 * not be read.
 */
#ifndef SPIN_REDIS_PAYLOAD_H
#define SPIN_REDIS_PAYLOAD_H

#include <stdio.h>
#include <stdlib.h>

static unsigned char *read_payload(const char *me, size_t *len) {
    size_t cap = 4096;
    unsigned char *buf = malloc(cap);
    *len = 0;
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", me);
        return NULL;
    }
    for (;;) {
        if (*len == cap) {
            cap *= 2;
            unsigned char *bigger = realloc(buf, cap);
            if (!bigger) {
                fprintf(stderr, "%s: out of memory after %zu bytes\n", me, *len);
                free(buf);
                return NULL;
            }
            buf = bigger;
        }
        size_t n = fread(buf + *len, 1, cap - *len, stdin);
        *len += n;
        if (n == 0) {
            if (ferror(stdin)) {
                fprintf(stderr, "%s: cannot read the payload from stdin\n", me);
                free(buf);
                return NULL;
            }
            return buf;
        }
    }
}

#endif

/*
 * c-shout: a compat (wagi) handler for spin-redis, written in C.
 *
 * Reads the Redis message payload from stdin, upper-cases it and prints
 *
 *     [<REDIS_CHANNEL>] <UPPERCASED PAYLOAD>
 *     content-length: <CONTENT_LENGTH>
 *
 * Bytes that are not printable ASCII are written as \xNN (and a backslash as
 * \\), so binary payloads give deterministic, single-line output.
 *
 * Exit codes: 0 ok, 1 empty payload, 2 stdin could not be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

int main(int argc, char **argv) {
    const char *me = argc > 0 ? argv[0] : "c-shout";
    const char *channel = env_or("REDIS_CHANNEL", "(unknown channel)");
    const char *content_length = env_or("CONTENT_LENGTH", "(unset)");

    size_t len;
    unsigned char *buf = read_payload(me, &len);
    if (!buf) {
        return 2;
    }

    if (len == 0) {
        fprintf(stderr, "%s: empty message on [%s], nothing to shout\n", me, channel);
        return 1;
    }

    printf("[%s] ", channel);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (c == '\\') {
            fputs("\\\\", stdout);
        } else if (c >= 0x20 && c < 0x7f) {
            putchar(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        } else {
            printf("\\x%02x", c);
        }
    }
    putchar('\n');
    printf("content-length: %s\n", content_length);

    char *end = NULL;
    unsigned long long declared = strtoull(content_length, &end, 10);
    if (end == content_length || *end != '\0' || declared != (unsigned long long)len) {
        fprintf(stderr, "%s: note: CONTENT_LENGTH is %s but %zu bytes were read\n",
                me, content_length, len);
    }
    free(buf);
    return 0;
}

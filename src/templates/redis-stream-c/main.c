/*
 * A Redis Stream handler for spin-redis, written in C.
 *
 * spin-redis reads the stream through a consumer group and runs this module
 * afresh for every entry, with the entry's `payload` field on stdin and
 * REDIS_STREAM, REDIS_MESSAGE_ID (the entry id) and REDIS_DELIVERY (1 on the
 * first attempt) in the environment. Exit 0 acknowledges the entry; any other
 * exit status has it delivered again later, until max_deliveries, after which
 * it goes to the dead-letter stream. Its stdout goes to the component's log
 * and the terminal.
 */
#include <stdio.h>
#include <stdlib.h>

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

int main(void) {
    printf("entry %s of %s (delivery %s): ", env_or("REDIS_MESSAGE_ID", "?"),
           env_or("REDIS_STREAM", "?"), env_or("REDIS_DELIVERY", "?"));
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, n, stdout);
    }
    if (ferror(stdin)) {
        fprintf(stderr, "cannot read the entry\n");
        return 1;
    }
    putchar('\n');
    return 0;
}

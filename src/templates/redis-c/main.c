/*
 * A Redis message handler for spin-redis, written in C.
 *
 * spin-redis runs it under its wagi executor: for every message published on
 * the channel it starts the module afresh with the payload on stdin and
 * REDIS_CHANNEL in the environment, and writes its stdout to the component's
 * log and the terminal. A non-zero exit status fails the message.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *channel = getenv("REDIS_CHANNEL");
    printf("message on %s: ", channel ? channel : "(unknown channel)");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, n, stdout);
    }
    if (ferror(stdin)) {
        fprintf(stderr, "cannot read the message\n");
        return 1;
    }
    putchar('\n');
    return 0;
}

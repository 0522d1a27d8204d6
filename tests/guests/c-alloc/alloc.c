/*
 * c-alloc: an adversarial compat (wagi) handler for spin-redis's tests.
 *
 * Allocates 1 MiB blocks with malloc forever and touches every byte of each
 * (memset), so linear memory really grows (memory.grow through wasi-libc's
 * sbrk) until the host's memory cap stops it. The blocks are kept on a list
 * reachable from a volatile global so the compiler cannot drop the
 * allocations. It never reads its payload.
 *
 * Should malloc ever return NULL (a host that refuses the growth instead of
 * trapping), it says so on stderr and exits 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (1024 * 1024)

struct block {
    struct block *next;
};

static struct block *volatile head;
static volatile unsigned long mib;

int main(void) {
    for (;;) {
        struct block *b = malloc(BLOCK);
        if (!b) {
            fprintf(stderr, "c-alloc: malloc returned NULL after %lu MiB\n", mib);
            return 3;
        }
        memset(b, 0xa5, BLOCK);
        b->next = head;
        head = b;
        mib = mib + 1;
    }
}

/* runtime/alloc.c — 64-byte aligned allocation and overflow-checked size arithmetic. */
#include "config.h"
#include "lowbit/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *lb_alloc(size_t bytes)
{
    /* aligned_alloc requires a size that is a multiple of the alignment. */
    size_t rounded;
    if (bytes == 0) bytes = 1;
    if (!lb_add_size(bytes, LB_ALIGNMENT - 1, &rounded)) return NULL;
    rounded &= ~(size_t)(LB_ALIGNMENT - 1);
    return aligned_alloc(LB_ALIGNMENT, rounded);
}

void *lb_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (!lb_mul_size(count, size, &bytes)) return NULL;
    void *p = lb_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void lb_free(void *p) { free(p); }

bool lb_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool lb_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

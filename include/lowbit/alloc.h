/* lowbit/alloc.h — 64-byte aligned allocation and overflow-checked sizes. */
#ifndef LOWBIT_ALLOC_H
#define LOWBIT_ALLOC_H

#include <stddef.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_ALIGNMENT 64

/* Returns a LB_ALIGNMENT-aligned block of at least `bytes` bytes (a zero-size
 * request returns a valid, freeable block), or NULL when out of memory. */
void *lb_alloc(size_t bytes);

/* Like lb_alloc, zero-filled. */
void *lb_calloc(size_t count, size_t size);

/* Frees a block from lb_alloc/lb_calloc. lb_free(NULL) is a no-op. */
void lb_free(void *p);

/* *out = a * b; returns false (and leaves *out unspecified) on overflow. */
bool lb_mul_size(size_t a, size_t b, size_t *out);

/* *out = a + b; returns false on overflow. */
bool lb_add_size(size_t a, size_t b, size_t *out);

#ifdef __cplusplus
}
#endif
#endif

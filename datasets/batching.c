/* datasets/batching.c — deterministic shuffling and mini-batching.
 *
 * The order of epoch e is a pure function of (seed, e, n): Fisher-Yates
 * driven by the counter-based RNG at stream lb_rng_stream("shuffle", e),
 * index i for the swap that fills slot i. A batcher therefore needs no RNG
 * state: its whole state is the cursor {epoch, position}, which a
 * checkpoint stores so that a resumed run sees the same batches.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/alloc.h"
#include "lowbit/rng.h"

#include <stdlib.h>

lb_status lb_shuffle_permutation(lb_ctx *ctx, uint64_t seed, uint64_t epoch, size_t n,
                                 int64_t *perm)
{
    if (n && !perm) return lb_error(ctx, LB_ERR_ARG, "lb_shuffle_permutation: NULL perm");
    for (size_t i = 0; i < n; i++) perm[i] = (int64_t)i;
    const uint64_t stream = lb_rng_stream("shuffle", epoch);
    for (size_t i = n; i-- > 1;) {
        double u = lb_rng_uniform_f64(seed, stream, i); // [0, 1), 53 bits
        size_t j = (size_t)(u * (double)(i + 1));
        if (j > i) j = i; /* cannot happen for u < 1 and i < 2^53; kept as a guard */
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return LB_OK;
}

struct lb_batcher {
    lb_batcher_config config;
    lb_data_cursor cursor;
    int64_t *order;        /* (count) the order of order_epoch */
    uint64_t order_epoch;
    bool order_valid;
};

lb_status lb_batcher_create(lb_ctx *ctx, const lb_batcher_config *config, lb_batcher **out)
{
    if (!config || !out) return lb_error(ctx, LB_ERR_ARG, "lb_batcher_create: NULL argument");
    *out = NULL;
    if (config->count < 1 || config->batch_size < 1)
        return lb_error(ctx, LB_ERR_ARG, "lb_batcher_create: need count >= 1 and batch_size >= 1");
    if (config->drop_last && config->batch_size > config->count)
        return lb_error(ctx, LB_ERR_ARG,
                        "lb_batcher_create: batch_size %zu > count %zu with drop_last gives no "
                        "batch",
                        config->batch_size, config->count);
    size_t bytes;
    if (!lb_mul_size(config->count, sizeof(int64_t), &bytes))
        return lb_error(ctx, LB_ERR_NOMEM, "lb_batcher_create: count too large");
    lb_batcher *b = calloc(1, sizeof *b);
    if (!b) return lb_error(ctx, LB_ERR_NOMEM, "lb_batcher_create: out of memory");
    b->order = lb_alloc(bytes);
    if (!b->order) {
        free(b);
        return lb_error(ctx, LB_ERR_NOMEM, "lb_batcher_create: out of memory");
    }
    b->config = *config;
    *out = b;
    return LB_OK;
}

void lb_batcher_free(lb_batcher *b)
{
    if (!b) return;
    lb_free(b->order);
    free(b);
}

/* Examples used per epoch: all of them, or whole batches only. */
static size_t epoch_length(const lb_batcher *b)
{
    size_t n = b->config.count;
    if (b->config.drop_last) n -= n % b->config.batch_size;
    return n;
}

size_t lb_batcher_batches_per_epoch(const lb_batcher *b)
{
    size_t bs = b->config.batch_size;
    return (epoch_length(b) + bs - 1) / bs;
}

lb_data_cursor lb_batcher_cursor(const lb_batcher *b)
{
    return b->cursor;
}

lb_status lb_batcher_seek(lb_ctx *ctx, lb_batcher *b, lb_data_cursor cursor)
{
    if (!b) return lb_error(ctx, LB_ERR_ARG, "lb_batcher_seek: NULL batcher");
    if (cursor.position > b->config.count)
        return lb_error(ctx, LB_ERR_ARG, "lb_batcher_seek: position %llu > count %zu",
                        (unsigned long long)cursor.position, b->config.count);
    b->cursor = cursor;
    return LB_OK;
}

lb_status lb_batcher_next(lb_ctx *ctx, lb_batcher *b, int64_t *indices, size_t *taken,
                          lb_data_cursor *at)
{
    if (!b || !indices || !taken) return lb_error(ctx, LB_ERR_ARG, "lb_batcher_next: NULL argument");
    const size_t len = epoch_length(b);
    if (b->cursor.position >= len) {
        b->cursor.epoch++;
        b->cursor.position = 0;
    }
    if (!b->order_valid || b->order_epoch != b->cursor.epoch) {
        if (b->config.shuffle) {
            lb_status st = lb_shuffle_permutation(ctx, b->config.seed, b->cursor.epoch,
                                                  b->config.count, b->order);
            if (st != LB_OK) return st;
        } else {
            for (size_t i = 0; i < b->config.count; i++) b->order[i] = (int64_t)i;
        }
        b->order_epoch = b->cursor.epoch;
        b->order_valid = true;
    }
    size_t pos = (size_t)b->cursor.position;
    size_t k = len - pos < b->config.batch_size ? len - pos : b->config.batch_size;
    for (size_t i = 0; i < k; i++) indices[i] = b->order[pos + i];
    if (at) *at = b->cursor;
    b->cursor.position += k;
    *taken = k;
    return LB_OK;
}

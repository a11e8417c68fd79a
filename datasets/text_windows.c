/* datasets/text_windows.c — language-model windows over a byte string.
 *
 * Training: batch row b of step s starts at
 *   floor(lb_rng_uniform_f64(seed, lb_rng_stream("text-window", s), b) * (len - T))
 * so the sample depends only on (seed, step, row): a resumed run that
 * restarts at step s draws exactly the windows of an uninterrupted one, on
 * any thread count. Evaluation: consecutive non-overlapping windows.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/rng.h"

lb_status lb_text_sample_windows(lb_ctx *ctx, const uint8_t *data, size_t len, size_t T,
                                 uint64_t seed, uint64_t step, size_t batch, int32_t *tokens,
                                 uint64_t *starts)
{
    if (!data || (batch && !tokens))
        return lb_error(ctx, LB_ERR_ARG, "lb_text_sample_windows: NULL argument");
    if (T == 0 || len < T + 1)
        return lb_error(ctx, LB_ERR_ARG,
                        "text of %zu bytes is too short for windows of %zu + 1 bytes", len, T);
    const uint64_t stream = lb_rng_stream("text-window", step);
    const size_t num_starts = len - T; /* valid starts 0 .. len - T - 1 */
    for (size_t b = 0; b < batch; b++) {
        double u = lb_rng_uniform_f64(seed, stream, b);
        size_t start = (size_t)(u * (double)num_starts);
        if (start >= num_starts) start = num_starts - 1;
        int32_t *row = tokens + b * (T + 1); // (T + 1)
        for (size_t t = 0; t <= T; t++) row[t] = data[start + t];
        if (starts) starts[b] = start;
    }
    return LB_OK;
}

size_t lb_text_num_eval_windows(size_t len, size_t T)
{
    if (T == 0 || len < 1) return 0;
    return (len - 1) / T;
}

lb_status lb_text_eval_windows(lb_ctx *ctx, const uint8_t *data, size_t len, size_t T,
                               size_t first, size_t batch, int32_t *tokens, size_t *taken)
{
    if (!taken || (batch && (!data || !tokens)))
        return lb_error(ctx, LB_ERR_ARG, "lb_text_eval_windows: NULL argument");
    if (T == 0) return lb_error(ctx, LB_ERR_ARG, "lb_text_eval_windows: T must be >= 1");
    size_t total = lb_text_num_eval_windows(len, T);
    size_t k = 0;
    size_t avail = first < total ? total - first : 0;
    for (; k < batch && k < avail; k++) {
        const uint8_t *src = data + (first + k) * T;
        int32_t *row = tokens + k * (T + 1); // (T + 1)
        for (size_t t = 0; t <= T; t++) row[t] = src[t];
    }
    *taken = k;
    return LB_OK;
}

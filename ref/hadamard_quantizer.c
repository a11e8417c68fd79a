/* ref/hadamard_quantizer.c — HQ: block Walsh–Hadamard transform followed by
 * per-tensor LSQ int4 quantization, and the search of the block size that
 * minimises the product of the two fake-quantization errors.
 *
 * Spec: int4_training.md §2 A.2 (HQ-MM forward: A = XH, X̂ = LSQ(A); the
 * "dynamic" block search over 1..1024 on the first batch) and §4.1; Xi et al.
 * 2023 §3.3 (Eq. 3) and A.5. The error and tie rule follow the authors'
 * QLinear.forward: E = ‖X̄ − X‖_F·‖W̄ − W‖_F, first strict minimum.
 *
 * Leaves out: the GEMM (lb_qlinear_hq_forward_ref), learnable Hadamard
 * matrices, the embedding layers' fake quantization (QIdentity), and the
 * pre-training re-initialisation "after 2 epochs" (A.5; a caller re-runs the
 * search).
 *
 * Shapes: x (rows, D), codes/quotient/transformed (rows, D); block | D.
 */
#include "config.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/alloc.h"

#include <math.h>

static lb_status check_finite(lb_ctx *ctx, const char *what, int64_t n, const float *x)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "hq: %s[%lld] = %g is not finite", what, (long long)i,
                            (double)x[i]);
    return LB_OK;
}

static lb_status check_shape(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x)
{
    if (rows < 0 || D < 1) return lb_error(ctx, LB_ERR_ARG, "hq: bad shape (%lld, %lld)", (long long)rows, (long long)D);
    if (rows > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "hq: NULL input");
    if (!lb_hadamard_block_valid(D, block))
        return lb_error(ctx, LB_ERR_ARG, "hq: block %lld is not a power of two dividing D=%lld",
                        (long long)block, (long long)D);
    return LB_OK;
}

lb_status lb_hq_quantize_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                             int64_t D, int64_t block, const float *x, float step, int8_t *codes,
                             float *quotient, float *transformed)
{
    lb_status st = check_shape(ctx, rows, D, block, x);
    if (st != LB_OK) return st;
    if (rows > 0 && !codes) return lb_error(ctx, LB_ERR_ARG, "hq: NULL codes");
    int64_t n = rows * D;
    st = check_finite(ctx, "x", n, x);
    if (st != LB_OK) return st;
    float *t = transformed ? transformed : lb_alloc((size_t)(n > 0 ? n : 1) * sizeof *t); // (rows, D)
    if (!t) return lb_error(ctx, LB_ERR_NOMEM, "hq: out of memory");
    st = lb_hadamard_ref(ctx, rows, D, block, x, t);
    if (st == LB_OK) st = lb_lsq_quantize_ref(ctx, range, rounding, n, t, step, codes, quotient);
    if (!transformed) lb_free(t);
    return st;
}

lb_status lb_hq_init_step_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x,
                              float *step)
{
    lb_status st = check_shape(ctx, rows, D, block, x);
    if (st != LB_OK) return st;
    int64_t n = rows * D;
    st = check_finite(ctx, "x", n, x);
    if (st != LB_OK) return st;
    float *t = lb_alloc((size_t)(n > 0 ? n : 1) * sizeof *t); // (rows, D)
    if (!t) return lb_error(ctx, LB_ERR_NOMEM, "hq: out of memory");
    st = lb_hadamard_ref(ctx, rows, D, block, x, t);
    if (st == LB_OK) st = lb_lsq_init_step_ref(ctx, n, t, step);
    lb_free(t);
    return st;
}

lb_status lb_hq_block_error_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                                int64_t D, int64_t block, const float *x, double *error)
{
    lb_status st = check_shape(ctx, rows, D, block, x);
    if (st != LB_OK) return st;
    if (!error) return lb_error(ctx, LB_ERR_ARG, "hq: NULL error");
    int64_t n = rows * D;
    st = check_finite(ctx, "x", n, x);
    if (st != LB_OK) return st;
    size_t m = (size_t)(n > 0 ? n : 1);
    float *t = lb_alloc(m * sizeof *t);        // (rows, D) x·H, then the fake-quantized x
    int8_t *q = lb_alloc(m * sizeof *q);       // (rows, D) codes
    if (!t || !q) {
        lb_free(t);
        lb_free(q);
        return lb_error(ctx, LB_ERR_NOMEM, "hq: out of memory");
    }
    float step = 0.0f;
    st = lb_hadamard_ref(ctx, rows, D, block, x, t);
    if (st == LB_OK) st = lb_lsq_init_step_ref(ctx, n, t, &step);
    if (st == LB_OK) st = lb_lsq_quantize_ref(ctx, range, rounding, n, t, step, q, NULL);
    if (st == LB_OK) {
        for (int64_t i = 0; i < n; i++) t[i] = step * (float)q[i];
        st = lb_hadamard_ref(ctx, rows, D, block, t, t);
    }
    if (st == LB_OK) {
        double sse = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)t[i] - (double)x[i];
            sse += d * d;
        }
        *error = sqrt(sse);
    }
    lb_free(t);
    lb_free(q);
    return st;
}

lb_status lb_hq_search_block_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t D,
                                 int64_t rows_x, const float *x, int64_t rows_w, const float *w,
                                 int64_t max_block, int64_t *best_block, double *errors)
{
    if (!best_block) return lb_error(ctx, LB_ERR_ARG, "hq search: NULL result");
    lb_status st = check_shape(ctx, rows_x, D, 1, x);
    if (st == LB_OK && w) st = check_shape(ctx, rows_w, D, 1, w);
    if (st != LB_OK) return st;
    if (max_block <= 0) max_block = LB_HQ_MAX_BLOCK;
    int64_t best = 0;
    double best_error = 0.0;
    for (int k = 0; k < LB_HQ_NUM_BLOCKS; k++) {
        int64_t b = (int64_t)1 << k;
        if (errors) errors[k] = -1.0;
        if (b > max_block || D % b != 0) continue;
        double ex = 0.0, ew = 1.0;
        st = lb_hq_block_error_ref(ctx, range, rounding, rows_x, D, b, x, &ex);
        if (st == LB_OK && w) st = lb_hq_block_error_ref(ctx, range, rounding, rows_w, D, b, w, &ew);
        if (st != LB_OK) return st;
        double e = ex * ew;
        if (errors) errors[k] = e;
        if (best == 0 || e < best_error) {
            best = b;
            best_error = e;
        }
    }
    *best_block = best; /* block 1 always qualifies, so best >= 1 */
    return LB_OK;
}

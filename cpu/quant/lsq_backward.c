/* cpu/quant/lsq_backward.c — the LSQ straight-through backward on the cpu,
 * exact against lb_lsq_backward_ref (lowbit/cpu_quant.h).
 *
 * Per element, with v = quotient, g = grad_out and [lo, hi] = [−Qn, Qp]:
 * δ = lo below the range, hi above, else RTN(v) − v, and grad_in = g inside
 * the range, else 0. RTN of an inside v (|v| <= 8) without a libm call:
 * ties to even is (v + 1.5·2^23) − 1.5·2^23 (the sum lands in [2^23, 2^24),
 * where the float spacing is 1, so the addition rounds v to an integer by
 * the default ties-to-even rule and the subtraction is exact) = nearbyintf;
 * ties away is trunc(v) plus ±1 when |v − trunc(v)| >= ½ (v − trunc(v) is
 * exact) = roundf. Either may differ from the reference's rounding only in
 * the sign of a zero result, and RTN(v) − v is the same then: ±0 − v.
 * The terms (double)g·(double)δ of each block of LB_LSQ_SUM_BLOCK indices
 * are summed in the reference's eight lanes and tree (lowbit/ref/lsq.h), one
 * block per task on threads; the block sums are added in increasing order on
 * one thread. Every loop body is compiled per vector ISA
 * (runtime/clones.h): elementwise expressions and per-lane sequential sums,
 * the same bits on every clone.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/lsq.h"
#include "../../runtime/clones.h"
#include "../loops.h"

/* Blocks per task of the finiteness scan. */
#define SCAN_BLOCKS 16

/* 1 when some x[i0..i1) is NaN or ±Inf. */
LB_ISA_CLONES
static int any_nonfinite(const float *x, int64_t i0, int64_t i1)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = i0; i < i1; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);
    return bad;
}

/* One block [i0, i0 + m) (m <= LB_LSQ_SUM_BLOCK): grad_in (may alias
 * grad_out; written after g is read) and the block's lane-tree sum; *bad
 * |= 1 when a v or g of the block is NaN or ±Inf (then nothing is exact). */
LB_ISA_CLONES
static double lsq_block(const float *v, const float *g, float *gi, int64_t m, float lo, float hi,
                        int even, int *bad)
{
    int nonfinite = 0;
#pragma omp simd reduction(| : nonfinite)
    for (int64_t k = 0; k < m; k++) nonfinite |= !(fabsf(v[k]) <= FLT_MAX) | !(fabsf(g[k]) <= FLT_MAX);
    *bad |= nonfinite;
    double term[LB_LSQ_SUM_BLOCK];
    /* one loop per tie rule: each vectorises (selects, no branches) */
    if (even) {
#pragma omp simd
        for (int64_t k = 0; k < m; k++) {
            const float x = v[k];
            const float c = x < lo ? lo : (x > hi ? hi : x); /* |c| <= 8 */
            const float r = (c + 12582912.0f) - 12582912.0f;
            const float delta = x < lo ? lo : (x > hi ? hi : r - c);
            term[k] = (double)g[k] * (double)delta;
        }
    } else {
#pragma omp simd
        for (int64_t k = 0; k < m; k++) {
            const float x = v[k];
            const float c = x < lo ? lo : (x > hi ? hi : x);
            const float t = (float)(int32_t)c;
            const float f = c - t;
            /* t + 0 = t here: t converts from an int, so it is never -0 */
            const float r = t + (fabsf(f) >= 0.5f ? (c < 0.0f ? -1.0f : 1.0f) : 0.0f);
            const float delta = x < lo ? lo : (x > hi ? hi : r - c);
            term[k] = (double)g[k] * (double)delta;
        }
    }
    if (gi) {
#pragma omp simd
        for (int64_t k = 0; k < m; k++) gi[k] = (v[k] < lo || v[k] > hi) ? 0.0f : g[k];
    }
    double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t k = 0;
    for (; k + 8 <= m; k += 8)
        for (int l = 0; l < 8; l++) lane[l] += term[k + l];
    for (int l = 0; k < m; k++, l++) lane[l] += term[k];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* The block pass: grad_in (may be NULL or alias grad_out) and *sum, blocks
 * on nt threads, the block sums added in increasing order. Returns 1 when
 * an input is NaN or ±Inf (outputs unspecified), else 0. */
static int lsq_run(int nt, lb_lsq_range range, lb_rounding rounding, int64_t n,
                   const float *quotient, const float *grad_out, float *grad_in, double *part,
                   double *sum)
{
    const int64_t blocks = (n + LB_LSQ_SUM_BLOCK - 1) / LB_LSQ_SUM_BLOCK;
    const float lo = -(float)lb_lsq_qn(range), hi = (float)LB_LSQ_QP;
    const int even = rounding == LB_ROUND_HALF_EVEN;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad) if (nt > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i0 = b * LB_LSQ_SUM_BLOCK;
        const int64_t m = n - i0 < LB_LSQ_SUM_BLOCK ? n - i0 : LB_LSQ_SUM_BLOCK;
        part[b] = lsq_block(quotient + i0, grad_out + i0, grad_in ? grad_in + i0 : NULL, m, lo, hi,
                            even, &bad);
    }
    *sum = 0.0;
    for (int64_t b = 0; b < blocks; b++) *sum += part[b];
    return bad;
}

static float step_gradient(int64_t n, double sum)
{
    return (float)(1.0 / sqrt((double)n * (double)LB_LSQ_QP) * sum);
}

lb_status lb_lsq_backward_cpu(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *quotient, const float *grad_out, float *grad_in,
                              float *grad_step)
{
#define REFERENCE() \
    lb_lsq_backward_ref(ctx, range, rounding, n, quotient, grad_out, grad_in, grad_step)
    if (!lb_lsq_range_name(range) ||
        (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY) || n <= 0 ||
        !quotient || !grad_out)
        return REFERENCE();
    const int nt = lb_cpu_threads(ctx);
    const int64_t blocks = (n + LB_LSQ_SUM_BLOCK - 1) / LB_LSQ_SUM_BLOCK;
    if (grad_in == grad_out) {
        /* in place: nothing may be written before every input is known
         * finite (the reference must then see them unchanged) */
        int bad = 0;
        const int64_t scans = (blocks + SCAN_BLOCKS - 1) / SCAN_BLOCKS;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad) if (nt > 1 && scans > 1)
        for (int64_t t = 0; t < scans; t++) {
            const int64_t i0 = t * SCAN_BLOCKS * LB_LSQ_SUM_BLOCK;
            const int64_t i1 = n - i0 < SCAN_BLOCKS * LB_LSQ_SUM_BLOCK ? n : i0 + SCAN_BLOCKS * LB_LSQ_SUM_BLOCK;
            bad |= any_nonfinite(quotient, i0, i1) | any_nonfinite(grad_out, i0, i1);
        }
        if (bad) return REFERENCE();
    }
    double *part = lb_alloc((size_t)blocks * sizeof *part);
    if (!part) return REFERENCE();
    double sum;
    const int bad = lsq_run(nt, range, rounding, n, quotient, grad_out, grad_in, part, &sum);
    lb_free(part);
    if (bad) return REFERENCE(); /* out of place: it rewrites grad_in */
    if (grad_step) *grad_step = step_gradient(n, sum);
    return LB_OK;
#undef REFERENCE
}

lb_status lb_cpu_lsq_backward_inplace(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding,
                                      int64_t n, const float *quotient, float *g, float *grad_step)
{
    if (n <= 0 || !lb_lsq_range_name(range) ||
        (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY) || !quotient || !g)
        return lb_lsq_backward_ref(ctx, range, rounding, n, quotient, g, g, grad_step);
    const int64_t blocks = (n + LB_LSQ_SUM_BLOCK - 1) / LB_LSQ_SUM_BLOCK;
    double *part = lb_alloc((size_t)blocks * sizeof *part);
    if (!part) return lb_error(ctx, LB_ERR_NOMEM, "lsq backward: out of memory");
    double sum;
    const int bad = lsq_run(lb_cpu_threads(ctx), range, rounding, n, quotient, g, g, part, &sum);
    lb_free(part);
    if (bad) return lb_error(ctx, LB_ERR_NUMERIC, "lsq backward: a non-finite quotient or gradient");
    if (grad_step) *grad_step = step_gradient(n, sum);
    return LB_OK;
}

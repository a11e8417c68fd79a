/* models/recipe_cpu_quant.c — the quantizer hooks of the oracle layers on the
 * cpu backend: the fused kernels of lowbit/cpu_quant.h (and two exact loops
 * of this file) behind the contracts of lb_hq_quant_hooks
 * (lowbit/ref/qlinear_hq.h), so that a recipe layer gives the reference's
 * bits on both backends while its quantizers run vectorised; and the same
 * for lb_qlinear_luq_quant_hooks (lowbit/ref/qlinear_luq.h). The recipes'
 * training and evaluation layers on the cpu backend are the twins of
 * lowbit/cpu_qlinear.h; these hooks serve what those hand back to the
 * oracle layers (bad input) and the bit-split ablation of the hq recipe.
 *
 * Every hook returns what the reference it replaces returns: when a cpu
 * function reports any error (a non-finite input, a shape it rejects, a
 * forced ISA path this machine lacks, no memory), the hook calls the
 * reference itself, which then gives the reference's status and detail (or,
 * where the reference accepts the input, its bits). The fast paths never
 * change the order of a float operation:
 *   hq quantize / init step  lb_hq_quantize_cpu / lb_hq_init_step_cpu (exact by contract)
 *   bit split                lb_bit_split_cpu (exact by contract)
 *   LSS scores               integer row sums of squares (exact in any order),
 *                            then lb_lss_bs_scores_cpu (the reference's formula)
 *   LSQ backward             lb_lsq_backward_cpu (exact by contract)
 *   Hadamard                 lb_hadamard_cpu (the reference's double
 *                            butterfly, exact)
 *   SAWB, LUQ                lb_sawb_quantize_cpu, lb_luq_quantize_cpu (exact by contract)
 *   LUQ exponent pieces      a 256-entry table of the reference's expression
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/qlinear_luq.h"
#include "recipe_internal.h"

static lb_status hq_init_step_cpu(void *user, lb_ctx *ctx, int64_t rows, int64_t D, int64_t block,
                                  const float *x, float *step)
{
    (void)user;
    if (lb_hq_init_step_cpu(ctx, rows, D, block, x, step) == LB_OK) return LB_OK;
    return lb_hq_init_step_ref(ctx, rows, D, block, x, step);
}

static lb_status hq_quantize_cpu(void *user, lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding,
                                 int64_t rows, int64_t D, int64_t block, const float *x, float step,
                                 int8_t *codes, float *quotient)
{
    (void)user;
    if (lb_hq_quantize_cpu(ctx, range, rounding, rows, D, block, x, step, LB_INT_S8, codes,
                           quotient, NULL, NULL) == LB_OK)
        return LB_OK;
    return lb_hq_quantize_ref(ctx, range, rounding, rows, D, block, x, step, codes, quotient, NULL);
}

static lb_status bit_split_cpu(void *user, lb_ctx *ctx, lb_bs_mode mode, lb_rounding rounding,
                               int64_t N, int64_t C, const float *g, uint64_t seed,
                               uint64_t stream, int8_t *hi, int8_t *lo, float *fine_scale)
{
    (void)user;
    if (lb_bit_split_cpu(ctx, mode, rounding, N, C, g, NULL, seed, stream, LB_INT_S8, hi, lo,
                         fine_scale, NULL, NULL) == LB_OK)
        return LB_OK;
    return lb_bit_split_ref(ctx, mode, rounding, N * C, g, NULL, seed, stream, hi, lo, fine_scale);
}

/* Σ_j codes[j]² of a row of n codes (|code| <= 128, n < 2^17 per int32 partial). */
static int64_t row_sum_sq(const int8_t *codes, int64_t n)
{
    int64_t total = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 65536) {
        const int64_t m = n - j0 < 65536 ? n - j0 : 65536;
        int32_t part = 0;
#pragma omp simd reduction(+ : part)
        for (int64_t j = 0; j < m; j++) part += (int32_t)codes[j0 + j] * (int32_t)codes[j0 + j];
        total += part;
    }
    return total;
}

static lb_status bs_scores_cpu(void *user, lb_ctx *ctx, int64_t N, int64_t C, const int8_t *hi,
                               const int8_t *lo, int64_t D, const int8_t *x_codes, double *scores)
{
    (void)user;
    if (N < 0 || C < 0 || (x_codes && D < 0) || (N > 0 && (!scores || (C > 0 && (!hi || !lo)))))
        return lb_lss_bs_scores_ref(ctx, N, C, hi, lo, D, x_codes, scores);
    if (N == 0) return LB_OK;
    int64_t *sq = lb_alloc((size_t)(3 * N) * sizeof *sq); // (3, N): Σhi², Σlo², Σx̂²
    if (!sq) return lb_lss_bs_scores_ref(ctx, N, C, hi, lo, D, x_codes, scores);
    int64_t *hi_sq = sq, *lo_sq = sq + N, *x_sq = sq + 2 * N;
#pragma omp parallel for schedule(static) if (N * (C + D) >= 65536)
    for (int64_t i = 0; i < N; i++) {
        hi_sq[i] = row_sum_sq(hi + i * C, C);
        lo_sq[i] = row_sum_sq(lo + i * C, C);
        if (x_codes) x_sq[i] = row_sum_sq(x_codes + i * D, D);
    }
    lb_status st = lb_lss_bs_scores_cpu(ctx, N, hi_sq, lo_sq, x_codes ? x_sq : NULL, scores);
    lb_free(sq);
    if (st != LB_OK) return lb_lss_bs_scores_ref(ctx, N, C, hi, lo, D, x_codes, scores);
    return LB_OK;
}

/* lb_lsq_backward_ref through lb_lsq_backward_cpu (exact; it hands what it
 * does not take to the reference itself). */
static lb_status lsq_backward_cpu(void *user, lb_ctx *ctx, lb_lsq_range range,
                                  lb_rounding rounding, int64_t n, const float *quotient,
                                  const float *grad_out, float *grad_in, float *grad_step)
{
    (void)user;
    return lb_lsq_backward_cpu(ctx, range, rounding, n, quotient, grad_out, grad_in, grad_step);
}

/* lb_hadamard_ref through lb_hadamard_cpu (exact; out may equal in). */
static lb_status hadamard_cpu(void *user, lb_ctx *ctx, int64_t rows, int64_t D, int64_t block,
                              const float *in, float *out)
{
    (void)user;
    if (lb_hadamard_cpu(ctx, rows, D, block, in, out) == LB_OK) return LB_OK;
    return lb_hadamard_ref(ctx, rows, D, block, in, out);
}

static lb_status sawb_quantize_cpu(void *user, lb_ctx *ctx, const lb_sawb_params *params,
                                   const float *x, size_t n, int8_t *codes, float *scale,
                                   float *dequant)
{
    (void)user;
    if (lb_sawb_quantize_cpu(ctx, params, x, n, codes, scale, dequant) == LB_OK) return LB_OK;
    return lb_sawb_quantize_ref(ctx, params, x, n, codes, scale, dequant);
}

static lb_status luq_quantize_cpu(void *user, lb_ctx *ctx, const lb_luq_params *params,
                                  const float *x, size_t n, int8_t *codes, float *values,
                                  float *alpha)
{
    (void)user;
    if (lb_luq_quantize_cpu(ctx, params, x, n, codes, values, alpha) == LB_OK) return LB_OK;
    return lb_luq_quantize_ref(ctx, params, x, n, codes, values, alpha);
}

/* The exponent piece j of LUQ codes (lb_qlinear_luq_quant_hooks.luq_piece):
 * the reference's per-code expression evaluated once for each of the 256
 * int8 values into a table, then one lookup per code (integers: exact). */
static void luq_piece_cpu(void *user, const int8_t *codes, size_t n, int j, int8_t *piece, int *any)
{
    (void)user;
    int8_t table[256]; /* indexed by code + 128 */
    for (int c = -128; c < 128; c++) {
        const int k = (c < 0 ? -c : c) - 1;
        int8_t v = 0;
        if (k >= 7 * j && k < 7 * j + 7) {
            v = (int8_t)(1 << (k - 7 * j));
            if (c < 0) v = (int8_t)-v;
        }
        table[c + 128] = v;
    }
    int nonzero = 0;
    for (size_t e = 0; e < n; e++) {
        const int8_t v = table[codes[e] + 128];
        piece[e] = v;
        nonzero |= v;
    }
    *any = nonzero != 0;
}

lb_qlinear_luq_quant_hooks rc_luq_cpu_quant(void)
{
    lb_qlinear_luq_quant_hooks h;
    memset(&h, 0, sizeof h);
    h.sawb_quantize = sawb_quantize_cpu;
    h.luq_quantize = luq_quantize_cpu;
    h.luq_piece = luq_piece_cpu;
    return h;
}

lb_hq_quant_hooks rc_hq_cpu_quant(void)
{
    lb_hq_quant_hooks h;
    memset(&h, 0, sizeof h);
    h.init_step = hq_init_step_cpu;
    h.quantize = hq_quantize_cpu;
    h.bit_split = bit_split_cpu;
    h.bs_scores = bs_scores_cpu;
    h.lsq_backward = lsq_backward_cpu;
    h.hadamard = hadamard_cpu;
    return h;
}

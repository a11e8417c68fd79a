/* ref/smp.c — SMP: the average of S independent LUQ samples of a gradient.
 *
 * Paper: Chmiel et al., ICLR 2023, §5.1 ("multiple samples", variance
 * reduction): draw S independent LUQ samples (independent underflow and
 * rounding draws), average them; unbiasedness is kept and the variance is
 * divided by S. Spec: shared/specs/int4_training.md §B.4, §4.5. The authors'
 * code (repeatBwd) averages the S quantized tensors before the GEMMs; a real
 * 4-bit pipeline averages the GEMM outputs instead. Both are the same number
 * here because the sum of the samples is formed exactly, in integers
 * (Σ_j ±2^k_j), and only then scaled by α/S.
 *
 * Streams: sample j uses sample index s = params->sample + j, i.e. the
 * streams lb_rng_stream("luq.underflow", s) and lb_rng_stream("luq.round", s)
 * at element index i (see lowbit/ref/luq.h), so SMP with S = 1 is LUQ.
 *
 * Leaves out: nothing of the paper's definition; the layer-level use (two
 * backward GEMMs per sample) is ref/qlinear_luq.c.
 *
 * Shapes: x (n) flattened row-major; mean (n), code_sum (n).
 */
#include "config.h"
#include "lowbit/ref/luq.h"
#include "lowbit/alloc.h"

lb_status lb_luq_smp_ref(lb_ctx *ctx, const lb_luq_params *params, int samples, const float *x, size_t n,
                         float *mean, int32_t *code_sum, float *alpha)
{
    if (!params) return lb_error(ctx, LB_ERR_ARG, "luq-smp: NULL params");
    if (samples < 1 || samples > LB_LUQ_MAX_SAMPLES)
        return lb_error(ctx, LB_ERR_ARG, "luq-smp: samples must be in [1, %d], got %d", LB_LUQ_MAX_SAMPLES,
                        samples);
    float a = 0.0f;
    lb_status st = lb_luq_alpha_ref(ctx, params->levels, x, n, &a, NULL); /* validates x and L */
    if (st != LB_OK) return st;
    int32_t *sum = code_sum;
    int8_t *codes = NULL;
    if (n > 0) {
        codes = lb_alloc(n);
        if (!sum) sum = lb_calloc(n, sizeof *sum);
        if (!codes || !sum) {
            lb_free(codes);
            if (sum != code_sum) lb_free(sum);
            return lb_error(ctx, LB_ERR_NOMEM, "luq-smp: cannot allocate %zu elements", n);
        }
    }
    for (size_t i = 0; i < n; i++) sum[i] = 0;
    lb_luq_params p = *params;
    for (int j = 0; j < samples && st == LB_OK; j++) {
        p.sample = params->sample + (uint64_t)j;
        st = lb_luq_quantize_ref(ctx, &p, x, n, codes, NULL, NULL);
        /* |sum| <= S · 2^(L-1) <= 2^12 · 2^15: no int32 overflow */
        for (size_t i = 0; st == LB_OK && i < n; i++) sum[i] += lb_luq_code_to_int(codes[i]);
    }
    if (st == LB_OK) {
        const float c = a / (float)samples;
        if (mean)
            for (size_t i = 0; i < n; i++) mean[i] = c * (float)sum[i];
        if (alpha) *alpha = a;
    }
    lb_free(codes);
    if (sum != code_sum) lb_free(sum);
    return st;
}

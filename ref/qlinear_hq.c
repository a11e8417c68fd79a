/* ref/qlinear_hq.c — one linear layer trained with 4-bit integers as in
 * Xi et al. 2023: HQ (Hadamard + LSQ int4) forward, BS + LSS int4 backward.
 *
 * Computes Y = s_X s_W (X̂ Ŵ^T) + b and, given ∇Y, the straight-through
 * gradients ∇X, ∇W, ∇b, ∇s_X, ∇s_W, with the three GEMMs of spec
 * int4_training.md A.6 done on int4 values by lb_gemm_i8_ref (int32 exact):
 *     forward   Z   = X̂ Ŵ^T                (N, C), reduction D
 *     ∇W        hi^T X̂, lo^T X̂ over kept tokens (C, D), reduction = kept rows
 *     ∇X        hi Ŵ,  lo Ŵ   over kept rows   (N, D), reduction C
 * Paper: §3 (HQ-MM, Eq. 3), §4 (BS Eq. 5, LSS Eq. 6–8, Prop. 4.1), A.2–A.6.
 * The exact arithmetic and every RNG stream are documented in
 * lowbit/ref/qlinear_hq.h.
 *
 * Leaves out: FP16 storage (everything non-integer is float32, accumulations
 * documented in double), the embedding/classifier/attention-BMM policy of the
 * model (callers decide which layers use this), the optimizer, nibble packing
 * and the CUDA code's padding of kept rows to multiples of 32.
 *
 * Shapes: X (N, D), W (C, D), b (C), Y (N, C), ∇Y (N, C).
 */
#include "config.h"
#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/alloc.h"
#include "lowbit/rng.h"

#include <float.h>
#include <math.h>
#include <string.h>

void lb_hq_config_default(lb_hq_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->block = 0;
    cfg->max_block = LB_HQ_MAX_BLOCK;
    cfg->range = LB_LSQ_RANGE_PAPER;
    cfg->rounding = LB_ROUND_HALF_EVEN;
    cfg->bit_split = LB_BS_CLEAN;
    cfg->sampling = LB_LSS_BERNOULLI;
    cfg->lss_budget = 0.0;
}

void lb_hq_config_code(lb_hq_config *cfg)
{
    lb_hq_config_default(cfg);
    cfg->range = LB_LSQ_RANGE_CODE;
    cfg->rounding = LB_ROUND_HALF_AWAY;
    cfg->bit_split = LB_BS_CODE;
    cfg->sampling = LB_LSS_NONZERO;
}

lb_hq_streams lb_hq_backward_streams(uint64_t layer, uint64_t step)
{
    uint64_t sub = (layer << 32) + step;
    lb_hq_streams s;
    s.bit_split = lb_rng_stream("xi.bs", sub);
    s.lss_weight = lb_rng_stream("xi.lss.weight", sub);
    s.lss_input = lb_rng_stream("xi.lss.input", sub);
    return s;
}

lb_status lb_hq_state_create(lb_ctx *ctx, lb_hq_state **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "hq state: NULL out");
    *out = lb_calloc(1, sizeof **out);
    if (!*out) return lb_error(ctx, LB_ERR_NOMEM, "hq state: out of memory");
    return LB_OK;
}

void lb_hq_state_record_forward(lb_hq_state *state, int64_t block, float sx, float sw, int64_t N,
                                int64_t D, int64_t C)
{
    state->block = block;
    state->initialized = 1;
    state->step_x = sx;
    state->step_w = sw;
    state->used_step_x = sx;
    state->used_step_w = sw;
    state->n = N;
    state->d = D;
    state->c = C;
    state->has_forward = 1;
}

void lb_hq_state_free(lb_hq_state *state)
{
    if (!state) return;
    lb_free(state->x_codes);
    lb_free(state->w_codes);
    lb_free(state->x_quotient);
    lb_free(state->w_quotient);
    lb_free(state);
}

/* Grows the saved-tensor buffers of one operand to n elements. */
static lb_status reserve(lb_ctx *ctx, size_t n, size_t *capacity, int8_t **codes, float **quotient)
{
    if (n <= *capacity && *codes && *quotient) return LB_OK;
    size_t m = n > 0 ? n : 1;
    int8_t *c = lb_alloc(m * sizeof *c);
    float *q = lb_alloc(m * sizeof *q);
    if (!c || !q) {
        lb_free(c);
        lb_free(q);
        return lb_error(ctx, LB_ERR_NOMEM, "qlinear hq: out of memory");
    }
    lb_free(*codes);
    lb_free(*quotient);
    *codes = c;
    *quotient = q;
    *capacity = m;
    return LB_OK;
}

static lb_status check_finite(lb_ctx *ctx, const char *what, int64_t n, const float *x)
{
    /* one branch-free pass (|x| <= FLT_MAX is false for ±Inf and NaN), then
     * the first offending index for the message */
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);
    if (!bad) return LB_OK;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "qlinear hq: %s[%lld] = %g is not finite", what,
                            (long long)i, (double)x[i]);
    return LB_OK;
}

static lb_status check_config(lb_ctx *ctx, const lb_hq_config *cfg)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "qlinear hq: NULL config");
    if (!lb_lsq_range_name(cfg->range) || !lb_bs_mode_name(cfg->bit_split) ||
        !lb_lss_mode_name(cfg->sampling) ||
        (cfg->rounding != LB_ROUND_HALF_EVEN && cfg->rounding != LB_ROUND_HALF_AWAY))
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq: unknown mode in config");
    if (cfg->block < 0) return lb_error(ctx, LB_ERR_ARG, "qlinear hq: negative block");
    return LB_OK;
}

static size_t nz(int64_t n) { return (size_t)(n > 0 ? n : 1); }

lb_status lb_qlinear_hq_forward_ref(lb_ctx *ctx, const lb_hq_config *cfg, lb_hq_state *state,
                                    int64_t N, int64_t D, int64_t C, const float *x, const float *w,
                                    const float *b, float *y, int32_t *z)
{
    lb_status st = check_config(ctx, cfg);
    if (st != LB_OK) return st;
    if (!state) return lb_error(ctx, LB_ERR_ARG, "qlinear hq: NULL state");
    if (N < 0 || D < 1 || C < 0)
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq: bad shape N=%lld D=%lld C=%lld", (long long)N,
                        (long long)D, (long long)C);
    if ((N > 0 && !x) || (C > 0 && !w) || (N * C > 0 && !y))
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq: NULL tensor");
    if ((st = check_finite(ctx, "x", N * D, x)) != LB_OK) return st;
    if ((st = check_finite(ctx, "w", C * D, w)) != LB_OK) return st;
    if (b && (st = check_finite(ctx, "b", C, b)) != LB_OK) return st;
    state->has_forward = 0;

    /* Block: fixed by the state (earlier forward), the config, or the search. */
    int64_t block = state->block;
    if (block == 0 && cfg->block > 0) block = cfg->block;
    if (block == 0) {
        st = lb_hq_search_block_ref(ctx, cfg->range, cfg->rounding, D, N, x, C, w, cfg->max_block,
                                    &block, NULL);
        if (st != LB_OK) return st;
    }
    if (!lb_hadamard_block_valid(D, block))
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq: block %lld does not divide D=%lld",
                        (long long)block, (long long)D);

    int32_t *zz = z ? z : lb_alloc(nz(N * C) * sizeof *zz); // (N, C)
    if (!zz) {
        st = lb_error(ctx, LB_ERR_NOMEM, "qlinear hq: out of memory");
        goto done;
    }

    float sx, sw;
    if (!state->initialized) {
        /* the LSQ init rule on X·H and W·H */
        if ((st = lb_hq_init_step_ref(ctx, N, D, block, x, &sx)) != LB_OK) goto done;
        if ((st = lb_hq_init_step_ref(ctx, C, D, block, w, &sw)) != LB_OK) goto done;
    } else {
        sx = fabsf(state->step_x);
        sw = fabsf(state->step_w);
        if (!(isfinite(sx) && sx > 0.0f && isfinite(sw) && sw > 0.0f)) {
            st = lb_error(ctx, LB_ERR_NUMERIC, "qlinear hq: learned steps s_X=%g s_W=%g are unusable",
                          (double)state->step_x, (double)state->step_w);
            goto done;
        }
    }
    if ((st = reserve(ctx, (size_t)(N * D), &state->x_capacity, &state->x_codes, &state->x_quotient)) != LB_OK)
        goto done;
    if ((st = reserve(ctx, (size_t)(C * D), &state->w_capacity, &state->w_codes, &state->w_quotient)) != LB_OK)
        goto done;
    /* X̂ = LSQ(X·H; s_X), Ŵ = LSQ(W·H; s_W) with the quotients */
    st = lb_hq_quantize_ref(ctx, cfg->range, cfg->rounding, N, D, block, x, sx, state->x_codes,
                            state->x_quotient, NULL);
    if (st != LB_OK) goto done;
    st = lb_hq_quantize_ref(ctx, cfg->range, cfg->rounding, C, D, block, w, sw, state->w_codes,
                            state->w_quotient, NULL);
    if (st != LB_OK) goto done;

    /* Z = X̂ Ŵ^T: the int4 forward GEMM, reduction over D. */
    st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 1, N, C, D, state->x_codes, state->w_codes, zz);
    if (st != LB_OK) goto done;
    const float sxw = sx * sw;
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            float v = sxw * (float)zz[i * C + c];
            y[i * C + c] = b ? v + b[c] : v;
        }

    lb_hq_state_record_forward(state, block, sx, sw, N, D, C);
done:
    if (!z) lb_free(zz);
    return st;
}

/* Gathers rows `rows` (count K) of src (?, cols) into dst (K, cols). */
static void gather_rows(const int8_t *src, int64_t cols, const int64_t *rows, int64_t K, int8_t *dst)
{
    for (int64_t r = 0; r < K; r++) memcpy(dst + r * cols, src + rows[r] * cols, (size_t)cols);
}

lb_status lb_qlinear_hq_backward_ref(lb_ctx *ctx, const lb_hq_config *cfg, const lb_hq_state *state,
                                     uint64_t step, const float *grad_y, float *grad_x, float *grad_w,
                                     float *grad_b, float *grad_step_x, float *grad_step_w,
                                     lb_hq_backward_trace *trace)
{
    lb_status st = check_config(ctx, cfg);
    if (st != LB_OK) return st;
    if (!state || !state->has_forward)
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq backward: no saved forward in the state");
    const int64_t N = state->n, D = state->d, C = state->c, L = 2 * N;
    if ((N * C > 0 && !grad_y) || (N * D > 0 && !grad_x) || (C * D > 0 && !grad_w))
        return lb_error(ctx, LB_ERR_ARG, "qlinear hq backward: NULL tensor");
    if ((st = check_finite(ctx, "grad_y", N * C, grad_y)) != LB_OK) return st;
    double budget = cfg->lss_budget > 0.0 ? cfg->lss_budget : (double)N;
    const lb_hq_streams streams = lb_hq_backward_streams(cfg->layer, step);
    const int8_t *xq = state->x_codes; // (N, D)
    const int8_t *wq = state->w_codes; // (C, D)

    int8_t *hi = lb_alloc(nz(N * C));                 // (N, C)
    int8_t *lo = lb_alloc(nz(N * C));                 // (N, C)
    double *score = lb_alloc(nz(L) * sizeof *score);  // (2N)
    double *p_w = lb_alloc(nz(L) * sizeof *p_w);      // (2N)
    double *p_x = lb_alloc(nz(L) * sizeof *p_x);      // (2N)
    double *wt_w = lb_alloc(nz(L) * sizeof *wt_w);    // (2N) m/p
    double *wt_x = lb_alloc(nz(L) * sizeof *wt_x);    // (2N)
    uint8_t *m_w = lb_alloc(nz(L));                   // (2N)
    uint8_t *m_x = lb_alloc(nz(L));                   // (2N)
    int64_t *rows = lb_alloc(nz(N) * sizeof *rows);   // (N) gathered row indices
    double *wrow = lb_alloc(nz(N) * sizeof *wrow);    // (N) weights of gathered rows
    int8_t *ga = lb_alloc(nz(N * C));                 // (K, C) gathered nibble rows
    int8_t *gb = lb_alloc(nz(N * D));                 // (K, D) gathered X̂ rows
    int32_t *zi = lb_alloc(nz(C * D > N * D ? C * D : N * D) * sizeof *zi); // int GEMM result
    double *acc_w = lb_alloc(nz(C * D) * sizeof *acc_w); // (C, D)
    double *acc_x = lb_alloc(nz(N * D) * sizeof *acc_x); // (N, D)
    float *gw_h = lb_alloc(nz(C * D) * sizeof *gw_h);    // (C, D) G_W
    float *gx_h = lb_alloc(nz(N * D) * sizeof *gx_h);    // (N, D) G_X
    double *acc_b = lb_alloc(nz(C) * sizeof *acc_b);     // (C) Σ_i ∇Y
    if (!acc_b || !hi || !lo || !score || !p_w || !p_x || !wt_w || !wt_x || !m_w || !m_x || !rows || !wrow || !ga ||
        !gb || !zi || !acc_w || !acc_x || !gw_h || !gx_h) {
        st = lb_error(ctx, LB_ERR_NOMEM, "qlinear hq backward: out of memory");
        goto done;
    }

    /* 1. Bit splitting of ∇Y. */
    float fine = 0.0f;
    st = lb_bit_split_ref(ctx, cfg->bit_split, cfg->rounding, N * C, grad_y, NULL, cfg->seed,
                          streams.bit_split, hi, lo, &fine);
    if (st != LB_OK) goto done;

    /* 2. Scores, probabilities and masks of both GEMMs. */
    if ((st = lb_lss_bs_scores_ref(ctx, N, C, hi, lo, D, xq, score)) != LB_OK) goto done;
    if ((st = lb_lss_probabilities_ref(ctx, cfg->sampling, L, score, budget, p_w, NULL)) != LB_OK) goto done;
    if ((st = lb_lss_sample_ref(ctx, L, p_w, cfg->seed, streams.lss_weight, m_w, wt_w)) != LB_OK) goto done;
    if ((st = lb_lss_bs_scores_ref(ctx, N, C, hi, lo, 0, NULL, score)) != LB_OK) goto done;
    if ((st = lb_lss_probabilities_ref(ctx, cfg->sampling, L, score, budget, p_x, NULL)) != LB_OK) goto done;
    if ((st = lb_lss_sample_ref(ctx, L, p_x, cfg->seed, streams.lss_input, m_x, wt_x)) != LB_OK) goto done;

    /* 3. G_W = s_X s↓ A_W. Rows kept with p = 1 share one int GEMM per half. */
    for (int64_t k = 0; k < C * D; k++) acc_w[k] = 0.0;
    for (int half = 0; half < 2; half++) {
        const int8_t *nib = half == 0 ? hi : lo;
        const int64_t mult = half == 0 ? LB_BS_RATIO : 1;
        int64_t K = 0;
        for (int64_t i = 0; i < N; i++)
            if (m_w[half * N + i] && p_w[half * N + i] == 1.0) rows[K++] = i;
        if (K == 0 || C * D == 0) continue;
        gather_rows(nib, C, rows, K, ga);
        gather_rows(xq, D, rows, K, gb);
        /* (C, D) = ga^T (C, K) · gb (K, D) */
        if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 1, 0, C, D, K, ga, gb, zi)) != LB_OK) goto done;
        for (int64_t k = 0; k < C * D; k++) acc_w[k] += (double)(mult * (int64_t)zi[k]);
    }
    /* Sampled rows (p < 1): rank-1 terms weighted by 1/p, hi rows then lo rows. */
    for (int half = 0; half < 2; half++) {
        const int8_t *nib = half == 0 ? hi : lo;
        const int mult = half == 0 ? LB_BS_RATIO : 1;
        int64_t K = 0;
        for (int64_t i = 0; i < N; i++) {
            int64_t r = half * N + i;
            if (!m_w[r] || p_w[r] == 1.0) continue;
            rows[K] = i;
            wrow[K++] = wt_w[r];
        }
        if (K == 0 || C * D == 0) continue;
        for (int64_t r = 0; r < K; r++) {
            const int64_t i = rows[r];
            const double wgt = wrow[r];
            for (int64_t c = 0; c < C; c++) {
                int hc = mult * (int)nib[i * C + c];
                if (hc == 0) continue; /* adds exactly +0.0: skipping is bit-identical */
                for (int64_t d = 0; d < D; d++)
                    acc_w[c * D + d] += wgt * (double)(hc * (int)xq[i * D + d]);
            }
        }
    }
    const double sxs = (double)state->used_step_x * (double)fine;
    for (int64_t k = 0; k < C * D; k++) gw_h[k] = (float)(sxs * acc_w[k]);

    /* 4. G_X = s_W s↓ A_X: int GEMMs over kept rows, weights scale output rows. */
    for (int64_t k = 0; k < N * D; k++) acc_x[k] = 0.0;
    for (int half = 0; half < 2; half++) {
        const int8_t *nib = half == 0 ? hi : lo;
        const int64_t mult = half == 0 ? LB_BS_RATIO : 1;
        int64_t K = 0;
        for (int64_t i = 0; i < N; i++)
            if (m_x[half * N + i]) rows[K++] = i;
        if (K == 0 || D == 0) continue;
        gather_rows(nib, C, rows, K, ga);
        /* (K, D) = ga (K, C) · Ŵ (C, D) */
        if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 0, K, D, C, ga, wq, zi)) != LB_OK) goto done;
        for (int64_t r = 0; r < K; r++) {
            const int64_t i = rows[r];
            const double wgt = wt_x[half * N + i];
            for (int64_t d = 0; d < D; d++)
                acc_x[i * D + d] += (double)(mult * (int64_t)zi[r * D + d]) * wgt;
        }
    }
    const double sws = (double)state->used_step_w * (double)fine;
    for (int64_t k = 0; k < N * D; k++) gx_h[k] = (float)(sws * acc_x[k]);

    /* 5–6. LSQ masks and step gradients in the Hadamard domain, then ·H. */
    float gsx = 0.0f, gsw = 0.0f;
    st = lb_lsq_backward_ref(ctx, cfg->range, cfg->rounding, N * D, state->x_quotient, gx_h,
                             grad_x, &gsx);
    if (st != LB_OK) goto done;
    st = lb_lsq_backward_ref(ctx, cfg->range, cfg->rounding, C * D, state->w_quotient, gw_h,
                             grad_w, &gsw);
    if (st != LB_OK) goto done;
    if ((st = lb_hadamard_ref(ctx, N, D, state->block, grad_x, grad_x)) != LB_OK) goto done;
    if ((st = lb_hadamard_ref(ctx, C, D, state->block, grad_w, grad_w)) != LB_OK) goto done;
    if (grad_step_x) *grad_step_x = gsx;
    if (grad_step_w) *grad_step_w = gsw;

    /* 7. Bias gradient (float, not quantized): every column summed in double
     * in increasing i, visited row by row (the row-major order of ∇Y). */
    if (grad_b) {
        for (int64_t c = 0; c < C; c++) acc_b[c] = 0.0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t c = 0; c < C; c++) acc_b[c] += (double)grad_y[i * C + c];
        for (int64_t c = 0; c < C; c++) grad_b[c] = (float)acc_b[c];
    }

    if (trace) {
        trace->fine_scale = fine;
        if (trace->hi) memcpy(trace->hi, hi, (size_t)(N * C));
        if (trace->lo) memcpy(trace->lo, lo, (size_t)(N * C));
        if (trace->p_weight) memcpy(trace->p_weight, p_w, (size_t)L * sizeof *p_w);
        if (trace->p_input) memcpy(trace->p_input, p_x, (size_t)L * sizeof *p_x);
        if (trace->mask_weight) memcpy(trace->mask_weight, m_w, (size_t)L);
        if (trace->mask_input) memcpy(trace->mask_input, m_x, (size_t)L);
        if (trace->grad_x_hadamard) memcpy(trace->grad_x_hadamard, gx_h, (size_t)(N * D) * sizeof *gx_h);
        if (trace->grad_w_hadamard) memcpy(trace->grad_w_hadamard, gw_h, (size_t)(C * D) * sizeof *gw_h);
    }
done:
    lb_free(hi);
    lb_free(lo);
    lb_free(score);
    lb_free(p_w);
    lb_free(p_x);
    lb_free(wt_w);
    lb_free(wt_x);
    lb_free(m_w);
    lb_free(m_x);
    lb_free(rows);
    lb_free(wrow);
    lb_free(ga);
    lb_free(gb);
    lb_free(zi);
    lb_free(acc_w);
    lb_free(acc_x);
    lb_free(gw_h);
    lb_free(gx_h);
    lb_free(acc_b);
    return st;
}

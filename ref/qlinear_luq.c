/* ref/qlinear_luq.c — one LUQ-quantized linear layer Y = X W^T (+ b):
 * SAWB-INT4 forward GEMM, LUQ neural-gradient backward GEMMs, SMP average.
 *
 * Paper: Chmiel et al., ICLR 2023, §3 Eqs. 1-3 (the three GEMMs: forward
 * Q_INT(W)·Q_INT(a), backward Q_INT(W)^T·Q_FP(δ), update Q_FP(δ)·Q_INT(a)^T),
 * §3.3 (the forward RTN codes are reused in the backward), §5.1 (SMP);
 * spec shared/specs/int4_training.md §B.1, §B.6 (int kernel encoding of the
 * codes as ±2^k), §B.7 (step list).
 *
 * All three GEMMs are integer: int8 storage, int32 accumulation through
 * lb_gemm_i8_ref; the LUQ operand ±2^k is split by exponent into int8 pieces
 * when L >= 8 and the pieces' int32 results are recombined exactly in int64
 * (lb_luq_gemm_ref). Only the final per-tensor scaling is float32, in the
 * documented order of lowbit/ref/qlinear_luq.h.
 *
 * Leaves out: the optimizer, FNT (switching the layer to high precision is a
 * training-loop decision), the in-hindsight max, BN and everything outside
 * the layer; the authors' max(δ) bug (we use max|δ|).
 *
 * Shapes: X (N, D), W (C, D), b (C), Y and ∇Y (N, C); N tokens, D in-features,
 * C out-features; all row-major.
 */
#include "config.h"
#include "lowbit/ref/qlinear_luq.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/alloc.h"

#include <math.h>
#include <string.h>

lb_qlinear_luq_config lb_qlinear_luq_default_config(void)
{
    lb_qlinear_luq_config c;
    c.grid = LB_SAWB_GRID_INT4;
    c.c1 = LB_SAWB_C1;
    c.c2 = LB_SAWB_C2;
    c.luq = lb_luq_default_params();
    c.samples = 1;
    c.gemm = (lb_gemm_i8_hook){0}; /* the reference GEMM */
    return c;
}

static lb_status check_sizes(lb_ctx *ctx, int64_t N, int64_t D, int64_t C, size_t *nd, size_t *cd,
                             size_t *nc)
{
    if (N < 0 || D < 0 || C < 0)
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: negative size N=%lld D=%lld C=%lld", (long long)N,
                        (long long)D, (long long)C);
    if (!lb_mul_size((size_t)N, (size_t)D, nd) || !lb_mul_size((size_t)C, (size_t)D, cd) ||
        !lb_mul_size((size_t)N, (size_t)C, nc) || *nd > SIZE_MAX / 8 || *cd > SIZE_MAX / 8 ||
        *nc > SIZE_MAX / 8)
        return lb_error(ctx, LB_ERR_NOMEM, "qlinear-luq: size overflow");
    return LB_OK;
}

/* The exponent piece j of LUQ codes (lb_luq_gemm_ref's method): codes with
 * k = |code| − 1 in [7j, 7j + 7) become ±2^(k − 7j), at most 64 in
 * magnitude; the rest 0. *any = 1 when some piece is non-zero. */
static void luq_piece(const int8_t *codes, size_t n, int j, int8_t *piece, int *any)
{
    *any = 0;
    for (size_t e = 0; e < n; e++) {
        const int k = (codes[e] < 0 ? -codes[e] : codes[e]) - 1; /* -1 for a zero code */
        int8_t v = 0;
        if (k >= 7 * j && k < 7 * j + 7) {
            v = (int8_t)(1 << (k - 7 * j));
            if (codes[e] < 0) v = (int8_t)-v;
            *any = 1;
        }
        piece[e] = v;
    }
}

/* C (M, N) += 2^(7j) · op(piece) · op(B): one piece's int8 GEMM (through the
 * hook; NULL: lb_gemm_i8_ref) into `part`, added exactly in int64. */
static lb_status add_piece_product(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                   int trans_b, int64_t M, int64_t N, int64_t K, int j,
                                   const int8_t *piece, const int8_t *B, int32_t *part, int64_t *C)
{
    lb_status st = lb_gemm_i8_hooked(hook, ctx, trans_a, trans_b, M, N, K, piece, B, part);
    if (st != LB_OK) return st;
    const int64_t shift = (int64_t)1 << (7 * j);
    const size_t mn = (size_t)M * (size_t)N;
    for (size_t e = 0; e < mn; e++) C[e] += shift * (int64_t)part[e];
    return LB_OK;
}

lb_status lb_luq_gemm_ref(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, int levels,
                          const int8_t *A_codes, const int8_t *B, int64_t *C)
{
    if (M < 0 || N < 0 || K < 0)
        return lb_error(ctx, LB_ERR_ARG, "luq-gemm: negative size M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (levels < 1 || levels > LB_LUQ_MAX_LEVELS)
        return lb_error(ctx, LB_ERR_ARG, "luq-gemm: levels must be in [1, %d], got %d", LB_LUQ_MAX_LEVELS,
                        levels);
    size_t mk, mn;
    if (!lb_mul_size((size_t)M, (size_t)K, &mk) || !lb_mul_size((size_t)M, (size_t)N, &mn) ||
        mn > SIZE_MAX / sizeof(int32_t))
        return lb_error(ctx, LB_ERR_NOMEM, "luq-gemm: size overflow");
    if (mn == 0) return LB_OK;
    if (mk > 0 && (!A_codes || !B)) return lb_error(ctx, LB_ERR_ARG, "luq-gemm: NULL operand");
    if (!C) return lb_error(ctx, LB_ERR_ARG, "luq-gemm: NULL output");
    int8_t *piece = lb_alloc(mk ? mk : 1);
    int32_t *part = lb_alloc(mn * sizeof *part);
    lb_status st = LB_OK;
    if (!piece || !part) {
        st = lb_error(ctx, LB_ERR_NOMEM, "luq-gemm: cannot allocate %zu + %zu elements", mk, mn);
        goto done;
    }
    /* The layout of A (trans_a) is unchanged: the pieces are elementwise. */
    for (int j = 0; 7 * j < levels; j++) {
        int any;
        luq_piece(A_codes, mk, j, piece, &any);
        if (!any) continue; /* the product would be all zeros */
        st = add_piece_product(NULL, ctx, trans_a, trans_b, M, N, K, j, piece, B, part, C);
        if (st != LB_OK) goto done;
    }
done:
    lb_free(piece);
    lb_free(part);
    return st;
}

lb_status lb_qlinear_luq_forward_ref(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N, int64_t D,
                                     int64_t C, const float *X, const float *W, const float *bias,
                                     int *act_signed, int8_t *X_codes, float *x_scale, int8_t *W_codes,
                                     float *w_scale, int32_t *Z, float *Y)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: NULL config");
    if (!lb_sawb_grid_name(cfg->grid)) return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: unknown grid");
    size_t nd, cd, nc;
    lb_status st = check_sizes(ctx, N, D, C, &nd, &cd, &nc);
    if (st != LB_OK) return st;
    if ((nd && (!X || !X_codes)) || (cd && (!W || !W_codes)) || (nc && !Y) || !x_scale || !w_scale)
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq forward: NULL pointer");

    /* Step 1 of B.7: W on the weight grid, X on the activation grid. */
    lb_sawb_params pw = {cfg->c1, cfg->c2, 0, 1}, px = pw;
    lb_sawb_weight_range(cfg->grid, &pw.qn, &pw.qp);
    int is_signed = act_signed && *act_signed;
    for (size_t i = 0; i < nd && !is_signed; i++) is_signed = X[i] < 0.0f;
    lb_sawb_activation_range(cfg->grid, is_signed, &px.qn, &px.qp);
    st = lb_sawb_quantize_ref(ctx, &pw, W, cd, W_codes, w_scale, NULL);
    if (st != LB_OK) return st;
    st = lb_sawb_quantize_ref(ctx, &px, X, nd, X_codes, x_scale, NULL);
    if (st != LB_OK) return st;
    if (act_signed) *act_signed = is_signed;
    if (bias) {
        for (int64_t c = 0; c < C; c++)
            if (!isfinite(bias[c]))
                return lb_error(ctx, LB_ERR_NUMERIC, "qlinear-luq: non-finite bias at index %lld", (long long)c);
    }

    int32_t *z = Z;
    if (!z && nc) {
        z = lb_alloc(nc * sizeof *z);
        if (!z) return lb_error(ctx, LB_ERR_NOMEM, "qlinear-luq: cannot allocate Z (%zu)", nc);
    }
    /* Y = X_q W_q^T: W stored (C, D) = (N_gemm, K) → trans_b = 1. */
    st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 1, N, C, D, X_codes, W_codes, z);
    if (st == LB_OK) {
        const float c = *x_scale * *w_scale;
        for (int64_t n = 0; n < N; n++) {
            for (int64_t j = 0; j < C; j++) {
                float y = c * (float)z[n * C + j];
                if (bias) y += bias[j];
                Y[n * C + j] = y;
            }
        }
    }
    if (z != Z) lb_free(z);
    return st;
}

lb_status lb_qlinear_luq_backward_ref(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N, int64_t D,
                                      int64_t C, const float *dY, const int8_t *X_codes, float x_scale,
                                      const int8_t *W_codes, float w_scale, float *dX, float *dW, float *db,
                                      float *alpha_out)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: NULL config");
    if (cfg->samples < 1 || cfg->samples > LB_LUQ_MAX_SAMPLES)
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: samples must be in [1, %d], got %d",
                        LB_LUQ_MAX_SAMPLES, cfg->samples);
    if (!isfinite(x_scale) || !isfinite(w_scale) || x_scale < 0.0f || w_scale < 0.0f)
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq: scales must be finite and >= 0");
    size_t nd, cd, nc;
    lb_status st = check_sizes(ctx, N, D, C, &nd, &cd, &nc);
    if (st != LB_OK) return st;
    if ((nc && !dY) || (nd && (!X_codes || !dX)) || (cd && (!W_codes || !dW)))
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq backward: NULL pointer");
    float alpha;
    st = lb_luq_alpha_ref(ctx, cfg->luq.levels, dY, nc, &alpha, NULL); /* also rejects NaN/Inf */
    if (st != LB_OK) return st;

    int8_t *codes = lb_alloc(nc ? nc : 1);
    int8_t *piece = lb_alloc(nc ? nc : 1);
    int32_t *part = lb_alloc((nd > cd ? nd : cd ? cd : 1) * sizeof *part);
    int64_t *zx = lb_calloc(nd ? nd : 1, sizeof *zx);
    int64_t *zw = lb_calloc(cd ? cd : 1, sizeof *zw);
    int64_t *zb = lb_calloc(C ? (size_t)C : 1, sizeof *zb);
    if (!codes || !piece || !part || !zx || !zw || !zb) {
        st = lb_error(ctx, LB_ERR_NOMEM, "qlinear-luq backward: cannot allocate buffers");
        goto done;
    }
    lb_luq_params p = cfg->luq;
    for (int s = 0; s < cfg->samples; s++) {
        /* Step 2 of B.7: one LUQ sample δ_q feeds both GEMMs. */
        p.sample = cfg->luq.sample + (uint64_t)s;
        st = lb_luq_quantize_ref(ctx, &p, dY, nc, codes, NULL, NULL);
        if (st != LB_OK) goto done;
        /* The two GEMMs of lb_luq_gemm_ref's method, sharing each exponent
         * piece δ_j of δ_q = Σ_j 2^(7j) δ_j. */
        for (int j = 0; 7 * j < p.levels; j++) {
            int any;
            luq_piece(codes, nc, j, piece, &any);
            if (!any) continue;
            /* ∇X (N, D) += δ_j (N, C) · W_q (C, D): reduction over C. */
            st = add_piece_product(&cfg->gemm, ctx, 0, 0, N, D, C, j, piece, W_codes, part, zx);
            if (st != LB_OK) goto done;
            /* ∇W (C, D) += δ_j^T (C, N) · X_q (N, D): δ_j stored (N, C) → trans_a. */
            st = add_piece_product(&cfg->gemm, ctx, 1, 0, C, D, N, j, piece, X_codes, part, zw);
            if (st != LB_OK) goto done;
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) zb[c] += lb_luq_code_to_int(codes[n * C + c]);
    }
    /* Step 3: one float32 scaling per result, out = fl32(c · fl32(Z)). */
    const float S = (float)cfg->samples;
    const float cx = (alpha * w_scale) / S, cw = (alpha * x_scale) / S, cb = alpha / S;
    for (size_t e = 0; e < nd; e++) dX[e] = cx * (float)zx[e];
    for (size_t e = 0; e < cd; e++) dW[e] = cw * (float)zw[e];
    if (db)
        for (int64_t c = 0; c < C; c++) db[c] = cb * (float)zb[c];
    if (alpha_out) *alpha_out = alpha;
done:
    lb_free(codes);
    lb_free(piece);
    lb_free(part);
    lb_free(zx);
    lb_free(zw);
    lb_free(zb);
    return st;
}

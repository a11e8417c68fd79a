/* cpu/qlinear_luq_cpu.c — the LUQ linear layer (lowbit/ref/qlinear_luq.h)
 * on the cpu backend, same bits as the reference (lowbit/cpu_qlinear.h).
 *
 * What differs from ref/qlinear_luq.c, and why the bits do not:
 *   - quantizers: lb_sawb_quantize_cpu / lb_luq_quantize_cpu, exact by
 *     their contract (lowbit/cpu_quant.h); alpha comes from the first LUQ
 *     sample's call, which computes it as lb_luq_alpha_ref does;
 *   - each exponent piece δ_j is built once per sample with its column sums
 *     (threads over column ranges, 16 columns at a time in byte lanes), and
 *     ∇b's integer Σ_n δ_q[n, c] is Σ_j 2^(7j) Σ_n δ_j[n, c]: integers,
 *     exact in any order;
 *   - with one sample, each piece's int32 products are kept and the final
 *     out = fl32(c · fl32(Σ_j 2^(7j) part_j)) is one elementwise pass (the
 *     integer sum is the reference's Z); with several, Z += 2^(7j) · part
 *     runs elementwise on threads in int64, the first accumulation assigning
 *     (0 + v = v in integers), then out = fl32(c · fl32(Z));
 *   - the sign scan of X runs on threads, and the forward epilogue (the
 *     reference's expression per element) is fused into the GEMM's tiles
 *     when the hook offers it (lb_gemm_i8_hook.fn_dequant), else a pass on
 *     threads.
 * Every loop body is compiled per vector ISA (runtime/clones.h).
 */
#include "config.h"
#include "lowbit/cpu_qlinear.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "../runtime/clones.h"
#include "loops.h"

/* Elements per task of the elementwise loops. */
#define CHUNK 16384
/* Columns per pass of the piece / column-sum loop (int32 sums in L1). */
#define COLS 1024

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ------------------------------------------------------------ loop bodies */

/* 1 when some x[i0..i1) < 0 (NaN compares false, as in the reference). */
LB_ISA_CLONES
static int any_negative(const float *x, int64_t i0, int64_t i1)
{
    int neg = 0;
#pragma omp simd reduction(| : neg)
    for (int64_t i = i0; i < i1; i++) neg |= x[i] < 0.0f;
    return neg;
}

/* Sixteen int8 / int16 lanes in the compiler's generic vector extension. */
typedef int8_t i8x16 __attribute__((vector_size(16)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));
typedef int16_t i16x16 __attribute__((vector_size(32)));

/* The piece value of one code (lb_luq_gemm_ref's method): ±2^(k − 7j) for
 * k = |code| − 1 in [7j, 7j + 7), else 0. */
static inline int8_t piece_value(int8_t code, int j)
{
    const int a = code < 0 ? -code : code, e = a - 1 - 7 * j;
    const int m = e >= 0 && e < 7 ? 1 << e : 0;
    return (int8_t)(code < 0 ? -m : m);
}

/* table[idx & 15] per lane: one byte shuffle (GCC's variable
 * __builtin_shuffle), else lane by lane. */
static inline u8x16 lookup16(u8x16 table, u8x16 idx)
{
#if defined(__GNUC__) && !defined(__clang__)
    return __builtin_shuffle(table, idx & 15);
#else
    u8x16 r;
    for (int l = 0; l < 16; l++) r[l] = table[idx[l] & 15];
    return r;
#endif
}

/* Columns c0..c1 of piece j of codes (N, C) into piece, their column sums
 * added to colsum[c]; returns 1 when a piece value is non-zero. Sixteen
 * columns at a time in byte lanes (the power of two from a 16-entry table),
 * the sums in int16 lanes flushed every 256 rows (|value| <= 64), the
 * columns past the last 16 one by one. */
LB_ISA_CLONES
static int piece_columns(const int8_t *codes, int64_t N, int64_t C, int j, int64_t c0, int64_t c1,
                         int8_t *piece, int64_t *colsum)
{
    const int64_t groups = (c1 - c0) / 16, cv = c0 + 16 * groups; /* groups <= COLS / 16 */
    const u8x16 pow2 = {1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const int8_t first = (int8_t)(1 + 7 * j);
    i16x16 sum[COLS / 16];
    i8x16 anyv = {0};
    int any = 0;
    for (int64_t n0 = 0; n0 < N; n0 += 256) {
        const int64_t n1 = N - n0 < 256 ? N : n0 + 256;
        for (int64_t g = 0; g < groups; g++) sum[g] = (i16x16){0};
        for (int64_t n = n0; n < n1; n++) {
            const int8_t *cd = codes + n * C;
            int8_t *pc = piece + n * C;
            for (int64_t g = 0; g < groups; g++) {
                i8x16 v;
                memcpy(&v, cd + c0 + 16 * g, 16);
                const i8x16 sg = v < 0;                     /* -1 for a negative code */
                const i8x16 e = ((v ^ sg) - sg) - first;    /* k − 7j */
                const i8x16 in = (u8x16)e < 7;              /* -1 inside the piece */
                const i8x16 m = (i8x16)lookup16(pow2, (u8x16)e) & in;
                const i8x16 sv = (m ^ sg) - sg;
                memcpy(pc + c0 + 16 * g, &sv, 16);
                sum[g] += __builtin_convertvector(sv, i16x16);
                anyv |= in;
            }
            for (int64_t c = cv; c < c1; c++) {
                const int8_t sv = piece_value(cd[c], j);
                pc[c] = sv;
                colsum[c] += sv;
                any |= sv != 0;
            }
        }
        for (int64_t g = 0; g < groups; g++)
            for (int l = 0; l < 16; l++) colsum[c0 + 16 * g + l] += sum[g][l];
    }
    for (int l = 0; l < 16; l++) any |= anyv[l] != 0;
    return any;
}

/* Z[i0..i1) = (first ? 0 : Z) + shift · part (int64, exact). */
LB_ISA_CLONES
static void accumulate(int64_t *Z, const int32_t *part, int64_t shift, int first, int64_t i0,
                       int64_t i1)
{
    if (first) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) Z[i] = shift * (int64_t)part[i];
    } else {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) Z[i] += shift * (int64_t)part[i];
    }
}

/* out[i0..i1) = c · fl32(Z) from int64 (Z NULL: the integer 0). */
LB_ISA_CLONES
static void scale_i64(float *out, const int64_t *Z, float c, int64_t i0, int64_t i1)
{
    if (!Z) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) out[i] = c * (float)(int64_t)0;
        return;
    }
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) out[i] = c * (float)Z[i];
}

/* out[i0..i1) = c · fl32(Z) with Z = Σ_j shift[j] · part[j] (np <= 3 pieces:
 * int32 products, summed in int64: the integers the reference accumulates;
 * converting an integer to float32 rounds its value, whatever its type). */
LB_ISA_CLONES
static void scale_pieces(float *out, int np, const int32_t *const *part, const int64_t *shift,
                         float c, int64_t i0, int64_t i1)
{
    switch (np) {
    case 0:
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) out[i] = c * (float)(int64_t)0;
        break;
    case 1:
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) out[i] = c * (float)(shift[0] * (int64_t)part[0][i]);
        break;
    case 2:
#pragma omp simd
        for (int64_t i = i0; i < i1; i++)
            out[i] = c * (float)(shift[0] * (int64_t)part[0][i] + shift[1] * (int64_t)part[1][i]);
        break;
    default:
#pragma omp simd
        for (int64_t i = i0; i < i1; i++)
            out[i] = c * (float)(shift[0] * (int64_t)part[0][i] + shift[1] * (int64_t)part[1][i] +
                                 shift[2] * (int64_t)part[2][i]);
        break;
    }
}

/* ------------------------------------------------------- threaded drivers */

static int any_negative_par(const float *x, int64_t n, int nt)
{
    int neg = 0;
    const int64_t tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : neg) if (tasks > 1 && nt > 1)
    for (int64_t t = 0; t < tasks; t++)
        neg |= any_negative(x, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
    return neg;
}

static void accumulate_par(int64_t *Z, const int32_t *part, int64_t shift, int first, int64_t n,
                           int nt)
{
    const int64_t tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (tasks > 1 && nt > 1)
    for (int64_t t = 0; t < tasks; t++)
        accumulate(Z, part, shift, first, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
}

static void scale_i64_par(float *out, const int64_t *Z, float c, int64_t n, int nt)
{
    const int64_t tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (tasks > 1 && nt > 1)
    for (int64_t t = 0; t < tasks; t++)
        scale_i64(out, Z, c, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
}

static void scale_pieces_par(float *out, int np, const int32_t *const *part,
                             const int64_t *shift, float c, int64_t n, int nt)
{
    const int64_t tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (tasks > 1 && nt > 1)
    for (int64_t t = 0; t < tasks; t++)
        scale_pieces(out, np, part, shift, c, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
}

/* Piece j of codes (N, C) with colsum (C) += its column sums; 1 when it has
 * a non-zero value. One contiguous range of columns per thread
 * (lb_cpu_column_share), walked along the rows in passes of COLS columns. */
static int piece_par(const int8_t *codes, int64_t N, int64_t C, int j, int8_t *piece,
                     int64_t *colsum, int nt)
{
    int any = 0;
    if (!(N * C >= CHUNK) || nt < 1) nt = 1;
    if (nt > ceil_div(C, 64)) nt = (int)ceil_div(C, 64);
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : any) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int64_t c0, c1;
        lb_cpu_column_share(C, 64, nt, t, &c0, &c1);
        for (int64_t c = c0; c < c1; c += COLS)
            any |= piece_columns(codes, N, C, j, c, c1 - c < COLS ? c1 : c + COLS, piece, colsum);
    }
    return any;
}

/* ----------------------------------------------------------------- layers */

/* Sizes the reference accepts without overflow (its check_sizes). */
static int sizes_ok(int64_t N, int64_t D, int64_t C, size_t *nd, size_t *cd, size_t *nc)
{
    return N >= 0 && D >= 0 && C >= 0 && lb_mul_size((size_t)N, (size_t)D, nd) &&
           lb_mul_size((size_t)C, (size_t)D, cd) && lb_mul_size((size_t)N, (size_t)C, nc) &&
           *nd <= SIZE_MAX / 8 && *cd <= SIZE_MAX / 8 && *nc <= SIZE_MAX / 8;
}

lb_status lb_qlinear_luq_forward_cpu(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                     int64_t D, int64_t C, const float *X, const float *W,
                                     const float *bias, int *act_signed, int8_t *X_codes,
                                     float *x_scale, int8_t *W_codes, float *w_scale, int32_t *Z,
                                     float *Y)
{
#define REFERENCE()                                                                            \
    lb_qlinear_luq_forward_ref(ctx, cfg, N, D, C, X, W, bias, act_signed, X_codes, x_scale,    \
                               W_codes, w_scale, Z, Y)
    size_t nd, cd, nc;
    if (!cfg || !lb_sawb_grid_name(cfg->grid) || !sizes_ok(N, D, C, &nd, &cd, &nc) ||
        (nd && (!X || !X_codes)) || (cd && (!W || !W_codes)) || (nc && !Y) || !x_scale ||
        !w_scale)
        return REFERENCE();
    const int nt = lb_cpu_threads(ctx);
    lb_sawb_params pw = {cfg->c1, cfg->c2, 0, 1}, px = pw;
    lb_sawb_weight_range(cfg->grid, &pw.qn, &pw.qp);
    const int is_signed = (act_signed && *act_signed) || any_negative_par(X, (int64_t)nd, nt);
    lb_sawb_activation_range(cfg->grid, is_signed, &px.qn, &px.qp);
    if (lb_sawb_quantize_cpu(ctx, &pw, W, cd, W_codes, w_scale, NULL) != LB_OK ||
        lb_sawb_quantize_cpu(ctx, &px, X, nd, X_codes, x_scale, NULL) != LB_OK)
        return REFERENCE();
    if (bias)
        for (int64_t c = 0; c < C; c++)
            if (!isfinite(bias[c])) return REFERENCE();
    if (act_signed) *act_signed = is_signed;
    if (nc == 0) return LB_OK;
    const lb_gemm_i8_dequant dq = {Y, *x_scale * *w_scale, bias};
    return lb_cpu_gemm_i8_dequant(&cfg->gemm, ctx, 0, 1, N, C, D, X_codes, W_codes, Z, &dq, nt);
#undef REFERENCE
}

lb_status lb_qlinear_luq_backward_cpu(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                      int64_t D, int64_t C, const float *dY, const int8_t *X_codes,
                                      float x_scale, const int8_t *W_codes, float w_scale,
                                      float *dX, float *dW, float *db, float *alpha_out)
{
#define REFERENCE()                                                                            \
    lb_qlinear_luq_backward_ref(ctx, cfg, N, D, C, dY, X_codes, x_scale, W_codes, w_scale, dX, \
                                dW, db, alpha_out)
    size_t nd, cd, nc;
    if (!cfg || cfg->samples < 1 || cfg->samples > LB_LUQ_MAX_SAMPLES || !isfinite(x_scale) ||
        !isfinite(w_scale) || x_scale < 0.0f || w_scale < 0.0f ||
        cfg->luq.levels < 1 || cfg->luq.levels > LB_LUQ_MAX_LEVELS ||
        !sizes_ok(N, D, C, &nd, &cd, &nc) || (nc && !dY) || (nd && (!X_codes || !dX)) ||
        (cd && (!W_codes || !dW)))
        return REFERENCE();
    const int nt = lb_cpu_threads(ctx);
    const int S = cfg->samples, levels = cfg->luq.levels;
    const int pieces = (levels + 6) / 7; /* <= 3 (LB_LUQ_MAX_LEVELS 16) */
    /* One sample: each piece's int32 products kept and combined once at the
     * end; several: accumulated in int64 after every piece. */
    const int keep = S == 1;
    int8_t *codes = lb_alloc(nc ? nc : 1);
    int8_t *piece = lb_alloc(nc ? nc : 1);
    int32_t *px[3] = {NULL, NULL, NULL}, *pw[3] = {NULL, NULL, NULL};
    int ok = 1;
    for (int j = 0; j < (keep ? pieces : 1); j++) {
        px[j] = lb_alloc((nd ? nd : 1) * sizeof *px[j]);
        pw[j] = lb_alloc((cd ? cd : 1) * sizeof *pw[j]);
        ok = ok && px[j] && pw[j];
    }
    int64_t *zx = keep ? NULL : lb_alloc((nd ? nd : 1) * sizeof *zx);
    int64_t *zw = keep ? NULL : lb_alloc((cd ? cd : 1) * sizeof *zw);
    int64_t *zb = lb_calloc(C ? (size_t)C : 1, sizeof *zb);
    int64_t *colsum = lb_alloc((C ? (size_t)C : 1) * sizeof *colsum);
    lb_status st = LB_OK;
    if (!codes || !piece || !ok || (!keep && (!zx || !zw)) || !zb || !colsum) {
        st = REFERENCE();
        goto done;
    }
    float alpha = 0.0f;
    int np = 0;             /* kept pieces with a non-zero product (keep) */
    int64_t shifts[3];      /* their 2^(7j) */
    const int32_t *kx[3], *kw[3];
    int z_set = 0;          /* zx / zw hold a product (else they are all 0) */
    lb_luq_params p = cfg->luq;
    for (int s = 0; s < S; s++) {
        p.sample = cfg->luq.sample + (uint64_t)s;
        if (lb_luq_quantize_cpu(ctx, &p, dY, nc, codes, NULL, s == 0 ? &alpha : NULL) != LB_OK) {
            st = REFERENCE();
            goto done;
        }
        for (int j = 0; j < pieces; j++) {
            memset(colsum, 0, (size_t)C * sizeof *colsum);
            if (!piece_par(codes, N, C, j, piece, colsum, nt)) continue;
            const int64_t shift = (int64_t)1 << (7 * j);
            for (int64_t c = 0; c < C; c++) zb[c] += shift * colsum[c];
            int32_t *gx = px[keep ? j : 0], *gw = pw[keep ? j : 0];
            /* ∇X (N, D) += δ_j (N, C) · W_q (C, D); ∇W (C, D) += δ_j^T · X_q (N, D) */
            st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 0, N, D, C, piece, W_codes, gx);
            if (st == LB_OK) st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 1, 0, C, D, N, piece, X_codes, gw);
            if (st != LB_OK) goto done;
            if (keep) {
                kx[np] = gx, kw[np] = gw, shifts[np] = shift;
                np++;
                continue;
            }
            accumulate_par(zx, gx, shift, !z_set, (int64_t)nd, nt);
            accumulate_par(zw, gw, shift, !z_set, (int64_t)cd, nt);
            z_set = 1;
        }
    }
    /* one float32 scaling per result, out = fl32(c · fl32(Z)) (the reference's step 3) */
    const float Sf = (float)S;
    const float cx = (alpha * w_scale) / Sf, cw = (alpha * x_scale) / Sf, cb = alpha / Sf;
    if (keep) {
        scale_pieces_par(dX, np, kx, shifts, cx, (int64_t)nd, nt);
        scale_pieces_par(dW, np, kw, shifts, cw, (int64_t)cd, nt);
    } else {
        scale_i64_par(dX, z_set ? zx : NULL, cx, (int64_t)nd, nt);
        scale_i64_par(dW, z_set ? zw : NULL, cw, (int64_t)cd, nt);
    }
    if (db)
        for (int64_t c = 0; c < C; c++) db[c] = cb * (float)zb[c];
    if (alpha_out) *alpha_out = alpha;
done:
    lb_free(codes);
    lb_free(piece);
    for (int j = 0; j < 3; j++) lb_free(px[j]), lb_free(pw[j]);
    lb_free(zx);
    lb_free(zw);
    lb_free(zb);
    lb_free(colsum);
    return st;
#undef REFERENCE
}

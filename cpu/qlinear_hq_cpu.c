/* cpu/qlinear_hq_cpu.c — the HQ / BS / LSS linear layer of Xi et al. 2023
 * (lowbit/ref/qlinear_hq.h) on the cpu backend, same bits as the reference
 * (lowbit/cpu_qlinear.h).
 *
 * What differs from ref/qlinear_hq.c, and why the bits do not:
 *   - quantizers: lb_hq_quantize_cpu, lb_hq_init_step_cpu, lb_bit_split_cpu
 *     (which also returns the nibble rows' squared norms), lb_lss_bs_scores_cpu,
 *     lb_lsq_backward_cpu, lb_hadamard_cpu — exact by their contracts; the
 *     probabilities are the reference's function, the masks its rule with
 *     the uniform drawn only for 0 < p < 1 (u < 1 always: p = 1 keeps,
 *     p = 0 drops);
 *   - ∇W: the two kept-row GEMMs' int32 results z_hi, z_lo stay separate and
 *     one pass forms 0.0 + (double)(16·z_hi) + (double)z_lo: integer-valued
 *     doubles below 2^53, so exactly (double)(16·z_hi + z_lo), the
 *     reference's accumulator; the rows with p < 1 are then added to it in
 *     increasing r per element, each term w_r·(double)(h·x̂) taken from a
 *     table built once per (row, nibble value) — nibbles lie in [−7, 7] —
 *     (each thread owns a range of output rows and its own tables); the
 *     scaling to float is fused into the last pass;
 *   - ∇X: one pass per row forms (0.0 + A) + B with A = (double)(16·z_hi)·w_hi
 *     and B = (double)z_lo·w_lo (each present when the row was kept in that
 *     half; 0.0 + A = A since A is never −0), the reference's two
 *     accumulation steps, then the scaling to float, written straight into
 *     grad_x, where the LSQ backward then runs in place;
 *   - ∇b: each column summed in double in increasing row, threads over column
 *     blocks;
 *   - the forward's epilogue Y = fl32(s_X s_W) · fl32(Z) + b fused into the
 *     GEMM's tiles when the hook offers it (lb_gemm_i8_hook.fn_dequant),
 *     else a pass on threads.
 *   - the block search (first forward, cold start): the reference's errors
 *     with the transforms and codes from the cpu kernels; its two sums stay
 *     sequential, as the reference defines them.
 * Every elementwise loop is compiled per vector ISA (runtime/clones.h).
 */
#include "config.h"
#include "lowbit/cpu_qlinear.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/rng.h"
#include "../runtime/clones.h"
#include "loops.h"

/* Elements per task of the elementwise loops. */
#define CHUNK 16384
/* Output rows per tile of the p < 1 ∇W rows (their accumulators stay in cache). */
#define WEIGHTED_TILE 8

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static size_t nz(int64_t n) { return (size_t)(n > 0 ? n : 1); }

/* ------------------------------------------------------------ loop bodies */

/* 1 when some b[0..n) is NaN or ±Inf. */
LB_ISA_CLONES
static int any_nonfinite(const float *b, int64_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++) bad |= !(fabsf(b[i]) <= 3.40282347e38f);
    return bad;
}

/* Σ_d x[r, d]² of rows r0..r1 of x (rows, D) into sq (int64, exact). */
LB_ISA_CLONES
static void row_sums_sq(const int8_t *x, int64_t D, int64_t r0, int64_t r1, int64_t *sq)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *row = x + r * D;
        int64_t total = 0;
        for (int64_t d0 = 0; d0 < D; d0 += 65536) { /* int32 partials: |x| <= 128 */
            const int64_t m = min64(D - d0, 65536);
            int32_t part = 0;
#pragma omp simd reduction(+ : part)
            for (int64_t d = 0; d < m; d++) part += (int32_t)row[d0 + d] * (int32_t)row[d0 + d];
            total += part;
        }
        sq[r] = total;
    }
}

/* Elements [i0, i1) of the ∇W accumulator from the kept-row products:
 * (double)(16·z_hi + z_lo) (either may be NULL); `acc` (double) when rows
 * with p < 1 follow, else straight to out = fl32(scale · acc). */
LB_ISA_CLONES
static void grad_w_init(const int32_t *z_hi, const int32_t *z_lo, double scale, double *acc,
                        float *out, int64_t i0, int64_t i1)
{
    const int64_t m = LB_BS_RATIO;
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        const int64_t v = (z_hi ? m * (int64_t)z_hi[i] : 0) + (z_lo ? (int64_t)z_lo[i] : 0);
        if (acc) acc[i] = (double)v;
        else out[i] = (float)(scale * (double)v);
    }
}

/* out[i0, i1) = fl32(scale · acc). */
LB_ISA_CLONES
static void scale_to_float(const double *acc, double scale, float *out, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) out[i] = (float)(scale * acc[i]);
}

/* The tables of kept rows [r0, r1) (rows with p < 1) for the output rows
 * [c0, c1): entry e = (r − r0)·15 + (h + 7) holds, for each nibble value h
 * in [−7, 7] that occurs in row r's nibbles of those columns (the others
 * are never read), tab[e][d] = weight[r]·(double)(mult·h·x̂[rows[r], d]):
 * the reference's term, evaluated once per (row, nibble value) instead of
 * once per (row, output row). */
LB_ISA_CLONES
static void weighted_table(int64_t C, int64_t D, int64_t c0, int64_t c1, int64_t r0, int64_t r1,
                           int mult, const int8_t *nibbles, const int64_t *rows,
                           const double *weight, const int8_t *x_codes, double *tab)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *nib = nibbles + rows[r] * C; // (C)
        uint16_t present = 0;
        for (int64_t c = c0; c < c1; c++) present |= (uint16_t)(1u << (nib[c] + 7));
        const int8_t *x = x_codes + rows[r] * D; // (D)
        const double wgt = weight[r];
        for (int hv = -7; hv <= 7; hv++) {
            if (hv == 0 || !(present >> (hv + 7) & 1u)) continue;
            const int hc = mult * hv;
            double *t = tab + ((r - r0) * 15 + hv + 7) * D;
#pragma omp simd
            for (int64_t d = 0; d < D; d++) t[d] = wgt * (double)(hc * (int)x[d]);
        }
    }
}

/* Eight doubles in the compiler's generic vector extension (one AVX-512
 * register, two AVX2 ones, or four SSE2 ones). */
typedef double f64x8 __attribute__((vector_size(64)));

/* Output rows c0..c0+nc−1 of acc (C, D): for each kept row r in [r0, r1),
 * in increasing r, every c of the tile with a non-zero nibble adds its
 * table row (the reference's term; a zero nibble adds exactly +0.0 in the
 * reference, so skipping it is bit-identical). Each 64- or 32-double
 * segment of an accumulator row stays in registers across the r of the
 * block: the same additions in the same order, one load and one store per
 * segment. */
LB_ISA_CLONES
static void weighted_tile(int64_t C, int64_t D, int64_t c0, int64_t nc, int64_t r0, int64_t r1,
                          const int8_t *nibbles, const int64_t *rows, const double *tab,
                          double *acc)
{
    int8_t h[256]; /* the column's nibbles for the block's rows (chunks of 256) */
    for (int64_t k = 0; k < nc; k++) {
        double *a = acc + (c0 + k) * D; // (D)
        for (int64_t q0 = r0; q0 < r1; q0 += 256) {
            const int64_t q1 = min64(r1, q0 + 256);
            for (int64_t r = q0; r < q1; r++) h[r - q0] = nibbles[rows[r] * C + c0 + k];
            int64_t d0 = 0;
            for (; d0 + 64 <= D; d0 += 64) { /* eight independent addition chains */
                f64x8 v0, v1, v2, v3, v4, v5, v6, v7; /* named registers, not a spilled array */
                memcpy(&v0, a + d0, 64), memcpy(&v1, a + d0 + 8, 64);
                memcpy(&v2, a + d0 + 16, 64), memcpy(&v3, a + d0 + 24, 64);
                memcpy(&v4, a + d0 + 32, 64), memcpy(&v5, a + d0 + 40, 64);
                memcpy(&v6, a + d0 + 48, 64), memcpy(&v7, a + d0 + 56, 64);
                for (int64_t r = q0; r < q1; r++) {
                    const int hr = h[r - q0];
                    if (hr == 0) continue;
                    const double *t = tab + ((r - r0) * 15 + hr + 7) * D + d0;
                    f64x8 u0, u1, u2, u3, u4, u5, u6, u7;
                    memcpy(&u0, t, 64), memcpy(&u1, t + 8, 64);
                    memcpy(&u2, t + 16, 64), memcpy(&u3, t + 24, 64);
                    memcpy(&u4, t + 32, 64), memcpy(&u5, t + 40, 64);
                    memcpy(&u6, t + 48, 64), memcpy(&u7, t + 56, 64);
                    v0 += u0, v1 += u1, v2 += u2, v3 += u3;
                    v4 += u4, v5 += u5, v6 += u6, v7 += u7;
                }
                memcpy(a + d0, &v0, 64), memcpy(a + d0 + 8, &v1, 64);
                memcpy(a + d0 + 16, &v2, 64), memcpy(a + d0 + 24, &v3, 64);
                memcpy(a + d0 + 32, &v4, 64), memcpy(a + d0 + 40, &v5, 64);
                memcpy(a + d0 + 48, &v6, 64), memcpy(a + d0 + 56, &v7, 64);
            }
            for (; d0 + 32 <= D; d0 += 32) {
                f64x8 v0, v1, v2, v3;
                memcpy(&v0, a + d0, 64), memcpy(&v1, a + d0 + 8, 64);
                memcpy(&v2, a + d0 + 16, 64), memcpy(&v3, a + d0 + 24, 64);
                for (int64_t r = q0; r < q1; r++) {
                    const int hr = h[r - q0];
                    if (hr == 0) continue;
                    const double *t = tab + ((r - r0) * 15 + hr + 7) * D + d0;
                    f64x8 u0, u1, u2, u3;
                    memcpy(&u0, t, 64), memcpy(&u1, t + 8, 64);
                    memcpy(&u2, t + 16, 64), memcpy(&u3, t + 24, 64);
                    v0 += u0, v1 += u1, v2 += u2, v3 += u3;
                }
                memcpy(a + d0, &v0, 64), memcpy(a + d0 + 8, &v1, 64);
                memcpy(a + d0 + 16, &v2, 64), memcpy(a + d0 + 24, &v3, 64);
            }
            for (int64_t r = q0; r < q1 && d0 < D; r++) { /* the last D mod 32 */
                const int hr = h[r - q0];
                if (hr == 0) continue;
                const double *t = tab + ((r - r0) * 15 + hr + 7) * D;
                for (int64_t d = d0; d < D; d++) a[d] += t[d];
            }
        }
    }
}

/* acc (C, D) += the rows with p < 1 (K of them, nibbles in [−7, 7]) in
 * increasing r per element. Each thread owns a contiguous range of output
 * tiles and its own tables (blocks of kept rows whose tables fit in L2,
 * built for the nibble values its columns hold): no table line moves
 * between cores and no barrier separates the blocks. */
static int weighted_rows(int64_t K, int64_t C, int64_t D, const int8_t *nibbles, int mult,
                         const int64_t *rows, const double *weight, const int8_t *x_codes,
                         double *acc, int nt)
{
    int64_t rb = 65536 / (15 * D);
    if (rb < 1) rb = 1;
    if (rb > K) rb = K;
    const int64_t tiles = ceil_div(C, WEIGHTED_TILE);
    if (!(K * C * D >= 65536)) nt = 1;
    if (nt > tiles) nt = (int)tiles;
    if (nt < 1) nt = 1;
    const size_t per = (size_t)(rb * 15 * D);
    double *tabs = lb_alloc((size_t)nt * per * sizeof *tabs);
    if (!tabs) return 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        double *tab = tabs + (size_t)tid * per;
        const int64_t t0 = tiles * tid / nt, t1 = tiles * (tid + 1) / nt; /* static, contiguous */
        const int64_t c0 = t0 * WEIGHTED_TILE, c1 = min64(C, t1 * WEIGHTED_TILE);
        for (int64_t r0 = 0; r0 < K && c1 > c0; r0 += rb) {
            const int64_t r1 = min64(K, r0 + rb);
            weighted_table(C, D, c0, c1, r0, r1, mult, nibbles, rows, weight, x_codes, tab);
            for (int64_t t = t0; t < t1; t++)
                weighted_tile(C, D, t * WEIGHTED_TILE, min64(WEIGHTED_TILE, C - t * WEIGHTED_TILE),
                              r0, r1, nibbles, rows, tab, acc);
        }
    }
    lb_free(tabs);
    return 1;
}

/* Rows n0..n1 of G_X (N, D) into out: (0.0 + A) + B with A from the row's
 * hi product (pos_hi[n] >= 0) and B from its lo product, scaled to float. */
LB_ISA_CLONES
static void grad_x_rows(const int32_t *z_hi, const int32_t *z_lo, const int64_t *pos_hi,
                        const int64_t *pos_lo, const double *w_hi, const double *w_lo,
                        double scale, int64_t D, int64_t n0, int64_t n1, float *out)
{
    const int64_t m = LB_BS_RATIO;
    for (int64_t n = n0; n < n1; n++) {
        float *o = out + n * D;
        const int64_t ph = pos_hi[n], pl = pos_lo[n];
        if (ph >= 0 && pl >= 0) {
            const int32_t *a = z_hi + ph * D, *b = z_lo + pl * D;
            const double wa = w_hi[n], wb = w_lo[n];
#pragma omp simd
            for (int64_t d = 0; d < D; d++) {
                const double acc = (double)(m * (int64_t)a[d]) * wa + (double)(int64_t)b[d] * wb;
                o[d] = (float)(scale * acc);
            }
        } else if (ph >= 0) {
            const int32_t *a = z_hi + ph * D;
            const double wa = w_hi[n];
#pragma omp simd
            for (int64_t d = 0; d < D; d++) o[d] = (float)(scale * ((double)(m * (int64_t)a[d]) * wa));
        } else if (pl >= 0) {
            const int32_t *b = z_lo + pl * D;
            const double wb = w_lo[n];
#pragma omp simd
            for (int64_t d = 0; d < D; d++) o[d] = (float)(scale * ((double)(int64_t)b[d] * wb));
        } else {
#pragma omp simd
            for (int64_t d = 0; d < D; d++) o[d] = (float)(scale * 0.0);
        }
    }
}

/* ---------------------------------------------------------------- helpers */

/* lb_lss_sample_ref's masks and weights (mask_i = 1[u_i < p_i], weight =
 * mask / p) with the uniform u_i = lb_rng_uniform_f64(seed, stream, i)
 * drawn only where it can matter: u_i lies in [0, 1), so p_i = 1 always
 * keeps and p_i = 0 never does (the nonzero and all modes have no other
 * p). Rows on threads. Anything outside [0, 1] goes to the reference. */
static lb_status lss_sample(lb_ctx *ctx, int64_t L, const double *p, uint64_t seed,
                            uint64_t stream, uint8_t *mask, double *weight, int nt)
{
    int bad = 0;
    for (int64_t i = 0; i < L; i++) bad |= !(p[i] >= 0.0 && p[i] <= 1.0);
    if (bad) return lb_lss_sample_ref(ctx, L, p, seed, stream, mask, weight);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && L >= 4096)
    for (int64_t i = 0; i < L; i++) {
        const int keep = p[i] == 1.0 ||
                         (p[i] > 0.0 && lb_rng_uniform_f64(seed, stream, (uint64_t)i) < p[i]);
        mask[i] = (uint8_t)keep;
        weight[i] = keep ? 1.0 / p[i] : 0.0;
    }
    return LB_OK;
}

/* Grows the saved-tensor buffers of one operand to n elements (the
 * reference's rule: keep them when large enough). */
static int reserve(size_t n, size_t *capacity, int8_t **codes, float **quotient)
{
    if (n <= *capacity && *codes && *quotient) return 1;
    const size_t m = n > 0 ? n : 1;
    int8_t *c = lb_alloc(m * sizeof *c);
    float *q = lb_alloc(m * sizeof *q);
    if (!c || !q) {
        lb_free(c);
        lb_free(q);
        return 0;
    }
    lb_free(*codes);
    lb_free(*quotient);
    *codes = c;
    *quotient = q;
    *capacity = m;
    return 1;
}

static int config_ok(const lb_hq_config *cfg)
{
    return cfg && lb_lsq_range_name(cfg->range) && lb_bs_mode_name(cfg->bit_split) &&
           lb_lss_mode_name(cfg->sampling) &&
           (cfg->rounding == LB_ROUND_HALF_EVEN || cfg->rounding == LB_ROUND_HALF_AWAY) &&
           cfg->block >= 0;
}

/* Gathers rows `rows` (count K) of src (?, cols) into dst (K, cols). */
static void gather_rows(const int8_t *src, int64_t cols, const int64_t *rows, int64_t K,
                        int8_t *dst, int nt)
{
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && K * cols >= 4 * CHUNK)
    for (int64_t r = 0; r < K; r++) memcpy(dst + r * cols, src + rows[r] * cols, (size_t)cols);
}

/* t[i0..i1) = step · fl32(q) (the dequantized codes). */
LB_ISA_CLONES
static void dequantize(float *t, const int8_t *q, float step, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) t[i] = step * (float)q[i];
}

/* lb_hq_block_error_ref of x (rows, D) at `block`, same value: the
 * transforms and the codes from the cpu kernels (exact), the LSQ init sum
 * and the error's Σ d² in double in increasing index, as the reference
 * (both sequential by definition). t (rows·D floats) and q (rows·D) are
 * work buffers. Returns 0 on any error (the caller then asks the
 * reference). */
static int block_error(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                       int64_t D, int64_t block, const float *x, float *t, int8_t *q, int nt,
                       double *error)
{
    const int64_t n = rows * D;
    float step = 0.0f;
    if (lb_hadamard_cpu(ctx, rows, D, block, x, t) != LB_OK ||
        lb_lsq_init_step_ref(ctx, n, t, &step) != LB_OK ||
        /* the LSQ codes of t: an HQ pass with block 1 is the identity transform */
        lb_hq_quantize_cpu(ctx, range, rounding, rows, D, 1, t, step, LB_INT_S8, q, NULL, NULL,
                           NULL) != LB_OK)
        return 0;
    const int64_t tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tasks > 1)
    for (int64_t k = 0; k < tasks; k++) dequantize(t, q, step, k * CHUNK, min64(n, (k + 1) * CHUNK));
    if (lb_hadamard_cpu(ctx, rows, D, block, t, t) != LB_OK) return 0;
    double sse = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)t[i] - (double)x[i];
        sse += d * d;
    }
    *error = sqrt(sse);
    return 1;
}

/* lb_hq_search_block_ref's choice (the same errors, the same first
 * minimum) with block_error; 0 on any error. */
static int search_block(lb_ctx *ctx, const lb_hq_config *cfg, int64_t N, int64_t D, int64_t C,
                        const float *x, const float *w, int nt, int64_t *best_block)
{
    const int64_t max_block = cfg->max_block > 0 ? cfg->max_block : LB_HQ_MAX_BLOCK;
    const int64_t rows = N > C ? N : C;
    float *t = lb_alloc((size_t)(rows * D) * sizeof *t);
    int8_t *q = lb_alloc((size_t)(rows * D));
    int64_t best = 0;
    double best_error = 0.0;
    int ok = t && q;
    for (int k = 0; k < LB_HQ_NUM_BLOCKS && ok; k++) {
        const int64_t b = (int64_t)1 << k;
        if (b > max_block || D % b != 0) continue;
        double ex = 0.0, ew = 1.0;
        ok = block_error(ctx, cfg->range, cfg->rounding, N, D, b, x, t, q, nt, &ex) &&
             block_error(ctx, cfg->range, cfg->rounding, C, D, b, w, t, q, nt, &ew);
        const double e = ex * ew;
        if (ok && (best == 0 || e < best_error)) {
            best = b;
            best_error = e;
        }
    }
    lb_free(t);
    lb_free(q);
    *best_block = best;
    return ok && best > 0;
}

/* ----------------------------------------------------------------- layers */

lb_status lb_qlinear_hq_forward_cpu(lb_ctx *ctx, const lb_hq_config *cfg, lb_hq_state *state,
                                    int64_t N, int64_t D, int64_t C, const float *x, const float *w,
                                    const float *b, float *y, int32_t *z)
{
#define REFERENCE() lb_qlinear_hq_forward_ref(ctx, cfg, state, N, D, C, x, w, b, y, z)
    if (!config_ok(cfg) || !state || N < 0 || D < 1 || C < 0 || (N > 0 && !x) ||
        (C > 0 && !w) || (N * C > 0 && !y) || (b && any_nonfinite(b, C)))
        return REFERENCE();
    int64_t block = state->block;
    if (block == 0 && cfg->block > 0) block = cfg->block;
    const int nt = lb_cpu_threads(ctx);
    if (block == 0 && (N == 0 || C == 0 || !search_block(ctx, cfg, N, D, C, x, w, nt, &block)))
        return REFERENCE();
    if (!lb_hadamard_block_valid(D, block)) return REFERENCE();
    float sx, sw;
    if (!state->initialized) {
        if (lb_hq_init_step_cpu(ctx, N, D, block, x, &sx) != LB_OK ||
            lb_hq_init_step_cpu(ctx, C, D, block, w, &sw) != LB_OK)
            return REFERENCE();
    } else {
        sx = fabsf(state->step_x);
        sw = fabsf(state->step_w);
        if (!(isfinite(sx) && sx > 0.0f && isfinite(sw) && sw > 0.0f)) return REFERENCE();
    }
    state->has_forward = 0;
    if (!reserve((size_t)(N * D), &state->x_capacity, &state->x_codes, &state->x_quotient) ||
        !reserve((size_t)(C * D), &state->w_capacity, &state->w_codes, &state->w_quotient))
        return REFERENCE();
    /* X̂ = LSQ(X·H; s_X), Ŵ = LSQ(W·H; s_W) with the quotients (non-finite
     * input: the reference reports it) */
    if (lb_hq_quantize_cpu(ctx, cfg->range, cfg->rounding, N, D, block, x, sx, LB_INT_S8,
                           state->x_codes, state->x_quotient, NULL, NULL) != LB_OK ||
        lb_hq_quantize_cpu(ctx, cfg->range, cfg->rounding, C, D, block, w, sw, LB_INT_S8,
                           state->w_codes, state->w_quotient, NULL, NULL) != LB_OK)
        return REFERENCE();
    /* Z (N, C) = X̂ Ŵᵀ (kept only when z is given), Y = fl32(s_X s_W)·fl32(Z) + b */
    const lb_gemm_i8_dequant dq = {y, sx * sw, b};
    lb_status st = lb_cpu_gemm_i8_dequant(&cfg->gemm, ctx, 0, 1, N, C, D, state->x_codes,
                                          state->w_codes, z, &dq, nt);
    if (st == LB_OK) lb_hq_state_record_forward(state, block, sx, sw, N, D, C);
    return st;
#undef REFERENCE
}

/* The backward's work buffers (one allocation each, freed together). */
typedef struct hq_buffers {
    int8_t *hi, *lo, *ga, *gb;
    int64_t *hi_sq, *lo_sq, *x_sq, *rows, *pos_hi, *pos_lo;
    double *score, *p_w, *p_x, *wt_w, *wt_x, *wrow, *acc_w;
    uint8_t *m_w, *m_x;
    int32_t *zw_hi, *zw_lo, *zx_hi, *zx_lo;
} hq_buffers;

static void buffers_free(hq_buffers *b)
{
    void *all[] = {b->hi,  b->lo,  b->ga,   b->gb,   b->hi_sq, b->lo_sq, b->x_sq,  b->rows,
                   b->pos_hi, b->pos_lo, b->score, b->p_w, b->p_x, b->wt_w, b->wt_x, b->wrow,
                   b->acc_w, b->m_w, b->m_x, b->zw_hi, b->zw_lo, b->zx_hi, b->zx_lo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lb_free(all[i]);
}

static int buffers_alloc(hq_buffers *b, int64_t N, int64_t D, int64_t C)
{
    memset(b, 0, sizeof *b);
    const int64_t L = 2 * N;
    b->hi = lb_alloc(nz(N * C));
    b->lo = lb_alloc(nz(N * C));
    b->ga = lb_alloc(nz(N * C));
    b->gb = lb_alloc(nz(N * D));
    b->hi_sq = lb_alloc(nz(N) * sizeof(int64_t));
    b->lo_sq = lb_alloc(nz(N) * sizeof(int64_t));
    b->x_sq = lb_alloc(nz(N) * sizeof(int64_t));
    b->rows = lb_alloc(nz(N) * sizeof(int64_t));
    b->pos_hi = lb_alloc(nz(N) * sizeof(int64_t));
    b->pos_lo = lb_alloc(nz(N) * sizeof(int64_t));
    b->score = lb_alloc(nz(L) * sizeof(double));
    b->p_w = lb_alloc(nz(L) * sizeof(double));
    b->p_x = lb_alloc(nz(L) * sizeof(double));
    b->wt_w = lb_alloc(nz(L) * sizeof(double));
    b->wt_x = lb_alloc(nz(L) * sizeof(double));
    b->wrow = lb_alloc(nz(N) * sizeof(double));
    b->m_w = lb_alloc(nz(L));
    b->m_x = lb_alloc(nz(L));
    b->zw_hi = lb_alloc(nz(C * D) * sizeof(int32_t));
    b->zw_lo = lb_alloc(nz(C * D) * sizeof(int32_t));
    b->zx_hi = lb_alloc(nz(N * D) * sizeof(int32_t));
    b->zx_lo = lb_alloc(nz(N * D) * sizeof(int32_t));
    return b->hi && b->lo && b->ga && b->gb && b->hi_sq && b->lo_sq && b->x_sq && b->rows &&
           b->pos_hi && b->pos_lo && b->score && b->p_w && b->p_x && b->wt_w && b->wt_x &&
           b->wrow && b->m_w && b->m_x && b->zw_hi && b->zw_lo && b->zx_hi && b->zx_lo;
}

lb_status lb_qlinear_hq_backward_cpu(lb_ctx *ctx, const lb_hq_config *cfg, const lb_hq_state *state,
                                     uint64_t step, const float *grad_y, float *grad_x, float *grad_w,
                                     float *grad_b, float *grad_step_x, float *grad_step_w,
                                     lb_hq_backward_trace *trace)
{
#define REFERENCE()                                                                             \
    lb_qlinear_hq_backward_ref(ctx, cfg, state, step, grad_y, grad_x, grad_w, grad_b,           \
                               grad_step_x, grad_step_w, trace)
    if (!config_ok(cfg) || !state || !state->has_forward) return REFERENCE();
    const int64_t N = state->n, D = state->d, C = state->c, L = 2 * N;
    if ((N * C > 0 && !grad_y) || (N * D > 0 && !grad_x) || (C * D > 0 && !grad_w) || N == 0 ||
        C == 0)
        return REFERENCE();
    const int nt = lb_cpu_threads(ctx);
    const double budget = cfg->lss_budget > 0.0 ? cfg->lss_budget : (double)N;
    const lb_hq_streams streams = lb_hq_backward_streams(cfg->layer, step);
    const int8_t *xq = state->x_codes; // (N, D)
    const int8_t *wq = state->w_codes; // (C, D)
    hq_buffers bf;
    lb_status st = LB_OK;
    float fine = 0.0f;
    if (!buffers_alloc(&bf, N, D, C)) goto reference;

    /* 1. Bit splitting of ∇Y, with the nibble rows' squared norms. */
    if (lb_bit_split_cpu(ctx, cfg->bit_split, cfg->rounding, N, C, grad_y, NULL, cfg->seed,
                         streams.bit_split, LB_INT_S8, bf.hi, bf.lo, &fine, bf.hi_sq,
                         bf.lo_sq) != LB_OK)
        goto reference;

    /* 2. Scores, probabilities and masks of both GEMMs. */
    {
        const int64_t tasks = ceil_div(N, 256);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && N * D >= CHUNK)
        for (int64_t t = 0; t < tasks; t++) row_sums_sq(xq, D, t * 256, min64(N, (t + 1) * 256), bf.x_sq);
    }
    if (lb_lss_bs_scores_cpu(ctx, N, bf.hi_sq, bf.lo_sq, bf.x_sq, bf.score) != LB_OK ||
        lb_lss_probabilities_ref(ctx, cfg->sampling, L, bf.score, budget, bf.p_w, NULL) != LB_OK ||
        lss_sample(ctx, L, bf.p_w, cfg->seed, streams.lss_weight, bf.m_w, bf.wt_w, nt) != LB_OK ||
        lb_lss_bs_scores_cpu(ctx, N, bf.hi_sq, bf.lo_sq, NULL, bf.score) != LB_OK ||
        lb_lss_probabilities_ref(ctx, cfg->sampling, L, bf.score, budget, bf.p_x, NULL) != LB_OK ||
        lss_sample(ctx, L, bf.p_x, cfg->seed, streams.lss_input, bf.m_x, bf.wt_x, nt) != LB_OK)
        goto reference;

    /* 3. G_W = s_X s↓ A_W: the rows kept with p = 1, one int GEMM per half,
     * then the rows with p < 1 (rank-1 terms weighted by 1/p). */
    const int32_t *zw[2] = {NULL, NULL};
    int weighted = 0;
    for (int half = 0; half < 2; half++) {
        const int8_t *nib = half == 0 ? bf.hi : bf.lo;
        int64_t K = 0;
        for (int64_t i = 0; i < N; i++) {
            const int64_t r = half * N + i;
            if (bf.m_w[r] && bf.p_w[r] == 1.0) bf.rows[K++] = i;
            else if (bf.m_w[r]) weighted = 1;
        }
        if (K == 0 || D == 0) continue;
        gather_rows(nib, C, bf.rows, K, bf.ga, nt);
        gather_rows(xq, D, bf.rows, K, bf.gb, nt);
        int32_t *out = half == 0 ? bf.zw_hi : bf.zw_lo;
        /* (C, D) = ga^T (C, K) · gb (K, D) */
        if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 1, 0, C, D, K, bf.ga, bf.gb, out)) != LB_OK)
            goto done;
        zw[half] = out;
    }
    const double sxs = (double)state->used_step_x * (double)fine;
    if (weighted && !(bf.acc_w = lb_alloc(nz(C * D) * sizeof(double)))) goto reference;
    {
        const int64_t n = C * D, tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tasks > 1)
        for (int64_t t = 0; t < tasks; t++)
            grad_w_init(zw[0], zw[1], sxs, bf.acc_w, grad_w, t * CHUNK, min64(n, (t + 1) * CHUNK));
    }
    if (weighted) {
        for (int half = 0; half < 2; half++) {
            const int8_t *nib = half == 0 ? bf.hi : bf.lo;
            const int mult = half == 0 ? LB_BS_RATIO : 1;
            int64_t K = 0;
            for (int64_t i = 0; i < N; i++) {
                const int64_t r = half * N + i;
                if (!bf.m_w[r] || bf.p_w[r] == 1.0) continue;
                bf.rows[K] = i;
                bf.wrow[K++] = bf.wt_w[r];
            }
            if (K == 0 || D == 0) continue;
            if (!weighted_rows(K, C, D, nib, mult, bf.rows, bf.wrow, xq, bf.acc_w, nt))
                goto reference;
        }
        const int64_t n = C * D, tasks = ceil_div(n, CHUNK);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tasks > 1)
        for (int64_t t = 0; t < tasks; t++)
            scale_to_float(bf.acc_w, sxs, grad_w, t * CHUNK, min64(n, (t + 1) * CHUNK));
    }

    /* 4. G_X = s_W s↓ A_X: int GEMMs over the kept rows of each half; the
     * rows' weights scale the products, hi before lo. */
    const int32_t *zx[2] = {NULL, NULL};
    for (int half = 0; half < 2; half++) {
        const int8_t *nib = half == 0 ? bf.hi : bf.lo;
        int64_t *pos = half == 0 ? bf.pos_hi : bf.pos_lo;
        int64_t K = 0;
        for (int64_t i = 0; i < N; i++) {
            pos[i] = bf.m_x[half * N + i] ? K : -1;
            if (bf.m_x[half * N + i]) bf.rows[K++] = i;
        }
        if (K == 0 || D == 0) {
            for (int64_t i = 0; i < N; i++) pos[i] = -1;
            continue;
        }
        gather_rows(nib, C, bf.rows, K, bf.ga, nt);
        int32_t *out = half == 0 ? bf.zx_hi : bf.zx_lo;
        /* (K, D) = ga (K, C) · Ŵ (C, D) */
        if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 0, K, D, C, bf.ga, wq, out)) != LB_OK)
            goto done;
        zx[half] = out;
    }
    const double sws = (double)state->used_step_w * (double)fine;
    {
        const int64_t rows = CHUNK / (D > 0 ? D : 1) + 1, tasks = ceil_div(N, rows);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tasks > 1)
        for (int64_t t = 0; t < tasks; t++)
            grad_x_rows(zx[0], zx[1], bf.pos_hi, bf.pos_lo, bf.wt_x, bf.wt_x + N, sws, D,
                        t * rows, min64(N, (t + 1) * rows), grad_x);
    }
    if (trace) {
        if (trace->grad_x_hadamard) memcpy(trace->grad_x_hadamard, grad_x, (size_t)(N * D) * sizeof(float));
        if (trace->grad_w_hadamard) memcpy(trace->grad_w_hadamard, grad_w, (size_t)(C * D) * sizeof(float));
    }

    /* 5–6. LSQ masks and step gradients in the Hadamard domain (in place),
     * then ·H. */
    float gsx = 0.0f, gsw = 0.0f;
    if (lb_cpu_lsq_backward_inplace(ctx, cfg->range, cfg->rounding, N * D, state->x_quotient,
                                    grad_x, &gsx) != LB_OK ||
        lb_cpu_lsq_backward_inplace(ctx, cfg->range, cfg->rounding, C * D, state->w_quotient,
                                    grad_w, &gsw) != LB_OK ||
        lb_hadamard_cpu(ctx, N, D, state->block, grad_x, grad_x) != LB_OK ||
        lb_hadamard_cpu(ctx, C, D, state->block, grad_w, grad_w) != LB_OK)
        goto reference;
    if (grad_step_x) *grad_step_x = gsx;
    if (grad_step_w) *grad_step_w = gsw;

    /* 7. Bias gradient (float, not quantized). */
    if (grad_b) lb_cpu_column_sums(grad_b, grad_y, N, C, 0, nt);

    if (trace) {
        trace->fine_scale = fine;
        if (trace->hi) memcpy(trace->hi, bf.hi, (size_t)(N * C));
        if (trace->lo) memcpy(trace->lo, bf.lo, (size_t)(N * C));
        if (trace->p_weight) memcpy(trace->p_weight, bf.p_w, (size_t)L * sizeof(double));
        if (trace->p_input) memcpy(trace->p_input, bf.p_x, (size_t)L * sizeof(double));
        if (trace->mask_weight) memcpy(trace->mask_weight, bf.m_w, (size_t)L);
        if (trace->mask_input) memcpy(trace->mask_input, bf.m_x, (size_t)L);
    }
    goto done;
reference:
    /* an input or a state the fast path does not take, or no memory: the
     * reference computes everything again and reports its own status */
    st = REFERENCE();
done:
    buffers_free(&bf);
    return st;
#undef REFERENCE
}

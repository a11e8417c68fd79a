/* models/backend_cpu.c — the "cpu" backend: OpenMP threads and OpenBLAS.
 *
 * Each operation is split over threads with `schedule(static)` on an axis
 * that is NOT reduced: rows for row-wise ops, channels for column sums
 * (LayerNorm/bias/embedding gradients), (batch, head) pairs for attention.
 * No sum is ever split between threads, so the results do not depend on the
 * thread count (the sgemm calls excepted, see below). The per-task loops are
 * compiled once per vector ISA (runtime/clones.h); their elementwise
 * expressions and sequential sums give the same bits on every clone. The
 * attention pairs' vectorised accumulations (c += y·v over the features)
 * are elementwise too.
 *
 * Most operations are the reference loop nests of models/layers_impl.h and
 * are bit-identical to "ref". Three differ, for speed, within a tolerance
 * checked by tests/test_layers.c:
 *   - GELU: erf from a vectorisable approximation (Abramowitz & Stegun
 *     7.1.26 with a polynomial exp; |error| < 3e-7 absolute in erf), so
 *     GELU and its derivative match ref within 1e-6 (abs) + 1e-6 |x|;
 *   - attention: the dot products over head features are summed in eight
 *     lanes added as a fixed tree (dot_simd: another order than ref's, the
 *     same on every ISA), or, from 32 tokens on with OpenBLAS, the matmuls
 *     of each (batch, head) are sgemm calls; exp of the scores uses the same
 *     polynomial exp: within 1e-5 + 1e-4 |ref|;
 *   - linear layers with OpenBLAS (below).
 *
 * With OpenBLAS (HAVE_OPENBLAS) the three matmuls of a linear layer are
 * cblas_sgemm calls; their sums run in OpenBLAS's blocked order, so linear
 * layers match ref within rounding (tests/test_layers.c: 1e-5 + 1e-4 |ref|)
 * and are reproducible at a fixed thread count. Without OpenBLAS the linear
 * layers are ref's loops split over rows / output channels (bit-identical).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "lowbit/backend.h"
#include "../runtime/clones.h"

/* The serial reference kernels, reused per thread below; not all are used. */
#pragma GCC diagnostic ignored "-Wunused-function"
typedef float real;
#define FN(name) name##_serial
#define R_SQRT sqrtf
#define R_EXP expf
#define R_LOG logf
#define R_ERF erff
#include "layers_impl.h"

/* Below this many output elements an op runs on one thread (the fork/join
 * would cost more than the work). */
#define PAR_MIN 32768
/* Channels per task in column-sum reductions. */
#define COL_CHUNK 64

int lb_backend_cpu_has_blas(void)
{
#ifdef HAVE_OPENBLAS
    return 1;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------ linear */

static void linear_forward_cpu(float *out, const float *inp, const float *weight,
                               const float *bias, int64_t N, int64_t C, int64_t OC)
{
#ifdef HAVE_OPENBLAS
    // out (N, OC) = inp (N, C) . weight (OC, C)^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)N, (blasint)OC, (blasint)C,
                1.0f, inp, (blasint)C, weight, (blasint)C, 0.0f, out, (blasint)OC);
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) out[n * OC + o] += bias[o];
    }
#else
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) linear_forward_serial(out + n * OC, inp + n * C, weight, bias, 1, C, OC);
#endif
}

/* Columns o0..o1-1 of bias_backward_cpu (independent columns: the same bits
 * on every ISA clone). */
LB_ISA_CLONES
static void bias_backward_chunk(float *dbias, const float *dout, int64_t N, int64_t OC, int64_t o0,
                                int64_t o1)
{
    float acc[COL_CHUNK] = {0};
    for (int64_t n = 0; n < N; n++) {
        const float *row = dout + n * OC;
#pragma omp simd
        for (int64_t o = o0; o < o1; o++) acc[o - o0] += row[o];
    }
    for (int64_t o = o0; o < o1; o++) dbias[o] += acc[o - o0];
}

/* dbias (OC) += column sums of dout (N, OC), in row order per column. */
static void bias_backward_cpu(float *dbias, const float *dout, int64_t N, int64_t OC)
{
    const int64_t chunks = (OC + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
    for (int64_t c = 0; c < chunks; c++)
        bias_backward_chunk(dbias, dout, N, OC, c * COL_CHUNK,
                            c * COL_CHUNK + COL_CHUNK < OC ? c * COL_CHUNK + COL_CHUNK : OC);
}

static void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int64_t N, int64_t C,
                                int64_t OC)
{
#ifdef HAVE_OPENBLAS
    // dinp (N, C) += dout (N, OC) . weight (OC, C)
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, (blasint)C,
                    (blasint)OC, 1.0f, dout, (blasint)OC, weight, (blasint)C, 1.0f, dinp,
                    (blasint)C);
    // dweight (OC, C) += dout^T (OC, N) . inp (N, C)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)OC, (blasint)C, (blasint)N,
                1.0f, dout, (blasint)OC, inp, (blasint)C, 1.0f, dweight, (blasint)C);
#else
    if (dinp) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
        for (int64_t n = 0; n < N; n++) {
            const float *dy = dout + n * OC;
            float *dx = dinp + n * C;
            for (int64_t o = 0; o < OC; o++)
                for (int64_t i = 0; i < C; i++) dx[i] += dy[o] * weight[o * C + i];
        }
    }
#pragma omp parallel for schedule(static) if (OC * C >= PAR_MIN)
    for (int64_t o = 0; o < OC; o++) {
        float *dw = dweight + o * C;
        for (int64_t n = 0; n < N; n++) {
            const float d = dout[n * OC + o];
            for (int64_t i = 0; i < C; i++) dw[i] += d * inp[n * C + i];
        }
    }
#endif
    if (dbias) bias_backward_cpu(dbias, dout, N, OC);
}

/* --------------------------------------------------------------- layernorm */

static void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int64_t N, int64_t C,
                                  float eps)
{
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        layernorm_forward_serial(out + n * C, mean + n, rstd + n, inp + n * C, weight, bias, 1,
                                 C, eps);
}

/* The input gradient of one row: ref's loop (layers_impl.h), inlined into
 * each ISA clone; its sums are sequential, so every clone gives ref's bits. */
LB_ISA_CLONES
static void layernorm_backward_row(float *dx, const float *dy, const float *x,
                                   const float *weight, float m, float s, int64_t C)
{
    layernorm_backward_row_serial(dx, dy, x, weight, m, s, C);
}

/* Channels i0..i1-1 of the LayerNorm parameter gradients, rows in order. */
LB_ISA_CLONES
static void layernorm_params_backward_chunk(float *dweight, float *dbias, const float *dout,
                                            const float *inp, const float *mean,
                                            const float *rstd, int64_t N, int64_t C, int64_t i0,
                                            int64_t i1)
{
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        const float m = mean[n], s = rstd[n];
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            dweight[i] += (x[i] - m) * s * dy[i];
            dbias[i] += dy[i];
        }
    }
}

static void layernorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int64_t N, int64_t C)
{
    const int64_t chunks = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel if (N * C >= PAR_MIN)
    {
        // input gradient: row by row (the same loop as ref)
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++)
            layernorm_backward_row(dinp + n * C, dout + n * C, inp + n * C, weight, mean[n],
                                   rstd[n], C);
        // parameter gradients: channel chunks, rows in order (as ref)
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++)
            layernorm_params_backward_chunk(dweight, dbias, dout, inp, mean, rstd, N, C,
                                            c * COL_CHUNK,
                                            c * COL_CHUNK + COL_CHUNK < C ? c * COL_CHUNK + COL_CHUNK : C);
    }
}

/* ------------------------------------------------------------- elementwise */

/* e^x for x <= 0 (x < -87 gives ~0): 2^k e^r with k = round(x / ln 2) by the
 * 1.5 * 2^23 trick, r = x - k ln 2 in [-ln2/2, ln2/2] (ln 2 split in two
 * parts), e^r by its degree-6 Taylor polynomial (relative error < 2e-7).
 * Written without libm calls or branches so that loops over it vectorise. */
static inline float exp_neg_fast(float x)
{
    x = x < -87.0f ? -87.0f : x; // NaN passes through
    /* t = 1.5·2^23 + k: in [2^23, 2^24) the float spacing is 1, so the
     * addition rounds x/ln 2 to the integer k, which t's low mantissa bits
     * hold as 0x4B400000 + k; read from the bits, k needs no float-to-int
     * conversion (undefined for the NaN of a NaN x, where p is NaN anyway) */
    union {
        float f;
        uint32_t u;
    } t = {.f = x * 1.44269504f + 12582912.0f};
    const float k = t.f - 12582912.0f;
    const float r = (x - k * 0.693145752f) - k * 1.42860677e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        uint32_t u;
        float f;
    } two_k = {.u = (t.u - 0x4B400000u + 127u) << 23}; /* 2^k, k >= -126 */
    return p * two_k.f;
}

/* GELU cdf 0.5 (1 + erf(x / sqrt 2)) and pdf exp(-x^2/2) / sqrt(2 pi), with
 * erf(z) = 1 - t (a1 + t (a2 + ...)) e^{-z^2}, t = 1 / (1 + p |z|)
 * (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7) and the sign restored. */
static inline void gelu_cdf_pdf(float x, float *cdf, float *pdf)
{
    const float z = x * 0.707106781f;
    const float az = fabsf(z);
    const float t = 1.0f / (1.0f + 0.3275911f * az);
    const float e = exp_neg_fast(-az * az); // = sqrt(2 pi) pdf
    const float poly =
        t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    *cdf = 0.5f * (1.0f + copysignf(1.0f - poly * e, z));
    *pdf = 0.398942280f * e;
}

/* Elements i0..i1-1 of the GELU forward / backward (elementwise: the same
 * bits on every ISA clone). */
LB_ISA_CLONES
static void gelu_forward_range(float *out, const float *inp, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float cdf, pdf;
        gelu_cdf_pdf(inp[i], &cdf, &pdf);
        out[i] = inp[i] * cdf;
    }
}

LB_ISA_CLONES
static void gelu_backward_range(float *dinp, const float *inp, const float *dout, int64_t i0,
                                int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float cdf, pdf;
        gelu_cdf_pdf(inp[i], &cdf, &pdf);
        dinp[i] += (cdf + inp[i] * pdf) * dout[i];
    }
}

static void gelu_forward_cpu(float *out, const float *inp, int64_t n)
{
    const int64_t chunks = (n + PAR_MIN - 1) / PAR_MIN;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++)
        gelu_forward_range(out, inp, c * PAR_MIN, (c + 1) * PAR_MIN < n ? (c + 1) * PAR_MIN : n);
}

static void gelu_backward_cpu(float *dinp, const float *inp, const float *dout, int64_t n)
{
    const int64_t chunks = (n + PAR_MIN - 1) / PAR_MIN;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++)
        gelu_backward_range(dinp, inp, dout, c * PAR_MIN,
                            (c + 1) * PAR_MIN < n ? (c + 1) * PAR_MIN : n);
}

static void add_cpu(float *out, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void add_broadcast_cpu(float *out, const float *row, int64_t B, int64_t n)
{
#pragma omp parallel for schedule(static) if (B * n >= 4 * PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++) out[b * n + i] += row[i];
}

static void sum_rows_cpu(float *drow, const float *dout, int64_t B, int64_t n)
{
    const int64_t chunks = (n + COL_CHUNK * 16 - 1) / (COL_CHUNK * 16);
#pragma omp parallel for schedule(static) if (B * n >= 4 * PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * COL_CHUNK * 16;
        const int64_t i1 = i0 + COL_CHUNK * 16 < n ? i0 + COL_CHUNK * 16 : n;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = i0; i < i1; i++) drow[i] += dout[b * n + i];
    }
}

static void embedding_forward_cpu(float *out, const int32_t *ids, const float *table, int64_t N,
                                  int64_t C)
{
#pragma omp parallel for schedule(static) if (N * C >= 4 * PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * C, table + (int64_t)ids[n] * C, (size_t)C * sizeof(float));
}

static void embedding_backward_cpu(float *dtable, const float *dout, const int32_t *ids,
                                   int64_t N, int64_t C)
{
    // channel chunks; tokens in order, so repeated ids add up as in ref
    const int64_t chunks = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * COL_CHUNK, i1 = i0 + COL_CHUNK < C ? i0 + COL_CHUNK : C;
        for (int64_t n = 0; n < N; n++) {
            float *row = dtable + (int64_t)ids[n] * C;
            for (int64_t i = i0; i < i1; i++) row[i] += dout[n * C + i];
        }
    }
}

static void meanpool_forward_cpu(float *out, const float *inp, const uint8_t *mask, int64_t B,
                                 int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static) if (B * T * C >= PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        meanpool_forward_serial(out + b * C, inp + b * T * C, mask ? mask + b * T : NULL, 1, T, C);
}

static void meanpool_backward_cpu(float *dinp, const float *dout, const uint8_t *mask, int64_t B,
                                  int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static) if (B * T * C >= PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        meanpool_backward_serial(dinp + b * T * C, dout + b * C, mask ? mask + b * T : NULL, 1,
                                 T, C);
}

/* --------------------------------------------------------------- attention */

/* Attention, one (b, h) pair per task; the same math as ref's
 * attention_forward_head / attention_backward_head with vectorised dot
 * products and the polynomial exp. */

/* Σ a_i b_i in eight partial sums (lane i mod 8, each in increasing i), added
 * as a fixed tree: one order on every ISA (a vector of 8 or 16 floats, or
 * none), with no horizontal reduction chain after the short head-size loops. */
static inline float dot_simd(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* Sixteen floats in the compiler's generic vector extension (one AVX-512
 * register, two AVX2 ones, four SSE2 ones). */
typedef float f32x16 __attribute__((vector_size(64)));

/* Keys per batch of add_weighted_rows. */
#define KEY_BATCH 64

/* c (hs) += Σ_k ys[k] · rows[js[k]] (rows at stride ld), every element
 * summed in increasing k: the loop "for k: c[i] += ys[k]·row[i]" with each
 * 16-float segment of c held in a register across the k (no store/load
 * round trip per key). */
static inline void add_weighted_rows(float *c, const float *rows, int64_t ld, const int32_t *js,
                                     const float *ys, int m, int64_t hs)
{
    int64_t i0 = 0;
    for (; i0 + 16 <= hs; i0 += 16) {
        f32x16 acc;
        memcpy(&acc, c + i0, sizeof acc);
        for (int k = 0; k < m; k++) {
            f32x16 r;
            memcpy(&r, rows + js[k] * ld + i0, sizeof r);
            acc += ys[k] * r;
        }
        memcpy(c + i0, &acc, sizeof acc);
    }
    for (; i0 < hs; i0++) {
        float a = c[i0];
        for (int k = 0; k < m; k++) a += ys[k] * rows[js[k] * ld + i0];
        c[i0] = a;
    }
}

static inline int key_ok(const lb_attention_shape *s, const uint8_t *key_mask, int64_t b,
                         int64_t t, int64_t j)
{
    return !(s->causal && j > t) && !(key_mask && !key_mask[b * s->T + j]);
}

static inline float clip_weight(const lb_attention_shape *s, float p)
{
    if (!s->clipped) return p;
    const float y = (s->zeta - s->gamma) * p + s->gamma;
    return y < 0 ? 0.0f : (y > 1 ? 1.0f : y);
}

/* Gated attention (Bondarenko et al. 2023, the gate of head h at token t):
 * π = sigmoid(x_t·w_h + b_h) in the stable form, stored in gate, and the
 * head's output o = π·c from its context row c (hs values). Shared by the
 * loop and the BLAS variants. */
static inline void gate_forward_row(const lb_attention_shape *s, int64_t bh, int64_t t,
                                    const float *c, float *out, float *gate, const float *gate_in,
                                    const float *gate_w, const float *gate_b)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH, b = bh / NH, h = bh % NH;
    const float z = dot_simd(gate_in + (b * T + t) * C + h * hs, gate_w + h * hs, hs) + gate_b[h];
    const float pi = z >= 0 ? 1.0f / (1.0f + exp_neg_fast(-z))
                            : exp_neg_fast(z) / (1.0f + exp_neg_fast(z));
    gate[bh * T + t] = pi;
    float *o = out + (b * T + t) * C + h * hs;
    for (int64_t i = 0; i < hs; i++) o[i] = pi * c[i];
}

/* The gate's backward at token t of head h from the output gradient dy
 * (hs values): the logit gradient dz = π(1 − π)·(dy·c) into dgate_logit,
 * dz·w_h added to the gate input's gradient; returns π (the context's
 * gradient is π·dy). */
static inline float gate_backward_row(const lb_attention_shape *s, int64_t bh, int64_t t,
                                      const float *dy, const float *context, const float *gate,
                                      const float *gate_w, float *dgate_logit, float *dgate_in)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH, b = bh / NH, h = bh % NH;
    const float pi = gate[bh * T + t];
    const float dz = pi * (1 - pi) * dot_simd(dy, context + (b * T + t) * C + h * hs, hs);
    dgate_logit[bh * T + t] = dz;
    float *dx = dgate_in + (b * T + t) * C + h * hs;
    const float *w = gate_w + h * hs;
    for (int64_t i = 0; i < hs; i++) dx[i] += dz * w[i];
    return pi;
}

/* One (b, h) pair of attention_forward_cpu (its dot products are omp simd
 * reductions: their order follows the ISA clone, within the tolerance above). */
LB_ISA_CLONES
static void attention_forward_pair(int64_t bh, float *out, float *probs, float *context,
                                   float *gate, const float *qkv, const uint8_t *key_mask,
                                   const float *gate_in, const float *gate_w,
                                   const float *gate_b, const lb_attention_shape *s)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int64_t b = bh / NH, h = bh % NH;
    for (int64_t t = 0; t < T; t++) {
        float *p = probs + (bh * T + t) * T;                  // (T)
        const float *q = qkv + (b * T + t) * 3 * C + h * hs;  // (hs)
        float maxval = -INFINITY;
        int any = 0;
        for (int64_t j = 0; j < T; j++) {
            p[j] = 0;
            if (!key_ok(s, key_mask, b, t, j)) continue;
            p[j] = dot_simd(q, qkv + (b * T + j) * 3 * C + C + h * hs, hs) * scale;
            maxval = any && maxval >= p[j] ? maxval : p[j];
            any = 1;
        }
        float *c = (s->gated ? context : out) + (b * T + t) * C + h * hs; // (hs)
        for (int64_t i = 0; i < hs; i++) c[i] = 0;
        if (any) {
            float sum = 0;
            for (int64_t j = 0; j < T; j++) {
                if (!key_ok(s, key_mask, b, t, j)) continue;
                p[j] = exp_neg_fast(p[j] - maxval);
                sum += p[j];
            }
            const float inv = 1.0f / sum;
            /* c = Σ_j y_j v_j over the allowed keys, in increasing j */
            const float *v = qkv + b * T * 3 * C + 2 * C + h * hs; // rows at stride 3C
            int32_t js[KEY_BATCH];
            float ys[KEY_BATCH];
            int m = 0;
            for (int64_t j = 0; j < T; j++) {
                if (!key_ok(s, key_mask, b, t, j)) continue;
                p[j] *= inv;
                js[m] = (int32_t)j;
                ys[m++] = clip_weight(s, p[j]);
                if (m == KEY_BATCH) add_weighted_rows(c, v, 3 * C, js, ys, m, hs), m = 0;
            }
            add_weighted_rows(c, v, 3 * C, js, ys, m, hs);
        }
        if (s->gated) gate_forward_row(s, bh, t, c, out, gate, gate_in, gate_w, gate_b);
    }
}

static void attention_forward_cpu(float *out, float *probs, float *context, float *gate,
                                  const float *qkv, const uint8_t *key_mask, const float *gate_in,
                                  const float *gate_w, const float *gate_b,
                                  const lb_attention_shape *s)
{
    const int64_t T = s->T, hs = s->C / s->NH, BH = s->B * s->NH;
#pragma omp parallel for schedule(static) if (BH * T * T * hs >= 8 * PAR_MIN)
    for (int64_t bh = 0; bh < BH; bh++)
        attention_forward_pair(bh, out, probs, context, gate, qkv, key_mask, gate_in, gate_w,
                               gate_b, s);
}

/* One (b, h) pair of attention_backward_cpu (same tolerance as the forward). */
LB_ISA_CLONES
static void attention_backward_pair(int64_t bh, float *dqkv, float *dgate_in, float *dgate_logit,
                                    float *u_all, const float *dout, const float *qkv,
                                    const float *probs, const float *context, const float *gate,
                                    const uint8_t *key_mask, const float *gate_w,
                                    const lb_attention_shape *s)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const float stretch = s->zeta - s->gamma;
    const int64_t b = bh / NH, h = bh % NH;
    float *u = u_all + bh * T;
    for (int64_t t = 0; t < T; t++) {
        const float *p = probs + (bh * T + t) * T;
        const float *dy_out = dout + (b * T + t) * C + h * hs;
        const float pi = s->gated ? gate_backward_row(s, bh, t, dy_out, context, gate, gate_w,
                                                      dgate_logit, dgate_in)
                                  : 1.0f;
        float pu = 0;
        for (int64_t j = 0; j < T; j++) {
            u[j] = 0;
            if (!key_ok(s, key_mask, b, t, j)) continue;
            const float y = clip_weight(s, p[j]);
            const float *v = qkv + (b * T + j) * 3 * C + 2 * C + h * hs;
            float *dv = dqkv + (b * T + j) * 3 * C + 2 * C + h * hs;
#pragma omp simd
            for (int64_t i = 0; i < hs; i++) dv[i] += y * (pi * dy_out[i]);
            float dydj = pi * dot_simd(dy_out, v, hs);
            if (s->clipped) {
                const float sj = stretch * p[j] + s->gamma;
                dydj = (sj >= 0 && sj <= 1) ? stretch * dydj : 0.0f;
            }
            u[j] = dydj;
            pu += dydj * p[j];
        }
        const float *q = qkv + (b * T + t) * 3 * C + h * hs;
        float *dq = dqkv + (b * T + t) * 3 * C + h * hs;
        /* dk_j += dx_j q for each key; dq += Σ_j dx_j k_j in increasing j */
        const float *k = qkv + b * T * 3 * C + C + h * hs; // rows at stride 3C
        int32_t js[KEY_BATCH];
        float dxs[KEY_BATCH];
        int m = 0;
        for (int64_t j = 0; j < T; j++) {
            if (!key_ok(s, key_mask, b, t, j)) continue;
            const float dx = p[j] * (u[j] - pu) * scale;
            float *dk = dqkv + (b * T + j) * 3 * C + C + h * hs;
#pragma omp simd
            for (int64_t i = 0; i < hs; i++) dk[i] += dx * q[i];
            js[m] = (int32_t)j;
            dxs[m++] = dx;
            if (m == KEY_BATCH) add_weighted_rows(dq, k, 3 * C, js, dxs, m, hs), m = 0;
        }
        add_weighted_rows(dq, k, 3 * C, js, dxs, m, hs);
    }
}

static void attention_backward_cpu(float *dqkv, float *dgate_in, float *dgate_w, float *dgate_b,
                                   float *scratch, const float *dout, const float *qkv,
                                   const float *probs, const float *context, const float *gate,
                                   const uint8_t *key_mask, const float *gate_in,
                                   const float *gate_w, const lb_attention_shape *s)
{
    const int64_t B = s->B, T = s->T, C = s->C, NH = s->NH, hs = C / NH, BH = B * NH;
    float *dgate_logit = scratch;      // (B, NH, T)
    float *u_all = scratch + BH * T;   // (B, NH, T)
#pragma omp parallel for schedule(static) if (BH * T * T * hs >= 8 * PAR_MIN)
    for (int64_t bh = 0; bh < BH; bh++)
        attention_backward_pair(bh, dqkv, dgate_in, dgate_logit, u_all, dout, qkv, probs, context,
                                gate, key_mask, gate_w, s);
    if (s->gated) {
#pragma omp parallel for schedule(static) if (B * T * C >= 4 * PAR_MIN)
        for (int64_t h = 0; h < NH; h++)
            attention_gate_params_backward_serial(dgate_w, dgate_b, dgate_logit, gate_in, s, h);
    }
}

#ifdef HAVE_OPENBLAS
/* Attention with the three matmuls of each (b, h) as single-threaded sgemm
 * calls (OpenBLAS's OpenMP build runs a call made inside a parallel region on
 * the calling thread): S = Q K^T, C = P V forward; dV = P^T dC, dP = dC V^T,
 * dQ = dS K, dK = dS^T Q backward. The row-wise softmax, clip and gate are
 * the loops above. Same tolerance against ref as the loop version. */

/* Row-wise masked softmax of S (T, T) in place (scores -> p); rows of p.
 * Vectorised per ISA clone: the max is exact in any order, the exp is
 * elementwise, the sum runs in eight fixed lanes. */
LB_ISA_CLONES
static void softmax_rows(float *S, const lb_attention_shape *s, const uint8_t *key_mask,
                         int64_t b, float scale)
{
    const int64_t T = s->T;
    const uint8_t *km = key_mask ? key_mask + b * T : NULL;
    for (int64_t t = 0; t < T; t++) {
        float *p = S + t * T;
        const int64_t jn = s->causal ? t + 1 : T; /* keys j >= jn are never allowed */
        float maxval = -INFINITY;
        int any = 0;
#pragma omp simd reduction(max : maxval) reduction(| : any)
        for (int64_t j = 0; j < jn; j++) {
            const int ok = !km || km[j];
            p[j] *= scale;
            maxval = ok && p[j] > maxval ? p[j] : maxval;
            any |= ok;
        }
        /* exp of the allowed scores (0 elsewhere), summed in eight lanes
         * combined by a fixed tree (dot_simd's order): the same bits on
         * every ISA clone */
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j0 = 0;
        /* two copies of the loop: with the mask pointer tested inside it the
         * compiler keeps it scalar */
        if (km) {
            for (; j0 + 8 <= T; j0 += 8)
                for (int l = 0; l < 8; l++) {
                    const int64_t j = j0 + l;
                    const float e = exp_neg_fast(p[j] - maxval);
                    p[j] = (j < jn) & (km[j] != 0) ? e : 0.0f;
                    acc[l] += p[j];
                }
        } else {
            for (; j0 + 8 <= T; j0 += 8)
                for (int l = 0; l < 8; l++) {
                    const int64_t j = j0 + l;
                    const float e = exp_neg_fast(p[j] - maxval);
                    p[j] = j < jn ? e : 0.0f;
                    acc[l] += p[j];
                }
        }
        for (int l = 0; j0 + l < T; l++) {
            const int64_t j = j0 + l;
            const int ok = j < jn && (!km || km[j]);
            p[j] = ok ? exp_neg_fast(p[j] - maxval) : 0.0f;
            acc[l] += p[j];
        }
        const float sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        const float inv = any ? 1.0f / sum : 0.0f;
#pragma omp simd
        for (int64_t j = 0; j < T; j++) p[j] *= inv;
    }
}

/* The softmax (and clip) backward of the rows of dP (T, T) in place: with
 * u = dP·(clip gate), dS_j = p_j (u_j − Σ_i u_i p_i) / sqrt(hs); u_j = 0
 * for a masked key. Compiled per ISA; the sum in eight fixed lanes. */
LB_ISA_CLONES
static void softmax_rows_backward(float *dP, const float *P, const lb_attention_shape *s,
                                  const uint8_t *key_mask, int64_t b, float scale)
{
    const int64_t T = s->T;
    const uint8_t *km = key_mask ? key_mask + b * T : NULL;
    const float stretch = s->zeta - s->gamma, gamma = s->gamma;
    for (int64_t t = 0; t < T; t++) {
        const float *p = P + t * T;
        float *u = dP + t * T;
        const int64_t jn = s->causal ? t + 1 : T; /* keys j >= jn are never allowed */
#pragma omp simd
        for (int64_t j = 0; j < T; j++) {
            const int ok = (j < jn) & (!km || km[j] != 0);
            float uj = u[j];
            if (s->clipped) {
                const float sj = stretch * p[j] + gamma;
                uj = (sj >= 0) & (sj <= 1) ? stretch * uj : 0.0f;
            }
            u[j] = ok ? uj : 0.0f;
        }
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j0 = 0;
        for (; j0 + 8 <= T; j0 += 8)
            for (int l = 0; l < 8; l++) acc[l] += u[j0 + l] * p[j0 + l];
        for (int l = 0; j0 + l < T; l++) acc[l] += u[j0 + l] * p[j0 + l];
        const float pu = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
#pragma omp simd
        for (int64_t j = 0; j < T; j++) u[j] = p[j] * (u[j] - pu) * scale;
    }
}

static void attention_forward_blas(float *out, float *probs, float *context, float *gate,
                                   const float *qkv, const uint8_t *key_mask,
                                   const float *gate_in, const float *gate_w, const float *gate_b,
                                   const lb_attention_shape *s)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH, BH = s->B * NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const blasint ld3 = (blasint)(3 * C);
#pragma omp parallel for schedule(static) if (BH * T * T * hs >= 8 * PAR_MIN)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * 3 * C + h * hs;  // (T, hs), row stride 3C
        const float *k = q + C, *v = q + 2 * C;
        float *P = probs + bh * T * T;                   // (T, T)
        // S (T, T) = Q K^T, then p = masked softmax(S / sqrt(hs))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)T,
                    (blasint)hs, 1.0f, q, ld3, k, ld3, 0.0f, P, (blasint)T);
        softmax_rows(P, s, key_mask, b, scale);
        float *c = (s->gated ? context : out) + b * T * C + h * hs; // (T, hs), stride C
        if (!s->clipped) {
            // C (T, hs) = P V
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)hs,
                        (blasint)T, 1.0f, P, (blasint)T, v, ld3, 0.0f, c, (blasint)C);
        } else {
            for (int64_t t = 0; t < T; t++) {
                float *ct = c + t * C;
                for (int64_t i = 0; i < hs; i++) ct[i] = 0;
                for (int64_t j = 0; j < T; j++) {
                    const float y = P[t * T + j] > 0 ? clip_weight(s, P[t * T + j]) : 0.0f;
                    if (y == 0) continue;
                    const float *vj = v + j * 3 * C;
#pragma omp simd
                    for (int64_t i = 0; i < hs; i++) ct[i] += y * vj[i];
                }
            }
        }
        if (s->gated)
            for (int64_t t = 0; t < T; t++)
                gate_forward_row(s, bh, t, c + t * C, out, gate, gate_in, gate_w, gate_b);
    }
}

static void attention_backward_blas(float *dqkv, float *dgate_in, float *dgate_w, float *dgate_b,
                                    float *scratch, const float *dout, const float *qkv,
                                    const float *probs, const float *context, const float *gate,
                                    const uint8_t *key_mask, const float *gate_in,
                                    const float *gate_w, const lb_attention_shape *s)
{
    const int64_t B = s->B, T = s->T, C = s->C, NH = s->NH, hs = C / NH, BH = B * NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const blasint ld3 = (blasint)(3 * C);
    float *dgate_logit = scratch;              // (B, NH, T)
    float *work = scratch + 2 * BH * T;        // per (b, h): dP (T, T), Y (T, T), dC (T, hs)
    const int64_t per = 2 * T * T + T * hs;
#pragma omp parallel for schedule(static) if (BH * T * T * hs >= 8 * PAR_MIN)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * 3 * C + h * hs, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + b * T * 3 * C + h * hs, *dk = dq + C, *dv = dq + 2 * C;
        const float *P = probs + bh * T * T;
        float *dP = work + bh * per, *Y = dP + T * T, *dC = Y + T * T;
        // dC (T, hs) = pi dout; the gate's own gradient
        for (int64_t t = 0; t < T; t++) {
            const float *dy = dout + (b * T + t) * C + h * hs;
            const float pi = s->gated ? gate_backward_row(s, bh, t, dy, context, gate, gate_w,
                                                          dgate_logit, dgate_in)
                                      : 1.0f;
            for (int64_t i = 0; i < hs; i++) dC[t * hs + i] = pi * dy[i];
        }
        // Y = the weights used for V (P, or the clipped P)
        const float *Yw = P;
        if (s->clipped) {
            for (int64_t n = 0; n < T * T; n++) Y[n] = P[n] > 0 ? clip_weight(s, P[n]) : 0.0f;
            Yw = Y;
        }
        // dV += Y^T dC ; dP = dC V^T
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)T, (blasint)hs, (blasint)T,
                    1.0f, Yw, (blasint)T, dC, (blasint)hs, 1.0f, dv, ld3);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)T, (blasint)hs,
                    1.0f, dC, (blasint)hs, v, ld3, 0.0f, dP, (blasint)T);
        // through the clip and the softmax: dS_j = p_j (u_j - sum_i u_i p_i) / sqrt(hs)
        softmax_rows_backward(dP, P, s, key_mask, b, scale);
        // dQ += dS K ; dK += dS^T Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)hs,
                    (blasint)T, 1.0f, dP, (blasint)T, k, ld3, 1.0f, dq, ld3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)T, (blasint)hs, (blasint)T,
                    1.0f, dP, (blasint)T, q, ld3, 1.0f, dk, ld3);
    }
    if (s->gated) {
#pragma omp parallel for schedule(static) if (B * T * C >= 4 * PAR_MIN)
        for (int64_t h = 0; h < NH; h++)
            attention_gate_params_backward_serial(dgate_w, dgate_b, dgate_logit, gate_in, s, h);
    }
}
#endif

/* Short sequences (vit's 17 tokens) run faster in the loops than in many tiny
 * sgemm calls; from 32 tokens on the sgemm version wins. */
#define ATTENTION_SGEMM_MIN_T 32

static void attention_forward_dispatch(float *out, float *probs, float *context, float *gate,
                                       const float *qkv, const uint8_t *key_mask,
                                       const float *gate_in, const float *gate_w,
                                       const float *gate_b, const lb_attention_shape *s)
{
#ifdef HAVE_OPENBLAS
    if (s->T >= ATTENTION_SGEMM_MIN_T) {
        attention_forward_blas(out, probs, context, gate, qkv, key_mask, gate_in, gate_w, gate_b, s);
        return;
    }
#endif
    attention_forward_cpu(out, probs, context, gate, qkv, key_mask, gate_in, gate_w, gate_b, s);
}

static void attention_backward_dispatch(float *dqkv, float *dgate_in, float *dgate_w,
                                        float *dgate_b, float *scratch, const float *dout,
                                        const float *qkv, const float *probs,
                                        const float *context, const float *gate,
                                        const uint8_t *key_mask, const float *gate_in,
                                        const float *gate_w, const lb_attention_shape *s)
{
#ifdef HAVE_OPENBLAS
    if (s->T >= ATTENTION_SGEMM_MIN_T) {
        attention_backward_blas(dqkv, dgate_in, dgate_w, dgate_b, scratch, dout, qkv, probs,
                                context, gate, key_mask, gate_in, gate_w, s);
        return;
    }
#endif
    attention_backward_cpu(dqkv, dgate_in, dgate_w, dgate_b, scratch, dout, qkv, probs, context,
                           gate, key_mask, gate_in, gate_w, s);
}

/* ----------------------------------------------------------- cross-entropy */

static void crossentropy_forward_cpu(float *losses, float *probs, const float *logits,
                                     const int32_t *targets, int64_t N, int64_t V)
{
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        crossentropy_forward_serial(losses + n, probs + n * V, logits + n * V, targets + n, 1, V);
}

static void crossentropy_backward_cpu(float *dlogits, const float *probs, const int32_t *targets,
                                      int64_t N, int64_t V, float scale)
{
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        crossentropy_backward_serial(dlogits + n * V, probs + n * V, targets + n, 1, V, scale);
}

/* ------------------------------------------------------------------- AdamW */

static void adamw_update_cpu(float *params, const float *grads, float *m, float *v, int64_t n,
                             float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                             float weight_decay)
{
    const int64_t chunks = (n + PAR_MIN - 1) / PAR_MIN;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * PAR_MIN, len = i0 + PAR_MIN < n ? PAR_MIN : n - i0;
        adamw_update_serial(params + i0, grads + i0, m + i0, v + i0, len, lr, beta1, beta2, bc1,
                            bc2, eps, weight_decay);
    }
}

/* ------------------------------------------------------------- reductions */

/* Block sums computed in parallel, 256 blocks at a time, then added in block
 * order: the same bits as ref's sequential block loop. */
static double sum_squares_cpu(const float *x, int64_t n)
{
    enum { GROUP = 256 };
    double total = 0;
    const int64_t nblocks = (n + LB_REDUCE_BLOCK - 1) / LB_REDUCE_BLOCK;
    for (int64_t g0 = 0; g0 < nblocks; g0 += GROUP) {
        const int64_t g1 = g0 + GROUP < nblocks ? g0 + GROUP : nblocks;
        double sums[GROUP];
#pragma omp parallel for schedule(static) if (g1 - g0 > 16)
        for (int64_t blk = g0; blk < g1; blk++) {
            const int64_t start = blk * LB_REDUCE_BLOCK;
            const int64_t end = start + LB_REDUCE_BLOCK < n ? start + LB_REDUCE_BLOCK : n;
            double block = 0;
            for (int64_t i = start; i < end; i++) block += (double)x[i] * (double)x[i];
            sums[blk - g0] = block;
        }
        for (int64_t blk = g0; blk < g1; blk++) total += sums[blk - g0];
    }
    return total;
}

static void scale_cpu(float *x, int64_t n, float s)
{
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

static const lb_backend backend_cpu = {
    .name = "cpu",
    .linear_forward = linear_forward_cpu,
    .linear_backward = linear_backward_cpu,
    .layernorm_forward = layernorm_forward_cpu,
    .layernorm_backward = layernorm_backward_cpu,
    .gelu_forward = gelu_forward_cpu,
    .gelu_backward = gelu_backward_cpu,
    .add = add_cpu,
    .add_broadcast = add_broadcast_cpu,
    .sum_rows = sum_rows_cpu,
    .embedding_forward = embedding_forward_cpu,
    .embedding_backward = embedding_backward_cpu,
    .meanpool_forward = meanpool_forward_cpu,
    .meanpool_backward = meanpool_backward_cpu,
    .attention_forward = attention_forward_dispatch,
    .attention_backward = attention_backward_dispatch,
    .crossentropy_forward = crossentropy_forward_cpu,
    .crossentropy_backward = crossentropy_backward_cpu,
    .adamw_update = adamw_update_cpu,
    .sum_squares = sum_squares_cpu,
    .scale = scale_cpu,
};

const lb_backend *lb_backend_cpu(void) { return &backend_cpu; }

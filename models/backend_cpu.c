/* models/backend_cpu.c — the "cpu" backend: OpenMP threads and OpenBLAS.
 *
 * Each operation is the reference loop nest of models/layers_impl.h (so the
 * per-element arithmetic is the same as "ref"), split over threads with
 * `schedule(static)` on an axis that is NOT reduced: rows for row-wise ops,
 * channels for column sums (LayerNorm/bias/embedding gradients), (batch,
 * head) pairs for attention. Every sum therefore runs in the same order as
 * in ref, and everything except the BLAS matmuls is bit-identical to ref at
 * any thread count.
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
#define PAR_MIN 4096
/* Channels per task in column-sum reductions. */
#define COL_CHUNK 16

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

/* dbias (OC) += column sums of dout (N, OC), in row order per column. */
static void bias_backward_cpu(float *dbias, const float *dout, int64_t N, int64_t OC)
{
    const int64_t chunks = (OC + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t o0 = c * COL_CHUNK, o1 = o0 + COL_CHUNK < OC ? o0 + COL_CHUNK : OC;
        float acc[COL_CHUNK] = {0};
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = o0; o < o1; o++) acc[o - o0] += dout[n * OC + o];
        for (int64_t o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
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

static void layernorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int64_t N, int64_t C)
{
    const int64_t chunks = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel if (N * C >= PAR_MIN)
    {
        // input gradient: row by row (the same loop as ref)
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            float *dx = dinp + n * C;
            const float m = mean[n], s = rstd[n];
            float dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int64_t i = 0; i < C; i++) {
                const float norm = (x[i] - m) * s;
                const float dnorm = weight[i] * dy[i];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
            }
            dnorm_mean = dnorm_mean / (float)C;
            dnorm_norm_mean = dnorm_norm_mean / (float)C;
            for (int64_t i = 0; i < C; i++) {
                const float norm = (x[i] - m) * s;
                const float dnorm = weight[i] * dy[i];
                dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
            }
        }
        // parameter gradients: channel chunks, rows in order (as ref)
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t i0 = c * COL_CHUNK, i1 = i0 + COL_CHUNK < C ? i0 + COL_CHUNK : C;
            for (int64_t n = 0; n < N; n++) {
                const float *x = inp + n * C, *dy = dout + n * C;
                const float m = mean[n], s = rstd[n];
                for (int64_t i = i0; i < i1; i++) {
                    dweight[i] += (x[i] - m) * s * dy[i];
                    dbias[i] += dy[i];
                }
            }
        }
    }
}

/* ------------------------------------------------------------- elementwise */

static void gelu_forward_cpu(float *out, const float *inp, int64_t n)
{
    const int64_t chunks = (n + PAR_MIN - 1) / PAR_MIN;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * PAR_MIN, len = i0 + PAR_MIN < n ? PAR_MIN : n - i0;
        gelu_forward_serial(out + i0, inp + i0, len);
    }
}

static void gelu_backward_cpu(float *dinp, const float *inp, const float *dout, int64_t n)
{
    const int64_t chunks = (n + PAR_MIN - 1) / PAR_MIN;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * PAR_MIN, len = i0 + PAR_MIN < n ? PAR_MIN : n - i0;
        gelu_backward_serial(dinp + i0, inp + i0, dout + i0, len);
    }
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

static void attention_forward_cpu(float *out, float *probs, float *context, float *gate,
                                  const float *qkv, const uint8_t *key_mask, const float *gate_in,
                                  const float *gate_w, const float *gate_b,
                                  const lb_attention_shape *s)
{
    const int64_t BH = s->B * s->NH;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < BH; bh++)
        attention_forward_head_serial(out, probs, context, gate, qkv, key_mask, gate_in, gate_w,
                                      gate_b, s, bh / s->NH, bh % s->NH);
}

static void attention_backward_cpu(float *dqkv, float *dgate_in, float *dgate_w, float *dgate_b,
                                   float *scratch, const float *dout, const float *qkv,
                                   const float *probs, const float *context, const float *gate,
                                   const uint8_t *key_mask, const float *gate_in,
                                   const float *gate_w, const lb_attention_shape *s)
{
    const int64_t B = s->B, T = s->T, NH = s->NH, BH = B * NH;
    float *dgate_logit = scratch;      // (B, NH, T)
    float *u_all = scratch + BH * T;   // (B, NH, T)
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < BH; bh++)
        attention_backward_head_serial(dqkv, dgate_in, dgate_logit + bh * T, u_all + bh * T,
                                       dout, qkv, probs, context, gate, key_mask, gate_w, s,
                                       bh / NH, bh % NH);
    if (s->gated) {
#pragma omp parallel for schedule(static)
        for (int64_t h = 0; h < NH; h++)
            attention_gate_params_backward_serial(dgate_w, dgate_b, dgate_logit, gate_in, s, h);
    }
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
#pragma omp parallel for schedule(static) if (g1 - g0 > 1)
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
    .attention_forward = attention_forward_cpu,
    .attention_backward = attention_backward_cpu,
    .crossentropy_forward = crossentropy_forward_cpu,
    .crossentropy_backward = crossentropy_backward_cpu,
    .adamw_update = adamw_update_cpu,
    .sum_squares = sum_squares_cpu,
    .scale = scale_cpu,
};

const lb_backend *lb_backend_cpu(void) { return &backend_cpu; }

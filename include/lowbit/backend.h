/* lowbit/backend.h — the table of float32 operations a model is built from.
 *
 * Every operation of a forward or backward pass (linear layers, LayerNorm,
 * GELU, attention with its softmax variants, embeddings, cross-entropy,
 * AdamW, ...) is called through an lb_backend: a struct of function
 * pointers. The model code (models/model.c) is written once over this table;
 * a backend supplies the arithmetic.
 *
 *   "ref"  portable C11, no threads, no BLAS: the readable oracle
 *          (models/backend_ref.c, functions lb_<op>_ref).
 *   "cpu"  OpenMP over output elements (schedule(static)) and OpenBLAS
 *          cblas_sgemm for the linear layers when built with OpenBLAS
 *          (models/backend_cpu.c, functions lb_<op>_cpu). Results agree with
 *          "ref" within |cpu - ref| <= 1e-5 + 1e-4 |ref| per element for one
 *          operation (the sgemm sums in another order); AdamW, GELU,
 *          embeddings and the elementwise ops are bit-identical to ref.
 *
 * Conventions shared by every operation:
 *   - row-major contiguous float32 arrays; shapes in the comments use
 *     N = rows (B*T tokens), C = channels, OC = output channels, V = classes
 *     or vocabulary, B = batch, T = tokens, NH = heads, hs = C / NH;
 *   - forward functions overwrite their outputs;
 *   - backward functions ACCUMULATE (+=) into their gradient outputs, so the
 *     caller zeroes gradients once per step and residual branches add up;
 *     a NULL gradient pointer means "not needed" where the comment says so;
 *   - no operation allocates, fails or reads global state; every sum over a
 *     reduction axis is taken in a fixed order that does not depend on the
 *     thread count, so a run is reproducible bit for bit at a fixed thread
 *     count (and, except for sgemm, at any thread count).
 */
#ifndef LOWBIT_BACKEND_H
#define LOWBIT_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shape and variant of one multi-head self-attention call.
 *
 * qkv (B, T, 3C) holds [q | k | v] per token; head h uses the contiguous
 * feature slice [h hs, (h+1) hs) of each. For query t the valid keys are
 * j < T (j <= t when causal) with key_mask[b, j] != 0 (when a mask is
 * given). With x_j = (q_t . k_j) / sqrt(hs) over the valid keys:
 *   p_j = exp(x_j - max x) / sum exp(x - max x)      (p_j = 0 elsewhere)
 *   y_j = p_j                                        (softmax)
 *   y_j = min(max((zeta - gamma) p_j + gamma, 0), 1) (clipped softmax,
 *         Bondarenko et al. 2023 eq. 4; outlier_free spec section 1.1)
 *   c_t = sum_j y_j v_j                              (context, (hs))
 *   out_t = c_t                                      (ungated)
 *   out_t = sigmoid(g_in[b, t, slice_h] . gate_w[h] + gate_b[h]) c_t
 *                                                    (gated attention, eq. 5-7,
 *                                                     spec section 2.1, Linear G)
 * A row without any valid key gives p = 0, y = 0, c = 0 (never NaN). */
typedef struct lb_attention_shape {
    int64_t B, T, C, NH; /* batch, tokens, channels, heads (C % NH == 0) */
    int causal;          /* 1: query t attends to keys 0..t */
    int clipped;         /* 1: clipped softmax with gamma, zeta below */
    int gated;           /* 1: per-head sigmoid gate of the attention input */
    float gamma;         /* clipped-softmax stretch, gamma <= 0 */
    float zeta;          /* clipped-softmax stretch, zeta >= 1 */
} lb_attention_shape;

typedef struct lb_backend {
    const char *name; /* "ref" or "cpu" */

    /* out (N, OC) = inp (N, C) . weight (OC, C)^T + bias (OC); bias may be NULL. */
    void (*linear_forward)(float *out, const float *inp, const float *weight, const float *bias,
                           int64_t N, int64_t C, int64_t OC);
    /* dinp (N, C) += dout (N, OC) . weight (OC, C)      (skipped when dinp NULL)
     * dweight (OC, C) += dout^T . inp (N, C)
     * dbias (OC) += sum_n dout[n]                        (skipped when dbias NULL) */
    void (*linear_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int64_t N, int64_t C,
                            int64_t OC);

    /* out (N, C) = (inp - mean) * rstd * weight + bias per row; mean, rstd: (N)
     * saved for the backward; variance is the biased (1/C) one, rstd =
     * 1 / sqrt(var + eps). */
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int64_t N, int64_t C,
                              float eps);
    /* dinp (N, C) +=, dweight (C) +=, dbias (C) += the LayerNorm gradients. */
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int64_t N, int64_t C);

    /* out (n) = GELU(inp) = 0.5 x (1 + erf(x / sqrt 2)) (exact, torch's default). */
    void (*gelu_forward)(float *out, const float *inp, int64_t n);
    /* dinp (n) += GELU'(inp) * dout. */
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, int64_t n);

    /* out (n) = a + b (out may alias a or b). */
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    /* out (B, n) += row (n) for every b (position embeddings, CLS token). */
    void (*add_broadcast)(float *out, const float *row, int64_t B, int64_t n);
    /* drow (n) += sum_b dout (B, n), summed in order b = 0..B-1. */
    void (*sum_rows)(float *drow, const float *dout, int64_t B, int64_t n);

    /* out (N, C) = table (V, C)[ids[n]]; every id in [0, V) (the caller checks). */
    void (*embedding_forward)(float *out, const int32_t *ids, const float *table, int64_t N,
                              int64_t C);
    /* dtable (V, C) [ids[n]] += dout[n], in order n = 0..N-1. */
    void (*embedding_backward)(float *dtable, const float *dout, const int32_t *ids, int64_t N,
                               int64_t C);

    /* out (B, C) = mean over the tokens t with mask[b, t] != 0 (all when mask
     * is NULL) of inp (B, T, C); a row without tokens gives 0. */
    void (*meanpool_forward)(float *out, const float *inp, const uint8_t *mask, int64_t B,
                             int64_t T, int64_t C);
    /* dinp (B, T, C) += dout (B, C) / count on the pooled tokens. */
    void (*meanpool_backward)(float *dinp, const float *dout, const uint8_t *mask, int64_t B,
                              int64_t T, int64_t C);

    /* Multi-head attention (see lb_attention_shape).
     *   out (B, T, C)        attention output (gated when s->gated)
     *   probs (B, NH, T, T)  softmax probabilities p (saved for the backward)
     *   context (B, T, C)    ungated context c (gated only, else may be NULL)
     *   gate (B, NH, T)      gate values sigmoid(z) (gated only, else NULL)
     *   qkv (B, T, 3C), key_mask (B, T) or NULL,
     *   gate_in (B, T, C), gate_w (NH, hs), gate_b (NH)  (gated only) */
    void (*attention_forward)(float *out, float *probs, float *context, float *gate,
                              const float *qkv, const uint8_t *key_mask, const float *gate_in,
                              const float *gate_w, const float *gate_b,
                              const lb_attention_shape *s);
    /* Accumulates dqkv (B, T, 3C) and, when gated, dgate_in (B, T, C),
     * dgate_w (NH, hs), dgate_b (NH). scratch: lb_attention_scratch_floats(s)
     * floats of work space. Clipped entries pass no gradient; the clamp
     * passes it where 0 <= (zeta - gamma) p + gamma <= 1 (inclusive, as
     * torch.clamp's backward). */
    void (*attention_backward)(float *dqkv, float *dgate_in, float *dgate_w, float *dgate_b,
                               float *scratch, const float *dout, const float *qkv,
                               const float *probs, const float *context, const float *gate,
                               const uint8_t *key_mask, const float *gate_in,
                               const float *gate_w, const lb_attention_shape *s);

    /* Softmax cross-entropy per row of logits (N, V):
     *   probs (N, V) = softmax(logits), losses (N) = logsumexp - logits[target];
     * rows with targets[n] < 0 are ignored (loss 0, probs still written).
     * Every target must be < V (the caller checks). */
    void (*crossentropy_forward)(float *losses, float *probs, const float *logits,
                                 const int32_t *targets, int64_t N, int64_t V);
    /* dlogits (N, V) += scale * (probs - onehot(target)) on rows with a target. */
    void (*crossentropy_backward)(float *dlogits, const float *probs, const int32_t *targets,
                                  int64_t N, int64_t V, float scale);

    /* AdamW (Loshchilov & Hutter, decoupled weight decay) on n parameters:
     *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
     *   p -= lr * ( (m / bc1) / (sqrt(v / bc2) + eps) + weight_decay * p )
     * with bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (t >= 1),
     * computed by the caller in double and passed rounded to float. */
    void (*adamw_update)(float *params, const float *grads, float *m, float *v, int64_t n,
                         float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                         float weight_decay);

    /* Sum of squares of x (n) in double: partial sums over consecutive blocks
     * of LB_REDUCE_BLOCK elements, added in block order (so every backend and
     * thread count gives the same bits). */
    double (*sum_squares)(const float *x, int64_t n);
    /* x (n) *= s. */
    void (*scale)(float *x, int64_t n, float s);
} lb_backend;

/* Block length of the fixed-order reductions (sum_squares). */
#define LB_REDUCE_BLOCK 4096

/* Floats of scratch attention_backward needs: 2 B NH T + B NH (2 T^2 + T hs). */
int64_t lb_attention_scratch_floats(const lb_attention_shape *s);

/* The portable reference backend (always available). */
const lb_backend *lb_backend_ref(void);

/* The multi-threaded backend: OpenMP and, when built with OpenBLAS,
 * cblas_sgemm for linear layers (otherwise a threaded loop version). */
const lb_backend *lb_backend_cpu(void);

/* Looks a backend up by name ("ref" or "cpu"); LB_ERR_ARG for another name. */
lb_status lb_backend_find(lb_ctx *ctx, const char *name, const lb_backend **out);

/* True when the cpu backend's linear layers use OpenBLAS in this build. */
int lb_backend_cpu_has_blas(void);

#ifdef __cplusplus
}
#endif
#endif

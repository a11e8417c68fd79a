/* lowbit/ref/qlinear_hq.h — one quantized linear layer of Xi et al. 2023:
 * HQ forward, bit splitting + leverage score sampling backward, all three
 * GEMMs on int4 values through the integer GEMM oracle (lb_gemm_i8_ref).
 *
 * Spec: shared/specs/int4_training.md §2 A.1–A.6 (the layer, end to end),
 * §4, §7. Shapes: X (N, D), W (C, D), b (C), Y = X W^T + b (N, C).
 *
 * Forward (spec A.2):
 *   block: cfg->block, or when it is 0 the block-size search of
 *          lb_hq_search_block_ref over X and W on the first forward (kept in
 *          state->block afterwards).
 *   steps: on the first forward (state->initialized == 0) s_X, s_W are set by
 *          the LSQ init rule on X·H and W·H; afterwards the learned values are
 *          replaced by |s| (the authors' positivity rule) and used.
 *   X̂ = LSQ(X·H; s_X), Ŵ = LSQ(W·H; s_W)        int4 in int8 (lb_hq_quantize_ref)
 *   Z = X̂ Ŵ^T                                    int32, lb_gemm_i8_ref (exact)
 *   Y = (s_X·s_W)·(float)Z + b                   float32: one product of the two
 *                                                 steps, one multiply, one add
 *   Saved for the backward in the state: X̂, Ŵ and the quotients V_X = (X·H)/s_X,
 *   V_W = (W·H)/s_W (LSQ masks and step gradients need them), the steps used.
 *
 * Backward (spec A.3–A.6), given ∇Y (N, C) and an iteration number `step`:
 *   1. BS: hi, lo (N, C), s↓ = lb_bit_split_ref(cfg->bit_split, ∇Y), uniforms
 *      lb_rng_uniform_f32(seed, lb_rng_stream("xi.bs", sub), i·C + j).
 *   2. LSS scores (2N) by lb_lss_bs_scores_ref: with X̂ for ∇W, without for
 *      ∇X; p by lb_lss_probabilities_ref(cfg->sampling, budget = cfg->lss_budget
 *      or N); masks by lb_lss_sample_ref with streams
 *      lb_rng_stream("xi.lss.weight", sub) and lb_rng_stream("xi.lss.input", sub),
 *      element index = stacked row (0..N−1 high nibbles, N..2N−1 low nibbles).
 *      sub = cfg->layer · 2^32 + step (mod 2^64); seed = cfg->seed.
 *   3. G_W (C, D) = s_X·s↓·A_W with, for w_i = m_i/p_i,
 *        A_W = 14·Σ_{i kept, p_i = 1} hi_i^T X̂_i + Σ_{i kept, p_{N+i} = 1} lo_i^T X̂_i
 *              (two int GEMMs over the gathered rows, lb_gemm_i8_ref, exact)
 *            + Σ_{i kept, p_i < 1} w_i·(14·hi_i^T X̂_i) + Σ_{i kept, p_{N+i} < 1} w_{N+i}·(lo_i^T X̂_i)
 *              (rank-1 terms in double, element by element, hi rows in
 *               increasing i first, then lo rows; each integer product is
 *               exact and multiplied by w in double)
 *      The rows with p_i < 1 cannot share an integer GEMM because their
 *      weights differ along the reduction dimension; the authors' disabled
 *      Bernoulli branch likewise sends them through an FP16 GEMM. With
 *      LB_LSS_NONZERO or LB_LSS_ALL every kept row has p = 1, so A_W is
 *      exactly (14·hi + lo)^T X̂ (one int8 GEMM would give the same bits).
 *      Result: (float)(((double)s_X·(double)s↓)·A_W).
 *   4. G_X (N, D) = s_W·s↓·A_X, A_X row i = 14·w_i·(hi_i Ŵ) + w_{N+i}·(lo_i Ŵ),
 *      hi_K Ŵ and lo_K Ŵ two int GEMMs over the kept rows (the weights scale
 *      output rows, so they apply after the integer GEMMs), evaluated in
 *      double as (double)(14·Z↑)·w + (double)Z↓·w; result
 *      (float)(((double)s_W·(double)s↓)·A_X).
 *   5. LSQ backward in the Hadamard domain (lb_lsq_backward_ref):
 *      ∇(X·H) = 1[−Qn <= V_X <= Qp]·G_X, ∇s_X = Σ δ_X·G_X / sqrt(N·D·7); same for W.
 *   6. ∇X = ∇(X·H)·H, ∇W = ∇(W·H)·H (lb_hadamard_ref, same block).
 *   7. ∇b_c = Σ_i ∇Y_ic in double, increasing i, rounded to float.
 *   With cfg->sampling = LB_LSS_ALL and an on-grid ∇Y (BS exact) the backward
 *   is the exact STE gradient of spec A.3 up to float rounding.
 *
 * Modes and defaults (lb_hq_config_default = the paper; lb_hq_config_code =
 * the authors' released code):
 *   field        default (paper)          code preset
 *   block        0 (search 1..1024)       0 (search; static mode would be 32)
 *   range        LB_LSQ_RANGE_PAPER [-7,7] LB_LSQ_RANGE_CODE [-8,7]
 *   rounding     LB_ROUND_HALF_EVEN       LB_ROUND_HALF_AWAY (CUDA round())
 *   bit_split    LB_BS_CLEAN (unbiased)   LB_BS_CODE (±6 clamps)
 *   sampling     LB_LSS_BERNOULLI         LB_LSS_NONZERO
 * The paper reading is the default because it is the algorithm the paper
 * analyses (unbiased BS, Prop. 4.1 sampling) and matches lowbit's symmetric
 * int4 contract; the code preset reproduces what the reported models ran.
 *
 * Non-finite X, W, b, ∇Y: LB_ERR_NUMERIC (nothing is written to the state's
 * learned steps in that case).
 */
#ifndef LOWBIT_REF_QLINEAR_HQ_H
#define LOWBIT_REF_QLINEAR_HQ_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/rounding.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/int_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_hq_config {
    int64_t block;        /* Hadamard block (power of two dividing D); 0 = search on first forward */
    int64_t max_block;    /* largest block the search tries; <= 0 means 1024 */
    lb_lsq_range range;   /* int4 range of X̂, Ŵ */
    lb_rounding rounding; /* RTN tie rule (forward codes, LSQ δ, BS high nibble) */
    lb_bs_mode bit_split; /* ∇Y splitting */
    lb_lss_mode sampling; /* row sampling of both backward GEMMs */
    double lss_budget;    /* Σp per GEMM (LB_LSS_BERNOULLI); <= 0 means N */
    uint64_t seed;        /* RNG key */
    uint64_t layer;       /* layer index, part of every stream id (< 2^32) */
    lb_gemm_i8_hook gemm; /* the integer GEMMs (zeroed: lb_gemm_i8_ref); same bits either way */
} lb_hq_config;

/* The paper reading (see the table above); seed 0, layer 0. */
void lb_hq_config_default(lb_hq_config *cfg);

/* The authors' released code (see the table above); seed 0, layer 0. */
void lb_hq_config_code(lb_hq_config *cfg);

/* Learned parameters and what the forward saves for the backward. The caller
 * owns the learned fields (an optimizer updates step_x/step_w with the
 * gradients of the backward; setting initialized = 1 with chosen steps skips
 * the init rule; setting block skips the search). */
typedef struct lb_hq_state {
    int64_t block;      /* chosen Hadamard block; 0 until the first forward */
    int initialized;    /* step_x, step_w hold learned values */
    float step_x;       /* s_X (learned) */
    float step_w;       /* s_W (learned) */
    /* saved by the last forward (owned by the state) */
    int has_forward;
    int64_t n, d, c;    /* N, D, C of the saved forward */
    float used_step_x;  /* |s_X| used by the forward */
    float used_step_w;  /* |s_W| */
    int8_t *x_codes;    // (N, D) X̂
    int8_t *w_codes;    // (C, D) Ŵ
    float *x_quotient;  // (N, D) V_X = (X·H)/s_X
    float *w_quotient;  // (C, D) V_W = (W·H)/s_W
    size_t x_capacity, w_capacity; /* elements allocated */
} lb_hq_state;

/* Allocates a zeroed state (no block, not initialized). */
lb_status lb_hq_state_create(lb_ctx *ctx, lb_hq_state **out);

/* Frees the state and its buffers; NULL is a no-op. */
void lb_hq_state_free(lb_hq_state *state);

/* Records a completed forward of shape (N, D, C) in the state, after its
 * codes and quotients were written: the block, the steps sx, sw (|s_X|,
 * |s_W|, now learned values, initialized) and has_forward. For the forward
 * implementations (the reference and lowbit/cpu_qlinear.h). */
void lb_hq_state_record_forward(lb_hq_state *state, int64_t block, float sx, float sw, int64_t N,
                                int64_t D, int64_t C);

/* Optional buffers that receive the backward's intermediate results (any
 * pointer may be NULL). */
typedef struct lb_hq_backward_trace {
    int8_t *hi;            // (N, C) high nibbles
    int8_t *lo;            // (N, C) low nibbles
    float fine_scale;      /* s↓ (output) */
    double *p_weight;      // (2N) keep probabilities of the ∇W GEMM
    double *p_input;       // (2N) keep probabilities of the ∇X GEMM
    uint8_t *mask_weight;  // (2N) masks of the ∇W GEMM
    uint8_t *mask_input;   // (2N) masks of the ∇X GEMM
    float *grad_x_hadamard; // (N, D) G_X before the LSQ mask (Hadamard domain)
    float *grad_w_hadamard; // (C, D) G_W before the LSQ mask
} lb_hq_backward_trace;

/* The three stream ids of one backward (see step 1–2 above). */
typedef struct lb_hq_streams {
    uint64_t bit_split, lss_weight, lss_input;
} lb_hq_streams;
lb_hq_streams lb_hq_backward_streams(uint64_t layer, uint64_t step);

/* Forward (see above): y (N, C); z (N, C) receives the int32 GEMM result when
 * not NULL; b may be NULL (no bias). Updates state (block, steps, saved
 * tensors). */
lb_status lb_qlinear_hq_forward_ref(lb_ctx *ctx, const lb_hq_config *cfg, lb_hq_state *state,
                                    int64_t N, int64_t D, int64_t C, const float *x, const float *w,
                                    const float *b, float *y, int32_t *z);

/* Backward (see above) for the state's last forward, with the same cfg as
 * that forward (range and rounding decide the LSQ masks): grad_y (N, C) in;
 * grad_x (N, D), grad_w (C, D), grad_b (C, may be NULL), *grad_step_x,
 * *grad_step_w out (either may be NULL); trace may be NULL. */
lb_status lb_qlinear_hq_backward_ref(lb_ctx *ctx, const lb_hq_config *cfg, const lb_hq_state *state,
                                     uint64_t step, const float *grad_y, float *grad_x, float *grad_w,
                                     float *grad_b, float *grad_step_x, float *grad_step_w,
                                     lb_hq_backward_trace *trace);

#ifdef __cplusplus
}
#endif
#endif

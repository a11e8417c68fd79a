/* lowbit/ref/uniform_quantizer.h — uniform (affine) quantizers, the oracle.
 *
 * Spec: shared/specs/outlier_free_attention_and_w8a8.md §4.1 (the quantizer
 * formulas of Bondarenko et al., "Quantizable Transformers", eq. 1, as coded in
 * the authors' repository), §7 "Uniform quantizers"; doc/algorithms/uniform.md.
 *
 * A quantizer maps a float32 tensor to integer codes q and back to x̂ = Δ·(q − z)
 * (z = 0 for symmetric). Every step is float32 arithmetic in a fixed order, so
 * that a vector or GPU implementation reproduces the codes bit for bit:
 *
 *   symmetric, b bits, N = 2^(b-1) - 1, range (lo, hi) of a group:
 *     lo' = min(lo, 0);  hi' = max(hi, 1e-8);  M = max(-lo', hi')
 *     Δ   = max(M / N, 1e-8)                           (float32 division)
 *     q   = clamp(rint(x / Δ), qmin, N)                (float32 division)
 *     qmin = -N (default, "narrow": int8 [-127, 127]) or -(N+1) (full_range)
 *   asymmetric, b bits, L = 2^b - 1:
 *     lo' = min(lo, 0);  hi' = max(hi, 1e-8)
 *     d   = hi' - lo'   (float32; recomputed in double if it overflows)
 *     Δr  = d / L;  Δ = max(Δr, 1e-8)                 (float32)
 *     z   = clamp(rint(-lo' / Δr), 0, L)               (integer zero point)
 *     q   = clamp(rint(x / Δ) + z, 0, L)
 *   rint = the rounding mode of the config: ties-to-even (default), ties away
 *   from zero, or stochastic floor(v + u) with u = lb_rng_uniform_f32(seed,
 *   stream, i) where i is the element's flat row-major index in the tensor
 *   (v is first clamped to the code range, so only in-range values are
 *   dithered; the result is clamped again).
 *   dequantize: x̂ = Δ · (float)(q − z)                 (float32 product)
 *
 * The symmetric quantizer of the authors' code switches to an unsigned grid
 * [0, 2^b - 1] with Δ = hi/(2^b - 1) for tensors without negative values;
 * lowbit's asymmetric quantizer with lo = 0 gives exactly those codes (z = 0),
 * so that case is served by `symmetric = 0` rather than by a third mode.
 *
 * NaN/Inf policy: a non-finite input value, range or scale is an error
 * (LB_ERR_NUMERIC for data and ranges, LB_ERR_ARG for a scale that is not a
 * positive finite number); outputs are then unspecified.
 */
#ifndef LOWBIT_REF_UNIFORM_QUANTIZER_H
#define LOWBIT_REF_UNIFORM_QUANTIZER_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/rounding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The smallest scale and the floor of hi (the authors' eps). */
#define LB_UNIFORM_EPS 1e-8f

/* Which elements share one (scale, zero point). */
typedef enum lb_granularity {
    LB_GRAN_TENSOR = 0,  /* one group for the whole tensor */
    LB_GRAN_CHANNEL = 1, /* one group per index along `axis` (default 0: the output
                            channel, i.e. row, of an nn.Linear weight (N, K)) */
    LB_GRAN_TOKEN = 2    /* one group per row of the (numel / D, D) view, D = last
                            dimension: one token of an activation (..., T, D) */
} lb_granularity;

/* "tensor", "channel", "token"; NULL for an unknown value. */
const char *lb_granularity_name(lb_granularity g);

/* The group structure of a tensor viewed as (outer, groups, inner), row-major:
 * element (o, g, i) sits at flat index (o * groups + g) * inner + i and
 * belongs to group g. Per-tensor is (1, 1, numel); per-token (1, numel/D, D);
 * per-channel along axis a is (prod(shape[:a]), shape[a], prod(shape[a+1:])). */
typedef struct lb_qgroups {
    int64_t outer;
    int64_t groups;
    int64_t inner;
} lb_qgroups;

/* Builds the group structure of a tensor of shape (ndim, shape). `axis` is used
 * by LB_GRAN_CHANNEL only (negative counts from the end). A 0-d tensor has one
 * group whatever the granularity. LB_ERR_ARG for a bad axis or shape. */
lb_status lb_qgroups_make(lb_ctx *ctx, lb_granularity granularity, int ndim, const int64_t *shape,
                          int axis, lb_qgroups *out);

/* Number of elements outer * groups * inner. */
static inline int64_t lb_qgroups_numel(const lb_qgroups *g) { return g->outer * g->groups * g->inner; }

typedef struct lb_uniform_config {
    int bits;             /* 2..16 */
    int symmetric;        /* 1: codes around 0, z = 0; 0: asymmetric [0, 2^b - 1] */
    int full_range;       /* symmetric only: 1 allows qmin = -2^(b-1) (the authors' signed
                             range); 0 (default) keeps [-N, N] */
    lb_rounding rounding; /* LB_ROUND_HALF_EVEN (default), _HALF_AWAY, _STOCHASTIC */
    uint64_t seed;        /* stochastic rounding: the RNG key ... */
    uint64_t stream;      /* ... and stream (the CLI uses lb_rng_stream("uniform-quant", 0)) */
} lb_uniform_config;

/* bits 8, symmetric narrow, ties-to-even, seed 0, stream lb_rng_stream("uniform-quant", 0). */
lb_uniform_config lb_uniform_config_default(void);

/* The code range [qmin, qmax] of a config (symmetric: [-N, N] or [-N-1, N];
 * asymmetric: [0, 2^b - 1]). LB_ERR_ARG for bits outside 2..16. */
lb_status lb_uniform_code_range(lb_ctx *ctx, const lb_uniform_config *cfg, int32_t *qmin,
                                int32_t *qmax);

/* Scales and zero points of `n_groups` groups from their ranges (formulas
 * above). lo, hi, scale: (n_groups,); zero_point: (n_groups,), may be NULL for
 * symmetric configs (it is filled with 0 when given). LB_ERR_NUMERIC for a
 * non-finite range, LB_ERR_ARG for lo > hi or a bad config. */
lb_status lb_uniform_qparams_ref(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n_groups,
                                 const float *lo, const float *hi, float *scale, int32_t *zero_point);

/* Codes of x under per-group (scale, zero_point): q = clamp(rint(x/Δ) + z).
 * x, codes: (outer, groups, inner) flattened; scale, zero_point: (groups,)
 * (zero_point NULL means 0). LB_ERR_NUMERIC on a non-finite x; LB_ERR_ARG on a
 * scale that is not positive and finite or a zero point outside the code range. */
lb_status lb_uniform_quantize_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                  const float *x, const float *scale, const int32_t *zero_point,
                                  int32_t *codes);

/* x̂ = Δ · (q − z) in float32. Codes outside the config's code range are an
 * error (LB_ERR_ARG). Shapes as in lb_uniform_quantize_ref. */
lb_status lb_uniform_dequantize_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                    const int32_t *codes, const float *scale, const int32_t *zero_point,
                                    float *xhat);

/* Quantize then dequantize (fake quantization) without a code buffer; xhat
 * may alias x. Same errors as lb_uniform_quantize_ref. */
lb_status lb_uniform_fake_quant_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                    const float *x, const float *scale, const int32_t *zero_point,
                                    float *xhat);

/* One element, for range estimators and fast-path tests: the code of x under
 * (scale, z) with round-to-nearest `mode` (LB_ROUND_STOCHASTIC uses u), in the
 * code range [qmin, qmax]. No checks. */
int32_t lb_uniform_code(float x, float scale, int32_t z, int32_t qmin, int32_t qmax, lb_rounding mode,
                        float u);

#ifdef __cplusplus
}
#endif
#endif

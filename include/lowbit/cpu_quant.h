/* lowbit/cpu_quant.h — fused, vectorised quantizers of the cpu backend.
 *
 * Each function here pairs by name with a reference in ref/ and returns the
 * same bits (codes, scales, uniforms, norms) as that reference, on every ISA
 * path and for every thread count: the fast paths evaluate the reference's
 * documented arithmetic operation for operation (the Hadamard butterfly in
 * double lanes, float32 divisions as divisions, the same tie rules, Philox
 * evaluated in vector lanes), so the match is exact, never a tolerance.
 * See doc/cpu_quant.md for the design and the argument for each kernel.
 *
 * ISA paths: the context's override (LOWBIT_ISA or lb_ctx_set_isa) or, with
 * LB_ISA_AUTO, the best path of lb_cpu_best_isa(). scalar runs the generic C
 * kernels, avx2 the AVX2 kernels, avx512 and avx512vnni the AVX-512
 * (F/BW/VL/DQ) kernels (no quantizer needs VNNI). A forced path that the
 * build or the CPU lacks returns LB_ERR_UNSUPPORTED, as for the GEMM.
 *
 * Threads: lb_ctx_threads(ctx) (all OpenMP threads when ctx is NULL), one
 * parallel region per call with a static partition over rows (or over
 * 1024-element chunks of a flat tensor); reductions are max/min (exact in
 * any order) or integer sums, except the SAWB moments, whose documented
 * 16-lane order is sequential within a lane and is therefore computed by one
 * thread. Small calls run on one thread.
 *
 * int4 output (fmt = LB_INT_S4, lowbit/cpu.h): codes are packed two per byte
 * in flat row-major order, element e in byte e / 2, low nibble when e is
 * even, two's complement; lb_s4_bytes(numel) bytes, the unused high nibble
 * of an odd-sized tensor's last byte is 0. This is the A/B operand format of
 * lb_gemm_i8_packed / lb_gemm_i8_pack_b.
 *
 * Errors: the reference's argument and NaN/Inf rules. Where the reference
 * checks every input before writing (bit split, LUQ, SAWB, the min-max
 * scale), nothing is written on LB_ERR_NUMERIC; the single-pass HQ and
 * with-scale quantizers detect non-finite input while they write, and leave
 * their outputs unspecified on LB_ERR_NUMERIC (the detail names the first
 * bad index, as the reference's does).
 */
#ifndef LOWBIT_CPU_QUANT_H
#define LOWBIT_CPU_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/rounding.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/ref/luq.h"
#include "lowbit/ref/sawb.h"
#include "lowbit/ref/uniform_quantizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the quantizer kernels a path runs ("generic", "avx2", "avx512");
 * "" when the path is not compiled. */
const char *lb_quant_cpu_kernel_name(lb_isa isa);

/* ------------------------------------------------------------ random numbers */

/* out (n) = lb_rng_uniform_f32(seed, stream, first + i), i < n: exact, the
 * same bits as lb_rng_fill_uniform_f32. Philox4x32-10 runs in 8 (avx2) or 16
 * (avx512) 32-bit lanes, one counter block per lane, the 32x32 -> 64-bit
 * products from vpmuludq on the even and odd lanes. */
lb_status lb_rng_fill_uniform_f32_cpu(lb_ctx *ctx, uint64_t seed, uint64_t stream, uint64_t first,
                                      int64_t n, float *out);

/* ------------------------------------------------------------------------ HQ */

/* HQ forward in one pass, exact against lb_hq_quantize_ref: for each block of
 * `block` entries of each row of x (rows, D): widen to double, the
 * unnormalised Walsh-Hadamard butterfly in the order of lowbit/ref/hadamard.h
 * (in-register stages for h < vector width, then across registers), times
 * 2^{-k/2} in double, round once to float (t), then v = t / step (float32
 * division), RTN with `rounding` (half-even or half-away), clamp to
 * [-Qn(range), 7].
 * codes: (rows, D) int8 (fmt LB_INT_S8) or packed int4 (LB_INT_S4,
 * lb_s4_bytes(rows·D) bytes). quotient (rows, D) = v, transformed (rows, D)
 * = t and row_sq (rows) = Σ_d codes[r][d]² (int64; the ‖X̂_r‖² that
 * lb_lss_bs_scores_ref needs) are written when not NULL. */
lb_status lb_hq_quantize_cpu(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                             int64_t D, int64_t block, const float *x, float step, lb_int_format fmt,
                             void *codes, float *quotient, float *transformed, int64_t *row_sq);

/* out (rows, D) = in · BlockDiag(H, ..., H), exact against lb_hadamard_ref:
 * the HQ pass above without the quantizer (its transformed output only).
 * out may equal in. Non-finite input gives LB_ERR_NUMERIC (the reference
 * propagates it instead; callers that need its result call it then). */
lb_status lb_hadamard_cpu(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *in,
                          float *out);

/* The LSQ straight-through backward, exact against lb_lsq_backward_ref
 * (same arguments; grad_in may alias grad_out): the per-element rules in
 * vector lanes, the step-gradient sum in the reference's blocked eight-lane
 * order, blocks on threads. Any argument or input the fast path does not
 * take (NaN/Inf, bad modes, n <= 0) is handed to the reference, whose status
 * and outputs are returned. */
lb_status lb_lsq_backward_cpu(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *quotient, const float *grad_out, float *grad_in,
                              float *grad_step);

/* The LSQ initial step of x·H_b, exact against lb_hq_init_step_ref: the
 * transform as above (vectorised); the Σ|t| of lb_lsq_init_step_ref is
 * sequential in increasing index order by definition, so it runs on one
 * thread in scalar double adds. */
lb_status lb_hq_init_step_cpu(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x,
                              float *step);

/* ----------------------------------------------------- bit splitting + LSS */

/* Bit splitting of ∇Y, exact against lb_bit_split_ref (mode, rounding, n =
 * N·C, same uniforms: uniforms[i] when given, else lb_rng_uniform_f32(seed,
 * stream, i) with i = r·C + c, generated in vector lanes). Two passes over g:
 * the max/min/finite (and uniform-range) reduction, then the split, in
 * which the per-row squared norms of the nibbles are accumulated as well:
 * hi_sq (N) = Σ_c hi[r][c]², lo_sq (N) = Σ_c lo[r][c]² (int64, either may
 * be NULL), the sums of lb_lss_bs_scores_ref. hi, lo: (N, C) int8 or packed
 * int4 per fmt; *fine_scale = s↓. */
lb_status lb_bit_split_cpu(lb_ctx *ctx, lb_bs_mode mode, lb_rounding rounding, int64_t N, int64_t C,
                           const float *g, const float *uniforms, uint64_t seed, uint64_t stream,
                           lb_int_format fmt, void *hi, void *lo, float *fine_scale, int64_t *hi_sq,
                           int64_t *lo_sq);

/* scores (2N) from the squared row norms, exact against
 * lb_lss_bs_scores_ref: scores[i] = 14·sqrt((double)hi_sq[i]·(double)x2),
 * scores[N+i] = sqrt((double)lo_sq[i]·(double)x2), x2 = x_sq[i] (the ∇W
 * scores; from lb_hq_quantize_cpu's row_sq) or 1 when x_sq is NULL (∇X). */
lb_status lb_lss_bs_scores_cpu(lb_ctx *ctx, int64_t N, const int64_t *hi_sq, const int64_t *lo_sq,
                               const int64_t *x_sq, double *scores);

/* ----------------------------------------------------------------------- LUQ */

/* LUQ of x (n), exact against lb_luq_quantize_ref: max|x| pass, then codes
 * (and values, alpha) with both uniform streams ("luq.underflow",
 * "luq.round", sample params->sample, index i) generated in vector lanes.
 * codes, values and alpha may each be NULL. */
lb_status lb_luq_quantize_cpu(lb_ctx *ctx, const lb_luq_params *params, const float *x, size_t n,
                              int8_t *codes, float *values, float *alpha);

/* ---------------------------------------------------------------------- SAWB */

/* Exact against lb_sawb_moments_ref: the 16-lane double sums (two zmm or four
 * ymm registers of lanes, combined by the documented tree) and the max, in
 * one pass on one thread (the lane order is sequential). */
lb_status lb_sawb_moments_cpu(lb_ctx *ctx, const float *x, size_t n, double *sum_abs, double *sum_sq,
                              float *max_abs);

/* Exact against lb_sawb_scale_ref (same outputs, same fallback rule). */
lb_status lb_sawb_scale_cpu(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                            float *scale, double *clip, int *fallback);

/* Exact against lb_sawb_quantize_with_scale_ref. */
lb_status lb_sawb_quantize_with_scale_cpu(lb_ctx *ctx, int qn, int qp, float scale, const float *x,
                                          size_t n, int8_t *codes, float *dequant);

/* Exact against lb_sawb_quantize_ref: moments pass, then the codes pass. */
lb_status lb_sawb_quantize_cpu(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                               int8_t *codes, float *scale, float *dequant);

/* ------------------------------------------- uniform symmetric int8 (W8A8) */

/* Per-tensor symmetric codes as int8, exact against lb_uniform_quantize_ref
 * with the same cfg (symmetric, bits 2..8), one group (LB_GRAN_TENSOR) and
 * the given scale: q = clamp(rint(x / scale)) with cfg->rounding half-even,
 * half-away, or stochastic floor(v + u) on the clamped v, u =
 * lb_rng_uniform_f32(cfg->seed, cfg->stream, i) (vector lanes). */
lb_status lb_uniform_quantize_s8_cpu(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n,
                                     const float *x, float scale, int8_t *codes);

/* *lo = min x, *hi = max x, exact against lb_range_minmax_ref for one group
 * (n = 0 gives the reference's empty-group values). LB_ERR_NUMERIC on NaN/Inf. */
lb_status lb_minmax_cpu(lb_ctx *ctx, int64_t n, const float *x, float *lo, float *hi);

/* The int8 recipe's per-tensor quantizer in two passes: lb_minmax_cpu, the
 * scale of lb_uniform_qparams_ref (called as is: one scalar formula), then
 * lb_uniform_quantize_s8_cpu. *scale receives the scale. */
lb_status lb_uniform_minmax_quantize_s8_cpu(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n,
                                            const float *x, int8_t *codes, float *scale);

#ifdef __cplusplus
}
#endif
#endif

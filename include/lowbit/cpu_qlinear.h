/* lowbit/cpu_qlinear.h — quantized linear layers on the cpu backend: the
 * oracle layers of lowbit/ref/qlinear_hq.h and lowbit/ref/qlinear_luq.h
 * with their loops outside the quantizers and GEMMs threaded (OpenMP,
 * static partitions) and compiled per vector ISA, and their buffers fused
 * where the reference makes several passes.
 *
 * Contract: same arguments and same results as the reference named beside
 * each function — every output bit for bit (integer products are exact in
 * any order, float expressions are the reference's per element), for every
 * thread count and ISA. The quantizers come from lowbit/cpu_quant.h and the
 * GEMMs through cfg->gemm, as in the reference. Whenever an argument is
 * invalid or a cpu quantizer reports an error (NaN/Inf input, a forced ISA
 * this machine lacks, no memory), the function returns what the reference
 * returns for the same call, by calling it, so status and detail match too.
 *
 * Threads: lb_ctx_threads(ctx) (all OpenMP threads when ctx is NULL).
 */
#ifndef LOWBIT_CPU_QLINEAR_H
#define LOWBIT_CPU_QLINEAR_H

#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/ref/qlinear_luq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* lb_qlinear_hq_forward_ref, same bits and the same state updates: HQ codes
 * and quotients from lb_hq_quantize_cpu, initial steps from
 * lb_hq_init_step_cpu, the epilogue on threads; the block search (no block
 * in the state or the config) with the reference's errors from the cpu
 * transforms. cfg->quant and cfg->weighted are not consulted. */
lb_status lb_qlinear_hq_forward_cpu(lb_ctx *ctx, const lb_hq_config *cfg, lb_hq_state *state,
                                    int64_t N, int64_t D, int64_t C, const float *x, const float *w,
                                    const float *b, float *y, int32_t *z);

/* lb_qlinear_hq_backward_ref, same bits (trace included): bit splitting with
 * the nibble norms in one pass, the kept-row GEMMs' products combined with
 * their weights and scaled in one pass per result, the rows with p < 1 on
 * threads, the LSQ backward and the Hadamard transform in place. */
lb_status lb_qlinear_hq_backward_cpu(lb_ctx *ctx, const lb_hq_config *cfg, const lb_hq_state *state,
                                     uint64_t step, const float *grad_y, float *grad_x, float *grad_w,
                                     float *grad_b, float *grad_step_x, float *grad_step_w,
                                     lb_hq_backward_trace *trace);

/* lb_qlinear_luq_forward_ref, same bits: the sign scan of X and the output
 * epilogue Y = fl32(s_X s_W) · fl32(Z) + b threaded; SAWB codes from
 * lb_sawb_quantize_cpu (cfg->quant is not consulted). */
lb_status lb_qlinear_luq_forward_cpu(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                     int64_t D, int64_t C, const float *X /* (N, D) */,
                                     const float *W /* (C, D) */, const float *bias /* (C) or NULL */,
                                     int *act_signed, int8_t *X_codes /* (N, D) */, float *x_scale,
                                     int8_t *W_codes /* (C, D) */, float *w_scale,
                                     int32_t *Z /* (N, C) or NULL */, float *Y /* (N, C) */);

/* lb_qlinear_luq_backward_ref, same bits: LUQ samples from
 * lb_luq_quantize_cpu; each exponent piece built once (with its column sums
 * for ∇b) and fed to both GEMMs; the final float32 scalings threaded, from
 * the pieces' int32 products directly with one sample, from threaded int64
 * accumulations with several. */
lb_status lb_qlinear_luq_backward_cpu(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                      int64_t D, int64_t C, const float *dY /* (N, C) */,
                                      const int8_t *X_codes /* (N, D) */, float x_scale,
                                      const int8_t *W_codes /* (C, D) */, float w_scale,
                                      float *dX /* (N, D) */, float *dW /* (C, D) */,
                                      float *db /* (C) or NULL */, float *alpha);

#ifdef __cplusplus
}
#endif
#endif

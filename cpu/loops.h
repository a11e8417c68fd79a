/* cpu/loops.h — threaded elementwise loops shared by the cpu layers
 * (cpu/qlinear_*_cpu.c), the cpu quantizers and the training recipes
 * (models/): each element by one fixed expression and each sum in a fixed
 * order, so the bits depend neither on the thread count nor on the ISA clone
 * that runs (runtime/clones.h). Internal to the library. */
#ifndef LOWBIT_CPU_LOOPS_H
#define LOWBIT_CPU_LOOPS_H

#include <stdint.h>

#include "lowbit/context.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/ref/lsq.h"

/* The thread count of lowbit's OpenMP regions for ctx: lb_ctx_threads(ctx),
 * all OpenMP threads when ctx is NULL, 1 without OpenMP. */
int lb_cpu_threads(const lb_ctx *ctx);

/* Thread t's share [*c0, *c1) of C columns split over nt threads in whole
 * groups of `group` columns: contiguous, in thread order, covering [0, C).
 * For the column loops that walk every row: each thread reads long row
 * segments and owns its columns' sums. */
void lb_cpu_column_share(int64_t C, int64_t group, int nt, int t, int64_t *c0, int64_t *c1);

/* The dequantize epilogue (lb_gemm_i8_dequant_ref's expression per element)
 * of rows [m0, m0 + mc) and columns [n0, n1) of d->out (?, N), from z with
 * row stride ldz, z[0] being element (m0, n0). On the calling thread; the
 * GEMM driver runs it on each finished tile. */
void lb_cpu_dequant_block(const lb_gemm_i8_dequant *d, const int32_t *z, int64_t ldz, int64_t N,
                          int64_t m0, int64_t mc, int64_t n0, int64_t n1);

/* out (N, C) = c · fl32(z) (+ bias[j] when bias is not NULL): the integer
 * GEMM's dequantize epilogue, rows split over nt threads. */
void lb_cpu_dequant_rows(float *out, const int32_t *z, const float *bias, float c, int64_t N,
                         int64_t C, int nt);

/* C = op(A) · op(B) and d->out from it (lb_gemm_i8_hooked_dequant's
 * result): the hook's fused fn_dequant when it has one, else its GEMM (C
 * NULL: into a temporary) then lb_cpu_dequant_rows on nt threads. */
lb_status lb_cpu_gemm_i8_dequant(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                 int trans_b, int64_t M, int64_t N, int64_t K, const int8_t *A,
                                 const int8_t *B, int32_t *C, const lb_gemm_i8_dequant *d, int nt);

/* For each column j of g (N, C): s = Σ_n g[n, j] in double in increasing n;
 * out[j] = fl32(s) (accumulate = 0) or out[j] += fl32(s) (accumulate = 1).
 * Threads over ranges of columns (the oracle layers' ∇b). */
void lb_cpu_column_sums(float *out, const float *g, int64_t N, int64_t C, int accumulate, int nt);

/* lb_lsq_backward_cpu in place (grad_in = grad_out = g) without its
 * up-front finiteness scan, for callers that can recompute g from their own
 * inputs: LB_ERR_NUMERIC when a quotient or gradient is NaN or ±Inf (g then
 * partly rewritten, *grad_step untouched), else g masked and *grad_step
 * exactly as lb_lsq_backward_ref's (cpu/quant/lsq_backward.c). */
lb_status lb_cpu_lsq_backward_inplace(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding,
                                      int64_t n, const float *quotient, float *g, float *grad_step);

#endif

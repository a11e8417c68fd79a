/* lowbit/cpu.h — the cpu backend: exact integer GEMM with run-time ISA
 * dispatch, its oneDNN and OpenBLAS peers, and the int8 peak probe.
 *
 * Every integer GEMM here returns the same bits as lb_gemm_i8_ref
 * (lowbit/ref/int_gemm.h) on every ISA path and for every thread count:
 * int8 x int8 products summed in int32 (exact for K <= LB_GEMM_I8_MAX_K).
 *
 * ISA paths (enum lb_isa in lowbit/context.h): scalar (portable C), avx2,
 * avx512 (F/BW/VL without VNNI) and avx512vnni. The path is the context's
 * override (LOWBIT_ISA=scalar|avx2|avx512|avx512vnni, or lb_ctx_set_isa) or,
 * with LB_ISA_AUTO, the fastest one this build has and this CPU runs.
 * Forcing a path the build or the CPU lacks returns LB_ERR_UNSUPPORTED.
 *
 * int4 storage (doc/numerics.md): a row-major int4 tensor of numel elements
 * takes (numel + 1) / 2 bytes; flat element e lives in byte e / 2, in the low
 * nibble when e is even and in the high nibble when e is odd, as a
 * two's-complement nibble (values -8..7).
 *
 * Threads: lb_ctx_threads(ctx) (all OpenMP threads when ctx is NULL). Work is
 * split statically over output tiles whose shape depends only on the GEMM
 * shape; each C element is summed by one thread in increasing k-group order.
 */
#ifndef LOWBIT_CPU_H
#define LOWBIT_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/int_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ ISA dispatch */

/* True when this build compiled the path's kernels and this CPU (and OS) can
 * run them. LB_ISA_SCALAR and LB_ISA_AUTO are always available. */
bool lb_cpu_isa_available(lb_isa isa);

/* The fastest available path (never LB_ISA_AUTO). */
lb_isa lb_cpu_best_isa(void);

/* The path a cpu call with this context runs: the context's override or, for
 * LB_ISA_AUTO, lb_cpu_best_isa(). LB_ERR_UNSUPPORTED (with a detail naming
 * what is missing: the build or the CPU) when the forced path is unavailable. */
lb_status lb_cpu_select_isa(lb_ctx *ctx, lb_isa *out);

/* -------------------------------------------------------------- int GEMM */

/* How an integer operand is stored. */
typedef enum lb_int_format {
    LB_INT_S8 = 0, /* one int8 per byte */
    LB_INT_S4 = 1  /* two int4 per byte, see the int4 storage rule above */
} lb_int_format;

/* Bytes of an int4 tensor of numel elements: (numel + 1) / 2. */
int64_t lb_s4_bytes(int64_t numel);

/* The right operand B of C = op(A) · op(B), packed once for the ISA path
 * chosen at packing time and reusable across calls and threads (read only):
 * VNNI panels (N/32, K/4, 32, 4) of int8 with 128·colsum(B) precomputed, or
 * (N/16|32, K/2, 16|32, 2) int16 pairs on avx2/avx512, or int4 nibbles
 * widened in-register; see doc/cpu.md. */
typedef struct lb_packed_i8 lb_packed_i8;

/* Packs B, stored (K, N) row-major when trans_b == 0 or (N, K) when
 * trans_b != 0 (an nn.Linear weight W (N, K) is trans_b = 1). fmt says whether
 * B holds int8 (int8_t *) or packed int4 (uint8_t *, lb_s4_bytes(K·N)
 * bytes). LB_ERR_ARG on NULL pointers, negative sizes or K >
 * LB_GEMM_I8_MAX_K; LB_ERR_UNSUPPORTED when the context forces a path that is
 * unavailable; LB_ERR_NOMEM. */
lb_status lb_gemm_i8_pack_b(lb_ctx *ctx, lb_int_format fmt, int trans_b, int64_t K, int64_t N,
                            const void *B, lb_packed_i8 **out);

/* Frees a packed operand; NULL is a no-op. */
void lb_packed_i8_free(lb_packed_i8 *p);

/* The ISA path the packed operand was made for, and its logical shape. */
lb_isa lb_packed_i8_isa(const lb_packed_i8 *p);
int64_t lb_packed_i8_k(const lb_packed_i8 *p);
int64_t lb_packed_i8_n(const lb_packed_i8 *p);

/* C (M, N) = op(A) · op(B) in int32 with B packed by lb_gemm_i8_pack_b.
 * A is stored (M, K) when trans_a == 0, (K, M) when trans_a != 0, as int8
 * (fmt_a = LB_INT_S8) or packed int4 (LB_INT_S4). C is row-major (M, N).
 * Runs the packed operand's ISA path; LB_ERR_ARG when the context forces a
 * different path (repack under that context instead). Matches
 * lb_gemm_i8_ref bit for bit. */
lb_status lb_gemm_i8_packed(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                            const void *A, const lb_packed_i8 *B, int32_t *C);

/* lb_gemm_i8_packed with the dequantize epilogue d (lowbit/ref/int_gemm.h):
 * d->out (M, N) = d->scale · fl32(C) (+ d->bias), each tile of C converted
 * right after it is computed, while it is in cache. C may be NULL (the
 * products are then not kept: each thread computes its tile in a buffer of
 * its own). Bit for bit lb_gemm_i8_ref followed by lb_gemm_i8_dequant_ref. */
lb_status lb_gemm_i8_packed_dequant(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                                    const void *A, const lb_packed_i8 *B, int32_t *C,
                                    const lb_gemm_i8_dequant *d);

/* C (M, N) = op(A) · op(B) with the same arguments and result as
 * lb_gemm_i8_ref (int8 operands). Packs B for this one call: reuse a packed
 * operand (lb_gemm_i8_pack_b) when B is a weight used more than once. The
 * three GEMMs of a linear layer Y = X·W^T (X (M, K), W (N, K)):
 *   forward  Y  (M, N) = lb_gemm_i8(0, 1, M, N, K, X, W)
 *   dgrad    dX (M, K) = lb_gemm_i8(0, 0, M, K, N, dY, W)
 *   wgrad    dW (N, K) = lb_gemm_i8(1, 0, N, K, M, dY, X). */
lb_status lb_gemm_i8(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                     const int8_t *A, const int8_t *B, int32_t *C);

/* Name of the micro-kernel a path runs, e.g. "8x32c4_avx512vnni"; "" when
 * the path is not compiled. */
const char *lb_gemm_i8_kernel_name(lb_isa isa);

/* --------------------------------------------------- oneDNN int8 peer */

/* oneDNN's u8·s8 -> s32 matmul with our semantics: C = op(A) · op(B) for
 * int8 A and B, computed as (A + 128) · B - 128·colsum(B) with the weights
 * reordered once into oneDNN's preferred layout and the primitive created
 * once for the shape (M, N, K). Exact (equal to lb_gemm_i8_ref) when oneDNN
 * runs VNNI (vpdpbusd) code. Without VNNI oneDNN's kernels use vpmaddubsw,
 * whose int16 pair sums saturate; they are exact only when |B| <= 64 (all
 * int4 and int7 weights), so creation returns LB_ERR_UNSUPPORTED for larger
 * weights there. Also LB_ERR_UNSUPPORTED when lowbit was built without
 * oneDNN, and for K > 65793 (the shifted sum could leave int32). */
typedef struct lb_onednn_gemm_i8 lb_onednn_gemm_i8;

/* True when lowbit was built with oneDNN. */
bool lb_onednn_available(void);

/* True when oneDNN's int8 kernels on this CPU use VNNI (exact for all int8). */
bool lb_onednn_int8_exact(void);

lb_status lb_onednn_gemm_i8_create(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                                   int64_t K, const int8_t *B, lb_onednn_gemm_i8 **out);

/* Runs C (M, N) = op(A) · op(B) for an A of the created shape and layout. */
lb_status lb_onednn_gemm_i8_run(lb_ctx *ctx, lb_onednn_gemm_i8 *g, const int8_t *A, int32_t *C);

/* oneDNN's name of the implementation it chose (e.g. "brg:avx512_core_vnni"). */
const char *lb_onednn_gemm_i8_impl(const lb_onednn_gemm_i8 *g);

/* Frees the object; NULL is a no-op. */
void lb_onednn_gemm_i8_free(lb_onednn_gemm_i8 *g);

/* One-shot create + run + free with lb_gemm_i8_ref's arguments. */
lb_status lb_gemm_i8_onednn(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            const int8_t *A, const int8_t *B, int32_t *C);

/* ------------------------------------------------ fp32 peer and peaks */

/* C (M, N) = op(A) · op(B) in fp32 through OpenBLAS's cblas_sgemm (row-major,
 * same transposition convention as lb_gemm_i8_ref). Not bit-reproducible
 * across CPUs. LB_ERR_UNSUPPORTED when built without OpenBLAS. */
lb_status lb_sgemm_openblas(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            const float *A, const float *B, float *C);

/* Measures the int8 multiply-add peak of a path's instruction sequence, in
 * GOP/s (2 ops per multiply-add) summed over lb_ctx_threads(ctx) threads,
 * each running ~`seconds` of 12 independent dependency chains:
 *   avx512vnni  vpdpbusd zmm                (64 multiply-adds each)
 *   avx512      vpmaddwd zmm + vpaddd zmm   (32 multiply-adds per pair)
 *   avx2        vpmaddwd ymm + vpaddd ymm   (16 multiply-adds per pair).
 * LB_ERR_UNSUPPORTED for scalar/auto or an unavailable path. */
lb_status lb_cpu_int8_peak(lb_ctx *ctx, lb_isa isa, double seconds, double *gops);

#ifdef __cplusplus
}
#endif
#endif

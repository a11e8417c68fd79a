/* cpu/dispatch.c — run-time ISA dispatch of the cpu backend.
 *
 * Compiled without ISA flags, so it runs on any x86-64 (or other) CPU. A
 * path is available when configure compiled its kernels (HAVE_*_BUILD) and
 * __builtin_cpu_supports reports every feature its file was compiled for
 * (libgcc's check includes the OS enabling the vector state). The context's
 * override (LOWBIT_ISA or lb_ctx_set_isa) forces a path; a forced path that
 * is unavailable is an error, never a silent fallback, so every path can be
 * tested on one machine and a missing one reads as SKIP, not PASS.
 */
#include "config.h"
#include "gemm_i8_kernels.h"

#include <time.h>
#include "lowbit/ref/int_gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define LB_X86 1
#endif

/* ------------------------------------------------------------ kernels */

static const lb_gemm_i8_kernel kernel_generic = {
    LB_ISA_SCALAR, "4x8_generic", 4, 8, 1, LB_APACK_S8, 0, 0,
    lb_gemm_i8_ukernel_4x8_generic, lb_gemm_i8_ukernel_4x8_s4b_generic, 0};
#ifdef HAVE_AVX2_BUILD
static const lb_gemm_i8_kernel kernel_avx2 = {
    LB_ISA_AVX2, "6x16c2_avx2", 6, 16, 2, LB_APACK_S16, 1, 0,
    lb_gemm_i8_ukernel_6x16c2_avx2, lb_gemm_i8_ukernel_6x16c2_s4b_avx2, 0};
#endif
#ifdef HAVE_AVX512_BUILD
static const lb_gemm_i8_kernel kernel_avx512 = {
    LB_ISA_AVX512, "8x32c2_avx512", 8, 32, 2, LB_APACK_S16, 1, 0,
    lb_gemm_i8_ukernel_8x32c2_avx512, lb_gemm_i8_ukernel_8x32c2_s4b_avx512, 0};
#endif
#ifdef HAVE_AVX512VNNI_BUILD
static const lb_gemm_i8_kernel kernel_avx512vnni = {
    LB_ISA_AVX512VNNI, "8x32c4_avx512vnni", 8, 32, 4, LB_APACK_U8X, 0, 1,
    lb_gemm_i8_ukernel_8x32c4_avx512vnni, lb_gemm_i8_ukernel_8x32c4_s4b_avx512vnni, 1};
#endif

const lb_gemm_i8_kernel *lb_gemm_i8_kernel_for(lb_isa isa)
{
    switch (isa) {
    case LB_ISA_SCALAR: return &kernel_generic;
#ifdef HAVE_AVX2_BUILD
    case LB_ISA_AVX2: return &kernel_avx2;
#endif
#ifdef HAVE_AVX512_BUILD
    case LB_ISA_AVX512: return &kernel_avx512;
#endif
#ifdef HAVE_AVX512VNNI_BUILD
    case LB_ISA_AVX512VNNI: return &kernel_avx512vnni;
#endif
    default: return NULL;
    }
}

const char *lb_gemm_i8_kernel_name(lb_isa isa)
{
    const lb_gemm_i8_kernel *k = lb_gemm_i8_kernel_for(isa);
    return k ? k->name : "";
}

/* ---------------------------------------------------------- detection */

/* Whether the CPU runs the instructions the path's file was compiled for. */
static bool cpu_has(lb_isa isa)
{
    switch (isa) {
    case LB_ISA_AUTO:
    case LB_ISA_SCALAR: return true;
#ifdef LB_X86
    case LB_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LB_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    case LB_ISA_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default: return false;
    }
}

bool lb_cpu_isa_available(lb_isa isa)
{
    if (isa == LB_ISA_AUTO) return true;
    return lb_gemm_i8_kernel_for(isa) != NULL && cpu_has(isa);
}

lb_isa lb_cpu_best_isa(void)
{
    static const lb_isa order[] = {LB_ISA_AVX512VNNI, LB_ISA_AVX512, LB_ISA_AVX2};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (lb_cpu_isa_available(order[i])) return order[i];
    return LB_ISA_SCALAR;
}

lb_status lb_cpu_select_isa(lb_ctx *ctx, lb_isa *out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output for the selected ISA");
    const lb_isa want = lb_ctx_isa(ctx);
    if (want == LB_ISA_AUTO) {
        *out = lb_cpu_best_isa();
        return LB_OK;
    }
    if (!lb_gemm_i8_kernel_for(want))
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "ISA path '%s' was requested (LOWBIT_ISA or lb_ctx_set_isa) but this build "
                        "did not compile it (see the configure summary)",
                        lb_isa_name(want));
    if (!cpu_has(want))
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "ISA path '%s' was requested (LOWBIT_ISA or lb_ctx_set_isa) but this CPU "
                        "does not support it (best available: %s)",
                        lb_isa_name(want), lb_isa_name(lb_cpu_best_isa()));
    *out = want;
    return LB_OK;
}

/* ------------------------------------------------------- public GEMM */

lb_status lb_gemm_i8_pack_b(lb_ctx *ctx, lb_int_format fmt, int trans_b, int64_t K, int64_t N,
                            const void *B, lb_packed_i8 **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output for the packed GEMM operand");
    *out = NULL;
    lb_isa isa;
    lb_status st = lb_cpu_select_isa(ctx, &isa);
    if (st != LB_OK) return st;
    return lb_gemm_i8_pack_b_with(ctx, lb_gemm_i8_kernel_for(isa), fmt, trans_b, K, N, B, out);
}

/* A packed B runs only on the path it was packed for. */
static lb_status packed_path_ok(lb_ctx *ctx, const lb_packed_i8 *B)
{
    if (!B) return lb_error(ctx, LB_ERR_ARG, "NULL packed GEMM operand");
    const lb_isa want = lb_ctx_isa(ctx);
    if (want != LB_ISA_AUTO && want != B->kernel->isa)
        return lb_error(ctx, LB_ERR_ARG,
                        "B was packed for the %s path but the context forces %s: pack it again "
                        "under this context",
                        lb_isa_name(B->kernel->isa), lb_isa_name(want));
    return LB_OK;
}

lb_status lb_gemm_i8_packed(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                            const void *A, const lb_packed_i8 *B, int32_t *C)
{
    const lb_status st = packed_path_ok(ctx, B);
    return st != LB_OK ? st : lb_gemm_i8_packed_run(ctx, fmt_a, trans_a, M, A, B, C, NULL);
}

lb_status lb_gemm_i8_packed_dequant(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                                    const void *A, const lb_packed_i8 *B, int32_t *C,
                                    const lb_gemm_i8_dequant *d)
{
    if (!d) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM dequantize epilogue");
    const lb_status st = packed_path_ok(ctx, B);
    return st != LB_OK ? st : lb_gemm_i8_packed_run(ctx, fmt_a, trans_a, M, A, B, C, d);
}

lb_status lb_gemm_i8(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                     const int8_t *A, const int8_t *B, int32_t *C)
{
    if (M < 0 || N < 0 || K < 0)
        return lb_error(ctx, LB_ERR_ARG, "negative GEMM size M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (K > LB_GEMM_I8_MAX_K)
        return lb_error(ctx, LB_ERR_ARG,
                        "GEMM K=%lld exceeds %d: int32 accumulation could overflow", (long long)K,
                        LB_GEMM_I8_MAX_K);
    if (M > 0 && N > 0 && !C) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM output");
    if (M > 0 && N > 0 && K > 0 && (!A || !B))
        return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand");
    lb_isa isa;
    lb_status st = lb_cpu_select_isa(ctx, &isa);
    if (st != LB_OK || M == 0 || N == 0) return st;
    lb_packed_i8 *pb = NULL;
    st = lb_gemm_i8_pack_b_with(ctx, lb_gemm_i8_kernel_for(isa), LB_INT_S8, trans_b, K, N, B, &pb);
    if (st != LB_OK) return st;
    st = lb_gemm_i8_packed_run(ctx, LB_INT_S8, trans_a, M, A, pb, C, NULL);
    lb_packed_i8_free(pb);
    return st;
}

/* ---------------------------------------------------------- peak probe */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

lb_status lb_cpu_int8_peak(lb_ctx *ctx, lb_isa isa, double seconds, double *gops)
{
    if (!gops) return lb_error(ctx, LB_ERR_ARG, "NULL output for the peak");
    *gops = 0;
    if (!(seconds > 0) || seconds > 60)
        return lb_error(ctx, LB_ERR_ARG, "peak probe duration %g s is not in (0, 60]", seconds);
    int64_t (*loop)(int64_t) = NULL;
    double macs_per_iter = 0;
    switch (isa) {
#ifdef HAVE_AVX2_BUILD
    case LB_ISA_AVX2: loop = lb_int8_peak_loop_avx2; macs_per_iter = 12 * 16; break;
#endif
#ifdef HAVE_AVX512_BUILD
    case LB_ISA_AVX512: loop = lb_int8_peak_loop_avx512; macs_per_iter = 12 * 32; break;
#endif
#ifdef HAVE_AVX512VNNI_BUILD
    case LB_ISA_AVX512VNNI: loop = lb_int8_peak_loop_avx512vnni; macs_per_iter = 12 * 64; break;
#endif
    default: break;
    }
    if (!loop || !cpu_has(isa))
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "no int8 peak probe for the '%s' path here%s",
                        lb_isa_name(isa),
                        loop ? " (this CPU does not support it)" : "");
    /* Calibrate on one thread: iterations that last about `seconds`. */
    int64_t iters = 100000;
    for (;;) {
        double t0 = now_seconds();
        loop(iters);
        double dt = now_seconds() - t0;
        if (dt > 0.02 || iters > ((int64_t)1 << 40)) {
            iters = (int64_t)((double)iters * seconds / dt) + 1;
            break;
        }
        iters *= 4;
    }
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = ctx ? lb_ctx_threads(ctx) : omp_get_max_threads();
#endif
    (void)nthreads;
    double start = 0, stop = 0;
    int ran = 1;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
#pragma omp barrier
#pragma omp master
        {
#ifdef _OPENMP
            ran = omp_get_num_threads();
#endif
            start = now_seconds();
        }
#pragma omp barrier
        loop(iters);
#pragma omp barrier
#pragma omp master
        stop = now_seconds();
    }
    *gops = (double)ran * (double)iters * macs_per_iter * 2.0 / (stop - start) / 1e9;
    return LB_OK;
}

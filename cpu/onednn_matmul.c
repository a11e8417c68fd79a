/* cpu/onednn_matmul.c — oneDNN's int8 matmul as a peer of lowbit's integer
 * GEMM, with lowbit's semantics (lb_gemm_i8_ref: C = op(A) · op(B), int8 A
 * and B, exact int32 C).
 *
 * oneDNN's fast int8 kernels multiply an unsigned source by signed weights,
 * so A is shifted to u8 and the shift is undone with a compensation:
 *   C = (A + 128) · B - 128·colsum(B)           (exact in int32)
 * computed as a u8·s8 -> s32 matmul with the weights reordered once into the
 * layout oneDNN prefers (format_tag_any) and the primitive created once per
 * shape (M, N, K) and layout, both kept in the lb_onednn_gemm_i8 object. The
 * per-call work is: shift A into the object's u8 buffer, execute, subtract
 * 128·colsum(B) (precomputed) from each row of C.
 *
 * Exactness: with VNNI (vpdpbusd) oneDNN sums into int32 exactly. Without
 * VNNI its kernels use vpmaddubsw, whose int16 pair sums saturate: a u8·s8
 * pair sum is at most 2·255·|b|, which fits int16 only when |b| <= 64. So
 * on such CPUs creation refuses weights outside [-64, 64] (int4 and int7
 * weights are fine). K is limited to 65793 = floor((2^31 - 1) / (255·128)) so
 * that the shifted sum itself fits int32.
 *
 * oneDNN 2.x (Debian 12 ships 2.6.3) and 3.x differ in how descriptors and
 * primitive descriptors are made; DNNL_VERSION_MAJOR selects the code (only
 * 2.x is tested here). Threads: oneDNN's OpenMP runtime is lowbit's libgomp,
 * so lb_ctx_set_threads (omp_set_num_threads) sets its thread count; call
 * it from serial code.
 */
#include "config.h"
#include "lowbit/cpu.h"

#include <stdio.h>
#include <string.h>
#include <oneapi/dnnl/dnnl.h>
#include "lowbit/alloc.h"
#include "lowbit/ref/int_gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define LB_ONEDNN_MAX_K 65793
#define LB_ONEDNN_NOVNNI_MAX_ABS_B 64

struct lb_onednn_gemm_i8 {
    int64_t M, N, K;
    int trans_a;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t matmul;
    dnnl_memory_t src, wei, dst; /* src wraps a_u8; dst's handle is set per call */
    uint8_t *a_u8;               /* op(A) + 128 stored like A: (M, K) or (K, M) */
    int32_t *comp;               /* (N) 128·colsum(B) */
    char impl[128];
};

bool lb_onednn_available(void) { return true; }

bool lb_onednn_int8_exact(void)
{
    /* dnnl_cpu_isa_t values are bit sets; 0x40 marks the AVX-512 VNNI family
     * (avx512_core_vnni 0x67, _bf16 0xe7, _amx 0x3e7). AVX2-VNNI (0x407) is
     * treated as not exact: its int8 code path is not verified here. */
    return (dnnl_get_effective_cpu_isa() & 0x40) != 0;
}

static lb_status dnnl_fail(lb_ctx *ctx, dnnl_status_t s, const char *what)
{
    return lb_error(ctx, s == dnnl_out_of_memory ? LB_ERR_NOMEM : LB_ERR_INTERNAL,
                    "oneDNN %s failed (dnnl_status_t %d)", what, (int)s);
}

#define DNNL_TRY(call, what)                                                                 \
    do {                                                                                     \
        dnnl_status_t s_ = (call);                                                           \
        if (s_ != dnnl_success) {                                                            \
            st = dnnl_fail(ctx, s_, what);                                                   \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

void lb_onednn_gemm_i8_free(lb_onednn_gemm_i8 *g)
{
    if (!g) return;
    if (g->matmul) dnnl_primitive_destroy(g->matmul);
    if (g->src) dnnl_memory_destroy(g->src);
    if (g->wei) dnnl_memory_destroy(g->wei);
    if (g->dst) dnnl_memory_destroy(g->dst);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->engine) dnnl_engine_destroy(g->engine);
    lb_free(g->a_u8);
    lb_free(g->comp);
    lb_free(g);
}

const char *lb_onednn_gemm_i8_impl(const lb_onednn_gemm_i8 *g) { return g ? g->impl : ""; }

lb_status lb_onednn_gemm_i8_create(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                                   int64_t K, const int8_t *B, lb_onednn_gemm_i8 **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output for the oneDNN GEMM");
    *out = NULL;
    if (M < 1 || N < 1 || K < 1)
        return lb_error(ctx, LB_ERR_ARG, "oneDNN GEMM needs M, N, K >= 1, got %lld %lld %lld",
                        (long long)M, (long long)N, (long long)K);
    if (!B) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand B");
    if (K > LB_ONEDNN_MAX_K)
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "oneDNN GEMM K=%lld exceeds %d: the u8-shifted sum could leave int32",
                        (long long)K, LB_ONEDNN_MAX_K);
    const int exact = lb_onednn_int8_exact();
    int64_t max_abs = 0;
    for (int64_t i = 0; i < N * K; i++) {
        int64_t v = B[i] < 0 ? -(int64_t)B[i] : B[i];
        if (v > max_abs) max_abs = v;
    }
    if (!exact && max_abs > LB_ONEDNN_NOVNNI_MAX_ABS_B)
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "oneDNN int8 on this CPU has no VNNI: its vpmaddubsw pair sums saturate "
                        "unless |B| <= %d, and B holds %lld",
                        LB_ONEDNN_NOVNNI_MAX_ABS_B, (long long)max_abs);

    lb_status st = LB_OK;
    lb_onednn_gemm_i8 *g = lb_calloc(1, sizeof *g);
    if (!g) return lb_error(ctx, LB_ERR_NOMEM, "out of memory for the oneDNN GEMM");
    g->M = M;
    g->N = N;
    g->K = K;
    g->trans_a = trans_a != 0;
    g->a_u8 = lb_alloc((size_t)M * (size_t)K);
    g->comp = lb_alloc((size_t)N * sizeof(int32_t));
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t wei_user = NULL;
    if (!g->a_u8 || !g->comp) {
        st = lb_error(ctx, LB_ERR_NOMEM, "out of memory for the oneDNN GEMM buffers");
        goto done;
    }
    for (int64_t n = 0; n < N; n++) {
        int32_t colsum = 0;
        for (int64_t k = 0; k < K; k++) colsum += trans_b ? B[n * K + k] : B[k * N + n];
        g->comp[n] = 128 * colsum;
    }

    DNNL_TRY(dnnl_engine_create(&g->engine, dnnl_cpu, 0), "engine creation");
    DNNL_TRY(dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags),
             "stream creation");
    {
        const dnnl_dims_t src_dims = {M, K}, wei_dims = {K, N}, dst_dims = {M, N};
        const dnnl_format_tag_t src_tag = trans_a ? dnnl_ba : dnnl_ab;
        const dnnl_format_tag_t wei_tag = trans_b ? dnnl_ba : dnnl_ab;
#if DNNL_VERSION_MAJOR >= 3
        dnnl_memory_desc_t src_md = NULL, wei_any = NULL, wei_md = NULL, dst_md = NULL;
        dnnl_status_t s = dnnl_memory_desc_create_with_tag(&src_md, 2, src_dims, dnnl_u8, src_tag);
        if (s == dnnl_success)
            s = dnnl_memory_desc_create_with_tag(&wei_any, 2, wei_dims, dnnl_s8,
                                                 dnnl_format_tag_any);
        if (s == dnnl_success)
            s = dnnl_memory_desc_create_with_tag(&wei_md, 2, wei_dims, dnnl_s8, wei_tag);
        if (s == dnnl_success)
            s = dnnl_memory_desc_create_with_tag(&dst_md, 2, dst_dims, dnnl_s32, dnnl_ab);
        if (s == dnnl_success)
            s = dnnl_matmul_primitive_desc_create(&pd, g->engine, src_md, wei_any, NULL, dst_md,
                                                  NULL);
        const_dnnl_memory_desc_t wei_best =
            s == dnnl_success ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL;
        if (s == dnnl_success) s = dnnl_memory_create(&g->src, src_md, g->engine, g->a_u8);
        if (s == dnnl_success) s = dnnl_memory_create(&g->dst, dst_md, g->engine, DNNL_MEMORY_NONE);
        if (s == dnnl_success) s = dnnl_memory_create(&wei_user, wei_md, g->engine, (void *)B);
        if (s == dnnl_success)
            s = dnnl_memory_create(&g->wei, wei_best, g->engine, DNNL_MEMORY_ALLOCATE);
        if (s == dnnl_success)
            s = dnnl_reorder_primitive_desc_create(&rpd, wei_md, g->engine, wei_best, g->engine,
                                                   NULL);
        dnnl_memory_desc_destroy(src_md);
        dnnl_memory_desc_destroy(wei_any);
        dnnl_memory_desc_destroy(wei_md);
        dnnl_memory_desc_destroy(dst_md);
        DNNL_TRY(s, "matmul primitive descriptor creation");
#else
        dnnl_memory_desc_t src_md, wei_any, wei_md, dst_md;
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_u8, src_tag), "src desc");
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_any, 2, wei_dims, dnnl_s8, dnnl_format_tag_any),
                 "weights desc");
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_md, 2, wei_dims, dnnl_s8, wei_tag),
                 "weights desc");
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_s32, dnnl_ab), "dst desc");
        dnnl_matmul_desc_t mmd;
        DNNL_TRY(dnnl_matmul_desc_init(&mmd, &src_md, &wei_any, NULL, &dst_md), "matmul desc");
        DNNL_TRY(dnnl_primitive_desc_create(&pd, &mmd, NULL, g->engine, NULL),
                 "matmul primitive descriptor creation");
        const dnnl_memory_desc_t *wei_best =
            dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        DNNL_TRY(dnnl_memory_create(&g->src, &src_md, g->engine, g->a_u8), "src memory");
        DNNL_TRY(dnnl_memory_create(&g->dst, &dst_md, g->engine, DNNL_MEMORY_NONE), "dst memory");
        DNNL_TRY(dnnl_memory_create(&wei_user, &wei_md, g->engine, (void *)B), "weights memory");
        DNNL_TRY(dnnl_memory_create(&g->wei, wei_best, g->engine, DNNL_MEMORY_ALLOCATE),
                 "packed weights memory");
        DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &wei_md, g->engine, wei_best, g->engine,
                                                    NULL),
                 "weights reorder descriptor");
#endif
    }
    /* Reorder the weights once into oneDNN's preferred (blocked) layout. */
    DNNL_TRY(dnnl_primitive_create(&reorder, rpd), "weights reorder creation");
    {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, wei_user}, {DNNL_ARG_TO, g->wei}};
        DNNL_TRY(dnnl_primitive_execute(reorder, g->stream, 2, args), "weights reorder");
        DNNL_TRY(dnnl_stream_wait(g->stream), "weights reorder wait");
    }
    DNNL_TRY(dnnl_primitive_create(&g->matmul, pd), "matmul primitive creation");
    {
        const char *impl = NULL;
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
            impl)
            snprintf(g->impl, sizeof g->impl, "%s", impl);
    }
done:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (wei_user) dnnl_memory_destroy(wei_user);
    if (st != LB_OK) {
        lb_onednn_gemm_i8_free(g);
        return st;
    }
    *out = g;
    return LB_OK;
}

lb_status lb_onednn_gemm_i8_run(lb_ctx *ctx, lb_onednn_gemm_i8 *g, const int8_t *A, int32_t *C)
{
    if (!g || !A || !C) return lb_error(ctx, LB_ERR_ARG, "NULL argument to the oneDNN GEMM");
    lb_status st = LB_OK;
    const int64_t M = g->M, N = g->N, MK = g->M * g->K;
    uint8_t *a_u8 = g->a_u8;
    const int32_t *comp = g->comp;
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = ctx ? lb_ctx_threads(ctx) : omp_get_max_threads();
#endif
    (void)nthreads;
    /* A + 128 as u8 is the int8 bit pattern with its top bit flipped. */
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && MK > 65536)
    for (int64_t i = 0; i < MK; i++) a_u8[i] = (uint8_t)((uint8_t)A[i] ^ 0x80u);
    DNNL_TRY(dnnl_memory_set_data_handle(g->dst, C), "dst handle");
    {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, g->src}, {DNNL_ARG_WEIGHTS, g->wei}, {DNNL_ARG_DST, g->dst}};
        DNNL_TRY(dnnl_primitive_execute(g->matmul, g->stream, 3, args), "matmul execution");
        DNNL_TRY(dnnl_stream_wait(g->stream), "matmul wait");
    }
    /* Undo the shift: subtract 128·colsum(B). Unsigned arithmetic, because
     * the shifted sum may have wrapped; the difference is the exact result. */
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && M * N > 65536)
    for (int64_t m = 0; m < M; m++) {
        int32_t *row = C + m * N;
        for (int64_t n = 0; n < N; n++) row[n] = (int32_t)((uint32_t)row[n] - (uint32_t)comp[n]);
    }
done:
    return st;
}

lb_status lb_gemm_i8_onednn(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            const int8_t *A, const int8_t *B, int32_t *C)
{
    if (M < 0 || N < 0 || K < 0)
        return lb_error(ctx, LB_ERR_ARG, "negative GEMM size M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (M > 0 && N > 0 && !C) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM output");
    if (M == 0 || N == 0) return LB_OK;
    if (K == 0) {
        memset(C, 0, (size_t)M * (size_t)N * sizeof *C);
        return LB_OK;
    }
    lb_onednn_gemm_i8 *g = NULL;
    lb_status st = lb_onednn_gemm_i8_create(ctx, trans_a, trans_b, M, N, K, B, &g);
    if (st == LB_OK) st = lb_onednn_gemm_i8_run(ctx, g, A, C);
    lb_onednn_gemm_i8_free(g);
    return st;
}

/* tests/test_cpu_dispatch.c — run-time ISA selection of the cpu backend:
 * LOWBIT_ISA parsing, forced paths, refusal of unavailable paths, packed
 * operands bound to their path, argument checks, edge sizes, the peak probe.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/int_gemm.h"
#include "test_util.h"

static const lb_isa all_paths[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
#define NPATHS (sizeof all_paths / sizeof all_paths[0])

/* LOWBIT_ISA is read when the context is created. */
static void test_env_override(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPATHS; i++) {
        setenv("LOWBIT_ISA", lb_isa_name(all_paths[i]), 1);
        lb_ctx *ctx = NULL;
        assert_int_equal(lb_ctx_create(&ctx), LB_OK);
        assert_int_equal(lb_ctx_isa(ctx), all_paths[i]);
        lb_isa got = LB_ISA_AUTO;
        lb_status st = lb_cpu_select_isa(ctx, &got);
        if (lb_cpu_isa_available(all_paths[i])) {
            assert_int_equal(st, LB_OK);
            assert_int_equal(got, all_paths[i]);
        } else {
            /* Forcing a path the CPU (or build) lacks is an error with a clear message. */
            assert_int_equal(st, LB_ERR_UNSUPPORTED);
            assert_non_null(strstr(lb_ctx_error(ctx), lb_isa_name(all_paths[i])));
            int8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 1, 1};
            int32_t c[4];
            assert_int_equal(lb_gemm_i8(ctx, 0, 1, 2, 2, 2, a, b, c), LB_ERR_UNSUPPORTED);
            lb_packed_i8 *p = (lb_packed_i8 *)1;
            assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 1, 2, 2, b, &p),
                             LB_ERR_UNSUPPORTED);
            assert_null(p);
            print_message("forced %s: %s\n", lb_isa_name(all_paths[i]), lb_ctx_error(ctx));
        }
        lb_ctx_free(ctx);
    }
    setenv("LOWBIT_ISA", "avx9000", 1);
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_ERR_ARG);
    assert_non_null(ctx);
    assert_int_equal(lb_ctx_isa(ctx), LB_ISA_AUTO);
    lb_ctx_free(ctx);
    unsetenv("LOWBIT_ISA");
}

/* Auto picks the fastest available path; scalar always exists. */
static void test_auto_is_best(void **state)
{
    (void)state;
    assert_true(lb_cpu_isa_available(LB_ISA_SCALAR));
    assert_true(lb_cpu_isa_available(LB_ISA_AUTO));
    const lb_isa best = lb_cpu_best_isa();
    assert_true(lb_cpu_isa_available(best));
    for (size_t i = 0; i < NPATHS; i++)
        if (lb_cpu_isa_available(all_paths[i])) assert_true(all_paths[i] <= best);
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_ctx_set_isa(ctx, LB_ISA_AUTO), LB_OK);
    lb_isa got;
    assert_int_equal(lb_cpu_select_isa(ctx, &got), LB_OK);
    assert_int_equal(got, best);
    lb_isa none;
    assert_int_equal(lb_cpu_select_isa(NULL, &none), LB_OK); /* NULL context: auto */
    assert_int_equal(none, best);
    assert_true(strlen(lb_gemm_i8_kernel_name(LB_ISA_SCALAR)) > 0);
    assert_string_equal(lb_gemm_i8_kernel_name(LB_ISA_AUTO), "");
    print_message("best path: %s (kernel %s)\n", lb_isa_name(best), lb_gemm_i8_kernel_name(best));
    lb_ctx_free(ctx);
}

/* A packed operand belongs to the path it was packed for. */
static void test_packed_bound_to_path(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    int8_t w[6] = {1, -2, 3, -4, 5, -6}; /* (N=2, K=3) */
    int8_t x[3] = {7, 8, 9};             /* (M=1, K=3) */
    int32_t y[2] = {0, 0}, want[2];
    assert_int_equal(lb_gemm_i8_ref(NULL, 0, 1, 1, 2, 3, x, w, want), LB_OK);
    assert_int_equal(lb_ctx_set_isa(ctx, LB_ISA_SCALAR), LB_OK);
    lb_packed_i8 *p = NULL;
    assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 1, 3, 2, w, &p), LB_OK);
    assert_int_equal(lb_packed_i8_isa(p), LB_ISA_SCALAR);
    assert_int_equal(lb_packed_i8_k(p), 3);
    assert_int_equal(lb_packed_i8_n(p), 2);
    assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, 1, x, p, y), LB_OK);
    assert_memory_equal(y, want, sizeof y);
    /* auto accepts any packed path */
    assert_int_equal(lb_ctx_set_isa(ctx, LB_ISA_AUTO), LB_OK);
    assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, 1, x, p, y), LB_OK);
    const lb_isa best = lb_cpu_best_isa();
    if (best != LB_ISA_SCALAR) {
        assert_int_equal(lb_ctx_set_isa(ctx, best), LB_OK);
        assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, 1, x, p, y), LB_ERR_ARG);
    }
    lb_packed_i8_free(p);
    lb_packed_i8_free(NULL);
    lb_ctx_free(ctx);
}

/* Same argument checks as the reference; empty sizes. */
static void test_arguments_and_edges(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    int8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t c[4] = {9, 9, 9, 9};
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, -1, 2, 2, a, a, c), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, 2, 2, LB_GEMM_I8_MAX_K + 1, a, a, c), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, 2, 2, 2, NULL, a, c), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, 2, 2, 2, a, a, NULL), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, 0, 2, 2, a, a, c), LB_OK); /* M = 0 */
    assert_int_equal(lb_gemm_i8(ctx, 0, 0, 2, 2, 0, NULL, NULL, c), LB_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(c[i], 0); /* K = 0: zeros */
    lb_packed_i8 *p = NULL;
    assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 0, 2, 2, NULL, &p), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8_pack_b(ctx, (lb_int_format)7, 0, 2, 2, a, &p), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 0, 2, 2, a, NULL), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, 2, a, NULL, c), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 0, 2, 2, a, &p), LB_OK);
    assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, -3, a, p, c), LB_ERR_ARG);
    assert_int_equal(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, 2, NULL, p, c), LB_ERR_ARG);
    lb_packed_i8_free(p);
    /* A NULL context means: auto path, all OpenMP threads. */
    int8_t x[6] = {-128, 127, 5, -7, 0, 1}, w[6] = {127, -128, 3, 9, -1, 2};
    int32_t y[4], want[4];
    assert_int_equal(lb_gemm_i8_ref(NULL, 0, 1, 2, 2, 3, x, w, want), LB_OK);
    assert_int_equal(lb_gemm_i8(NULL, 0, 1, 2, 2, 3, x, w, y), LB_OK);
    assert_memory_equal(y, want, sizeof y);
    assert_int_equal(lb_s4_bytes(0), 0);
    assert_int_equal(lb_s4_bytes(1), 1);
    assert_int_equal(lb_s4_bytes(7), 4);
    lb_ctx_free(ctx);
}

/* Results do not depend on the thread count (3 threads vs 1 on a shape
 * with many tiles), on every available path. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    const int64_t M = 301, N = 97, K = 333;
    int8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(N * K));
    int32_t *c1 = malloc((size_t)(M * N) * sizeof(int32_t));
    int32_t *c3 = malloc((size_t)(M * N) * sizeof(int32_t));
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c1);
    assert_non_null(c3);
    for (int64_t i = 0; i < M * K; i++) a[i] = (int8_t)lb_rng_u32(3, 1, (uint64_t)i);
    for (int64_t i = 0; i < N * K; i++) b[i] = (int8_t)lb_rng_u32(3, 2, (uint64_t)i);
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    for (size_t i = 0; i < NPATHS; i++) {
        if (!lb_cpu_isa_available(all_paths[i])) continue;
        assert_int_equal(lb_ctx_set_isa(ctx, all_paths[i]), LB_OK);
        assert_int_equal(lb_ctx_set_threads(ctx, 1), LB_OK);
        assert_int_equal(lb_gemm_i8(ctx, 0, 1, M, N, K, a, b, c1), LB_OK);
        if (lb_ctx_set_threads(ctx, 3) != LB_OK) continue; /* built without OpenMP */
        assert_int_equal(lb_gemm_i8(ctx, 0, 1, M, N, K, a, b, c3), LB_OK);
        assert_memory_equal(c1, c3, (size_t)(M * N) * sizeof(int32_t));
    }
    lb_ctx_free(ctx);
    free(a);
    free(b);
    free(c1);
    free(c3);
}

/* The peak probe runs on available vector paths and refuses the others. */
static void test_peak_probe(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_ctx_set_threads(ctx, 1), LB_OK);
    double g = -1;
    assert_int_equal(lb_cpu_int8_peak(ctx, LB_ISA_SCALAR, 0.01, &g), LB_ERR_UNSUPPORTED);
    assert_int_equal(lb_cpu_int8_peak(ctx, LB_ISA_AVX2, 0.0, &g), LB_ERR_ARG);
    for (size_t i = 1; i < NPATHS; i++) {
        lb_status st = lb_cpu_int8_peak(ctx, all_paths[i], 0.01, &g);
        if (lb_cpu_isa_available(all_paths[i])) {
            assert_int_equal(st, LB_OK);
            assert_true(g > 1.0); /* GOP/s: any vector unit does more than 1 */
            print_message("%s int8 peak ~%.0f GOP/s (1 thread, 10 ms)\n",
                          lb_isa_name(all_paths[i]), g);
        } else {
            assert_int_equal(st, LB_ERR_UNSUPPORTED);
        }
    }
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_override),
        cmocka_unit_test(test_auto_is_best),
        cmocka_unit_test(test_packed_bound_to_path),
        cmocka_unit_test(test_arguments_and_edges),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_peak_probe),
    };
    return LB_RUN_TESTS(tests);
}

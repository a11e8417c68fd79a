/* tests/test_core.c — status strings, context, aligned allocation, tensors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "test_util.h"

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(lb_status_str(LB_OK), "ok");
    assert_string_equal(lb_status_str(LB_ERR_FORMAT), "format error");
    assert_string_equal(lb_status_str((lb_status)1234), "unknown status");
}

static void test_context(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    unsetenv("LOWBIT_ISA");
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_ctx_isa(ctx), LB_ISA_AUTO);
    assert_int_equal(lb_ctx_set_threads(ctx, 1), LB_OK);
    assert_int_equal(lb_ctx_threads(ctx), 1);
    assert_int_equal(lb_ctx_set_threads(ctx, 0), LB_ERR_ARG);
    assert_non_null(strstr(lb_ctx_error(ctx), "thread"));
    lb_ctx_clear_error(ctx);
    assert_string_equal(lb_ctx_error(ctx), "");
    lb_ctx_set_seed(ctx, 99);
    assert_int_equal(lb_ctx_seed(ctx), 99);
    assert_int_equal(lb_error(ctx, LB_ERR_IO, "x=%d", 5), LB_ERR_IO);
    assert_string_equal(lb_ctx_error(ctx), "x=5");
    lb_ctx_free(ctx);
    lb_ctx_free(NULL);

    setenv("LOWBIT_ISA", "avx2", 1);
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_ctx_isa(ctx), LB_ISA_AVX2);
    lb_ctx_free(ctx);
    setenv("LOWBIT_ISA", "sse9", 1);
    assert_int_equal(lb_ctx_create(&ctx), LB_ERR_ARG);
    assert_non_null(ctx);
    assert_non_null(strstr(lb_ctx_error(ctx), "sse9"));
    lb_ctx_free(ctx);
    unsetenv("LOWBIT_ISA");
}

static int log_calls;
static void count_log(void *user, lb_log_level level, const char *msg)
{
    (void)user; (void)level;
    if (strcmp(msg, "hello 3") == 0) log_calls++;
}

static void test_logging(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_log(ctx, LB_LOG_INFO, "hello %d", 3); /* no sink: dropped */
    lb_ctx_set_log(ctx, count_log, NULL, LB_LOG_INFO);
    lb_log(ctx, LB_LOG_DEBUG, "hello %d", 3); /* below level */
    lb_log(ctx, LB_LOG_WARN, "hello %d", 3);
    assert_int_equal(log_calls, 1);
    lb_ctx_free(ctx);
}

static void test_alloc(void **state)
{
    (void)state;
    for (size_t n = 0; n < 300; n += 37) {
        void *p = lb_alloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % LB_ALIGNMENT, 0);
        lb_free(p);
    }
    unsigned char *z = lb_calloc(10, 7);
    for (int i = 0; i < 70; i++) assert_int_equal(z[i], 0);
    lb_free(z);
    lb_free(NULL);
    assert_null(lb_calloc(SIZE_MAX / 2, 4));
    size_t r;
    assert_false(lb_mul_size(SIZE_MAX, 2, &r));
    assert_true(lb_mul_size(3, 4, &r) && r == 12);
    assert_false(lb_add_size(SIZE_MAX, 1, &r));
}

static void test_tensor(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_tensor *t = NULL;
    int64_t shape[3] = {2, 3, 5};
    assert_int_equal(lb_tensor_create(ctx, LB_F32, 3, shape, &t), LB_OK);
    assert_int_equal(t->numel, 30);
    assert_int_equal(t->nbytes, 120);
    assert_int_equal(t->shape[3], 1);
    assert_int_equal((uintptr_t)t->data % LB_ALIGNMENT, 0);
    for (size_t i = 0; i < t->numel; i++) assert_true(lb_tensor_f32(t)[i] == 0.0f);
    lb_tensor_free(t);
    lb_tensor_free(NULL);

    int64_t bad[2] = {2, -1};
    assert_int_equal(lb_tensor_create(ctx, LB_S8, 2, bad, &t), LB_ERR_ARG);
    assert_null(t);
    int64_t huge[4] = {INT64_MAX, INT64_MAX, 2, 2};
    assert_int_equal(lb_tensor_create(ctx, LB_F64, 4, huge, &t), LB_ERR_NOMEM);
    assert_int_equal(lb_tensor_create(ctx, LB_F64, 5, shape, &t), LB_ERR_ARG);
    assert_int_equal(lb_tensor_create(ctx, (lb_dtype)42, 1, shape, &t), LB_ERR_ARG);
    /* a scalar */
    assert_int_equal(lb_tensor_create(ctx, LB_S32, 0, NULL, &t), LB_OK);
    assert_int_equal(t->numel, 1);
    lb_tensor_free(t);
    assert_int_equal(lb_dtype_size(LB_F64), 8);
    assert_string_equal(lb_dtype_name(LB_U8), "u8");
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings), cmocka_unit_test(test_context),
        cmocka_unit_test(test_logging),        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_tensor),
    };
    return LB_RUN_TESTS(tests);
}

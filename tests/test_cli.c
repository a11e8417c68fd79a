/* tests/test_cli.c — the `lowbit` program's argument handling: help and
 * version work, unknown commands/flags, missing values and bad numbers give a
 * one-line error plus usage and exit 2; bad files give exit 1 and name the file.
 * The benchmarks run at toy sizes (their cpu-vs-ref checks included);
 * `lowbit check --backend cpu` runs its whole table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/npy.h"
#include "cli_runner.h"

static char out[16384];

static void test_version_and_help(void **state)
{
    (void)state;
    assert_int_equal(LB_CLI(out, "--version"), 0);
    assert_non_null(strstr(out, "lowbit "));
    assert_int_equal(LB_CLI(out, "--help"), 0);
    assert_non_null(strstr(out, "commands:"));
    const char *cmds[] = {"train", "eval", "op", "compare", "check", "bench", "data"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(LB_CLI(out, cmds[i], "--help"), 0);
        assert_non_null(strstr(out, "usage: lowbit"));
    }
}

static void test_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(lb_run_cli(out, sizeof out, (const char *const[]){NULL}), 2);
    assert_int_equal(LB_CLI(out, "frobnicate"), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    assert_int_equal(LB_CLI(out, "data", "--bogus-flag"), 2);
    assert_non_null(strstr(out, "--bogus-flag"));
    assert_non_null(strstr(out, "usage: lowbit data"));
    assert_int_equal(LB_CLI(out, "op", "--in"), 2);
    assert_non_null(strstr(out, "needs a value"));
    assert_int_equal(LB_CLI(out, "op", "no-such-op"), 2);
    assert_non_null(strstr(out, "unknown operation"));
    assert_int_equal(LB_CLI(out, "op", "x", "--seed", "12abc"), 2);
    assert_non_null(strstr(out, "12abc"));
    assert_int_equal(LB_CLI(out, "op", "x", "--set", "novalue"), 2);
    assert_non_null(strstr(out, "key=value"));
    assert_int_equal(LB_CLI(out, "compare", "a.npy"), 2);
    assert_int_equal(LB_CLI(out, "compare", "a.npy", "b.npy", "--atol", "-1"), 2);
    assert_int_equal(LB_CLI(out, "compare", "a.npy", "b.npy", "--rtol", "abc"), 2);
}

static lb_status write_f32(const char *path, int ndim, const int64_t *shape, const float *v)
{
    lb_tensor *t = NULL;
    lb_status st = lb_tensor_create(NULL, LB_F32, ndim, shape, &t);
    if (st != LB_OK) return st;
    memcpy(t->data, v, t->nbytes);
    st = lb_npy_write(NULL, path, t);
    lb_tensor_free(t);
    return st;
}

static void test_compare(void **state)
{
    (void)state;
    char a[512], b[512], c[512], bad[512];
    const char *tmp = lb_test_tmp_dir();
    int64_t shape[2] = {2, 3}, shape2[1] = {6};
    float va[6] = {1, 2, 3, 4, 5, 6}, vb[6] = {1, 2, 3.001f, 4, 5, 6};
    assert_int_equal(write_f32(lb_test_path(a, sizeof a, tmp, "cmp_a.npy"), 2, shape, va), LB_OK);
    assert_int_equal(write_f32(lb_test_path(b, sizeof b, tmp, "cmp_b.npy"), 2, shape, vb), LB_OK);
    assert_int_equal(write_f32(lb_test_path(c, sizeof c, tmp, "cmp_c.npy"), 1, shape2, va), LB_OK);
    assert_int_equal(LB_CLI(out, "compare", a, a), 0);
    assert_int_equal(LB_CLI(out, "compare", a, b), 1);
    assert_non_null(strstr(out, "mismatch at [0, 2]"));
    assert_int_equal(LB_CLI(out, "compare", a, b, "--atol", "0.01"), 0);
    assert_int_equal(LB_CLI(out, "compare", a, b, "--rtol", "0.001"), 0);
    assert_int_equal(LB_CLI(out, "compare", a, c), 1);
    assert_non_null(strstr(out, "shape mismatch"));
    lb_test_path(bad, sizeof bad, tmp, "cmp_bad.npy");
    assert_int_equal(lb_test_write_file(bad, "not an npy file", 15), 0);
    assert_int_equal(LB_CLI(out, "compare", a, bad), 1);
    assert_non_null(strstr(out, "cmp_bad.npy"));
    assert_int_equal(LB_CLI(out, "compare", a, "/nonexistent/x.npy"), 1);
    assert_non_null(strstr(out, "/nonexistent/x.npy"));
}

/* `lowbit bench linear` at a toy shape: every variant checked against ref
 * (bit-exact for the integer recipes) and timed; bad variants are usage or
 * argument errors. */
static void test_bench_linear(void **state)
{
    (void)state;
    static char big[32768];
    assert_int_equal(LB_CLI(big, "bench", "linear", "--shapes", "40x24x16", "--threads", "1",
                            "--repeats", "1", "--min-time", "0.001", "--variants",
                            "fp32,int8,hq:lss=nonzero,luq:smp=2"),
                     0);
    assert_non_null(strstr(big, "(tokens, out, in) = (40, 24, 16)"));
    const char *rows[] = {"int8", "hq:lss=nonzero", "luq:smp=2"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *r = strstr(big, rows[i]);
        assert_non_null(r);
        const char *eol = strchr(r, '\n');
        const char *ex = strstr(r, "bit-exact");
        assert_true(ex && eol && ex < eol);
    }
    assert_int_equal(LB_CLI(out, "bench", "linear", "--variants", "hq:lss=sometimes"), 1);
    assert_non_null(strstr(out, "sometimes"));
    assert_int_equal(LB_CLI(out, "bench", "linear", "--isa", "avx2"), 2);
    assert_int_equal(LB_CLI(out, "bench", "step", "--shapes", "1x1x1"), 2);
}

/* `lowbit check --backend cpu`: the whole table (GEMMs, quantizers, the
 * quantized layers) on every path this machine has, at 1 and 2 threads. */
static void test_check_cpu(void **state)
{
    (void)state;
    static char big[65536];
    assert_int_equal(LB_CLI(big, "check", "--backend", "cpu", "--threads", "2"), 0);
    assert_non_null(strstr(big, " 0 failed"));
    const char *ops[] = {"gemm-i8", "hq ", "bit-split", "luq ", "hadamard", "lsq-backward",
                         "qlinear-hq", "qlinear-luq"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) assert_non_null(strstr(big, ops[i]));
    assert_null(strstr(big, "MISMATCH"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_bench_linear),
        cmocka_unit_test(test_check_cpu),
    };
    return LB_RUN_TESTS(tests);
}

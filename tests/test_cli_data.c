/* tests/test_cli_data.c — the `lowbit data` subcommand, run as a program
 * ($LB_TEST_BIN): summaries, exit code 2 for usage errors, 1 for load
 * errors with a message naming the file. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lowbit/datasets.h"
#include "test_util.h"

/* Runs `$LB_TEST_BIN args` with stdout and stderr captured together into
 * out; returns the exit status (or -1). */
static int run_lowbit(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", getenv("LB_TEST_BIN"), args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_output(const char *out, const char *needle)
{
    if (!strstr(out, needle)) fail_msg("output lacks '%s':\n%s", needle, out);
}

static void test_fashion_mnist_summary(void **state)
{
    (void)state;
    char probe[600];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", LB_FASHION_MNIST_DIR);
    if (stat(probe, &st) != 0) skip(); /* dataset-fashion-mnist not installed */
    static char out[1 << 16];
    unsetenv(LB_FASHION_MNIST_ENV);
    assert_int_equal(run_lowbit("data fashion-mnist", out, sizeof out), 0);
    expect_output(out, "train     60000  28x28       0.2860     0.3530");
    expect_output(out, "test      10000  28x28");
    expect_output(out, "10 classes");
    expect_output(out, "0  T-shirt/top      6000     1000");
    expect_output(out, "9  Ankle boot       6000     1000");
}

static void test_usage_errors(void **state)
{
    (void)state;
    static char out[1 << 14];
    assert_int_equal(run_lowbit("data fashion-mnist --bogus", out, sizeof out), 2);
    expect_output(out, "unknown option '--bogus'");
    expect_output(out, "usage: lowbit data fashion-mnist");
    assert_int_equal(run_lowbit("data fashion-mnist --dir", out, sizeof out), 2);
    expect_output(out, "needs a value");
    assert_int_equal(run_lowbit("data", out, sizeof out), 2);
    assert_int_equal(run_lowbit("data mnist", out, sizeof out), 2);
    expect_output(out, "unknown dataset 'mnist'");
    assert_int_equal(run_lowbit("data text --val-fraction abc", out, sizeof out), 2);
    expect_output(out, "--val-fraction 'abc'");
    assert_int_equal(run_lowbit("data text --val-fraction 1", out, sizeof out), 2);
    assert_int_equal(run_lowbit("data text --corpus", out, sizeof out), 2);
    assert_int_equal(run_lowbit("data text --frobnicate 3", out, sizeof out), 2);
    assert_int_equal(run_lowbit("data --help", out, sizeof out), 0);
    expect_output(out, "usage: lowbit data");
}

static void test_load_errors(void **state)
{
    (void)state;
    static char out[1 << 14];
    char args[1024];
    snprintf(args, sizeof args, "data fashion-mnist --dir '%s/no_such_dir'", lb_test_tmp_dir());
    assert_int_equal(run_lowbit(args, out, sizeof out), 1);
    expect_output(out, "no_such_dir");
    expect_output(out, "apt-get install dataset-fashion-mnist");
    snprintf(args, sizeof args, "data text --corpus '%s/no_such_file.txt'", lb_test_tmp_dir());
    assert_int_equal(run_lowbit(args, out, sizeof out), 1);
    expect_output(out, "no_such_file.txt: no such file");
}

static void test_text_summary(void **state)
{
    (void)state;
    static char out[1 << 14];
    char path[512], args[1024];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "cli_corpus.txt");
    /* 8 bytes; val fraction 0.5 keeps "abcd" for training: 2 bits/byte */
    assert_int_equal(lb_test_write_file(path, "abcdxyz\n", 8), 0);
    snprintf(args, sizeof args, "data text --corpus '%s' --val-fraction 0.5", path);
    assert_int_equal(run_lowbit(args, out, sizeof out), 0);
    expect_output(out, "size             8 bytes");
    expect_output(out, "train            4 bytes");
    expect_output(out, "validation       4 bytes (50.0%)");
    expect_output(out, "distinct bytes   8 (train 4, validation 4)");
    expect_output(out, "unigram entropy  2.0000 bits/byte");
    expect_output(out, "  | abcd");
}

int main(void)
{
    const char *bin = getenv("LB_TEST_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "LB_TEST_BIN does not name the lowbit program: skipping\n");
        return LB_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist_summary),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_text_summary),
    };
    return LB_RUN_TESTS(tests);
}

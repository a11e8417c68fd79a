/* tests/test_ptq_cli.c — the commands `lowbit ptq`, `stats`, `import`,
 * `embed` and `eval` of a quantized model, run as a user would.
 *
 * SKIPs (77) while the commands are not in the program's table. Usage errors
 * exit 2; data-free quantization of a small random gpt checkpoint exits 0
 * and writes a quantized file the library loads; with the Austen corpus
 * installed, `lowbit ptq --method w8a8 --eval`, `lowbit eval` and `lowbit
 * stats` of it run; with all-MiniLM-L6-v2 installed, `lowbit import` and
 * `lowbit embed` (a self-comparison gives cosine 1) run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli_runner.h"
#include "lowbit/datasets.h"
#include "lowbit/npy.h"
#include "lowbit/ptq.h"
#include "lowbit/tokenizer.h"

static char g_ckpt[1024];

static void test_usage(void **state)
{
    (void)state;
    char out[8192];
    assert_int_equal(LB_CLI(out, "ptq"), 2);
    assert_int_equal(LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "awq", "--out", "x"), 2);
    assert_non_null(strstr(out, "awq"));
    assert_int_equal(LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "rtn", "--abits", "0",
                            "--act-sites", "all", "--out", "x"),
                     2);
    assert_int_equal(LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "rtn", "--wbits", "9",
                            "--out", "x"),
                     2);
    assert_int_equal(LB_CLI(out, "ptq", "--help"), 0);
    assert_non_null(strstr(out, "--method"));
    assert_int_equal(LB_CLI(out, "stats"), 2);
    assert_int_equal(LB_CLI(out, "stats", "--help"), 0);
    assert_int_equal(LB_CLI(out, "embed", "--out", "x.npy"), 2);
    assert_int_equal(LB_CLI(out, "import", "--model", "gpt2", "--out", "x"), 2);
    // a missing checkpoint is a failure of the work, not of the usage
    assert_int_equal(LB_CLI(out, "ptq", "--checkpoint", "/nonexistent.safetensors", "--method",
                            "rtn", "--out", "x"),
                     1);
}

static void test_data_free(void **state)
{
    (void)state;
    char out[16384], q[1100], j[1100];
    snprintf(q, sizeof q, "%s/cli_rtn.safetensors", lb_test_tmp_dir());
    snprintf(j, sizeof j, "%s/cli_rtn.jsonl", lb_test_tmp_dir());
    remove(j);
    int rc = LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "rtn", "--wbits", "4",
                    "--out", q, "--json", j, "--threads", "1");
    if (rc != 0) fail_msg("lowbit ptq rtn: %d\n%s", rc, out);
    assert_non_null(strstr(out, "written"));
    rc = LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "powerquant", "--wbits", "3",
                "--codebook", "float", "--per-layer-exponent", "--out", q, "--json", j);
    if (rc != 0) fail_msg("lowbit ptq powerquant: %d\n%s", rc, out);
    assert_non_null(strstr(out, "power"));
    lb_ptq_model *m = NULL;
    const lb_model_options o = {2, 0, 0};
    assert_int_equal(lb_ptq_model_load(NULL, q, lb_backend_cpu(), &o, &m), LB_OK);
    assert_true(lb_ptq_model_is_quantized(m));
    assert_int_equal(lb_ptq_model_options(m)->method, LB_PTQ_POWERQUANT);
    assert_int_equal(lb_ptq_model_options(m)->wbits, 3);
    assert_true(lb_ptq_model_exponent(m, LB_LINEAR_FC1, 0) > 0);
    lb_ptq_model_free(m);
    // two JSON lines
    FILE *f = fopen(j, "r");
    assert_non_null(f);
    int lines = 0;
    while (fgets(out, sizeof out, f)) lines += strstr(out, "\"method\"") != NULL;
    fclose(f);
    assert_int_equal(lines, 2);
    // quantizing a quantized file is refused
    assert_int_equal(LB_CLI(out, "ptq", "--checkpoint", q, "--method", "rtn", "--out", j), 1);
}

static void test_with_corpus(void **state)
{
    (void)state;
    char path[1024];
    if (lb_text_corpus_locate(NULL, "default", path, sizeof path) != LB_OK) {
        printf("# Austen corpus not installed: w8a8 / eval / stats of the CLI not run\n");
        return;
    }
    char out[16384], q[1100];
    snprintf(q, sizeof q, "%s/cli_w8a8.safetensors", lb_test_tmp_dir());
    int rc = LB_CLI(out, "ptq", "--checkpoint", g_ckpt, "--method", "w8a8", "--calib", "2",
                    "--batch", "2", "--eval", "--eval-limit", "4", "--out", q);
    if (rc != 0) fail_msg("lowbit ptq w8a8: %d\n%s", rc, out);
    assert_non_null(strstr(out, "quantized (int)"));
    rc = LB_CLI(out, "eval", "--checkpoint", q, "--limit", "4", "--batch", "2");
    if (rc != 0) fail_msg("lowbit eval: %d\n%s", rc, out);
    assert_non_null(strstr(out, "integer GEMMs"));
    rc = LB_CLI(out, "stats", "--checkpoint", q, "--limit", "4", "--batch", "2");
    if (rc != 0) fail_msg("lowbit stats: %d\n%s", rc, out);
    assert_non_null(strstr(out, "max inf norm (paper)"));
}

static void test_minilm(void **state)
{
    (void)state;
    char dir[4096];
    if (lb_minilm_locate(NULL, dir, sizeof dir) != LB_OK) {
        printf("# all-MiniLM-L6-v2 not installed: import / embed not run\n");
        return;
    }
    char out[16384], ck[1100], lines[1100], npy[1100];
    snprintf(ck, sizeof ck, "%s/cli_minilm.safetensors", lb_test_tmp_dir());
    snprintf(lines, sizeof lines, "lines:%s/cli_lines.txt", lb_test_tmp_dir());
    snprintf(npy, sizeof npy, "%s/cli_emb.npy", lb_test_tmp_dir());
    int rc = LB_CLI(out, "import", "--model", "minilm", "--out", ck);
    if (rc != 0) fail_msg("lowbit import: %d\n%s", rc, out);
    assert_non_null(strstr(out, "30522"));
    const char *text = "The cat sat on the mat.\nA second, longer sentence follows here.\n";
    assert_int_equal(lb_test_write_file(lines + 6, text, strlen(text)), 0);
    rc = LB_CLI(out, "embed", "--checkpoint", ck, "--data", lines, "--out", npy);
    if (rc != 0) fail_msg("lowbit embed: %d\n%s", rc, out);
    lb_tensor *t = NULL;
    assert_int_equal(lb_npy_read(NULL, npy, &t), LB_OK);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 384);
    lb_tensor_free(t);
    rc = LB_CLI(out, "embed", "--checkpoint", ck, "--data", lines, "--out", npy, "--reference",
                npy);
    if (rc != 0) fail_msg("lowbit embed --reference: %d\n%s", rc, out);
    assert_non_null(strstr(out, "mean 1.000000"));
}

int main(void)
{
    char out[4096];
    if (LB_CLI(out, "ptq", "--help") != 0 || LB_CLI(out, "embed", "--help") != 0) {
        printf("SKIP: lowbit ptq / embed are not commands of this program yet\n");
        return LB_TEST_SKIP;
    }
    // a small random gpt checkpoint (data "text", not read by data-free methods)
    lb_train_config tc;
    lb_train_config_default(LB_MODEL_GPT, &tc);
    tc.model.n_layer = 2;
    tc.model.d_model = 32;
    tc.model.n_head = 2;
    tc.model.d_ff = 64;
    tc.model.max_seq_len = 16;
    lb_model *m = NULL;
    if (lb_model_create(NULL, &tc.model, lb_backend_ref(), NULL, 1, &m) != LB_OK ||
        lb_model_init(NULL, m, 1) != LB_OK)
        return 1;
    snprintf(g_ckpt, sizeof g_ckpt, "%s/cli_gpt.safetensors", lb_test_tmp_dir());
    lb_status st = lb_checkpoint_save_model(NULL, m, &tc, 0, 0, NULL, g_ckpt);
    lb_model_free(m);
    if (st != LB_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_data_free),
        cmocka_unit_test(test_with_corpus),
        cmocka_unit_test(test_minilm),
    };
    return LB_RUN_TESTS(tests);
}

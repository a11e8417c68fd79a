/* tests/test_minilm.c — all-MiniLM-L6-v2 imported into a lowbit bert
 * checkpoint (lb_bert_import) against PyTorch / sentence-transformers
 * fixtures (tests/data/minilm, made by tests/gen/minilm_fixtures.py):
 *   - sentence embeddings of the 64 cases of embedded.npy (texts through the
 *     C WordPiece tokenizer stored in the checkpoint) match embeddings.npy to
 *     cosine >= 0.9999 per sentence (the float32 model differs from PyTorch
 *     only in summation order; the measured minimum is printed);
 *   - every hidden state of hidden_0 (embedding LN + 6 layers) and the last
 *     hidden state of hidden_1/2, from the ids of hidden_ids.npy, within
 *     |a - b| <= 1e-4 + 1e-5 |b| (values up to ~10.5; float32 GEMMs summed in
 *     another order; measured max 8e-6);
 *   - padding does not change an embedding (alone vs in a padded batch);
 *   - importer errors: a missing directory, an unsupported config.
 * SKIPs (77) when the model package is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/minilm.h"
#include "lowbit/npy.h"
#include "lowbit/ptq.h"
#include "test_fixture.h"

static char g_ckpt[1024];

static lb_model *load_model(int64_t batch, int64_t max_len, const lb_backend *be)
{
    lb_model *m = NULL;
    const lb_model_options opts = {batch, max_len, 1};
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_status st = lb_checkpoint_load_model_ex(ctx, g_ckpt, be, &opts, &m, NULL);
    if (st != LB_OK) fail_msg("load %s: %s", g_ckpt, lb_ctx_error(ctx));
    lb_ctx_free(ctx);
    return m;
}

/* Reads tokens.json (the caller cJSON_Deletes). */
static cJSON *load_cases(void)
{
    char path[1024];
    lb_test_path(path, sizeof path, lb_test_data_dir(), "minilm/tokens.json");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    cJSON *doc = cJSON_Parse(buf);
    free(buf);
    assert_non_null(doc);
    return doc;
}

/* The UTF-8 bytes of a case (hex in the fixture). */
static char *case_text(const cJSON *c, size_t *len)
{
    const char *hex = cJSON_GetObjectItemCaseSensitive(c, "utf8_hex")->valuestring;
    const size_t n = strlen(hex) / 2;
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        t[i] = (char)v;
    }
    t[n] = 0;
    *len = n;
    return t;
}

static double cosine(const float *a, const float *b, int64_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void test_embeddings(void **state)
{
    (void)state;
    lb_model *m = load_model(8, 256, lb_backend_cpu());
    lb_tokenizer *tok = NULL;
    assert_int_equal(lb_checkpoint_load_tokenizer(NULL, g_ckpt, &tok), LB_OK);
    assert_int_equal(lb_checkpoint_embed_max_len(g_ckpt, 0), 256);
    cJSON *doc = load_cases();
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    lb_tensor *idx = lb_test_fixture("minilm", "embedded", 0);
    lb_tensor *want = lb_test_fixture("minilm", "embeddings", 0);
    const size_t n = idx->numel;
    const int64_t C = 384;
    assert_int_equal(want->numel, n * C);
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = calloc(n, sizeof *lens);
    float *got = malloc(n * C * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        const int32_t k = ((const int32_t *)idx->data)[i];
        texts[i] = case_text(cJSON_GetArrayItem(cases, k), &lens[i]);
    }
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    lb_status st = lb_sentence_embed(ctx, m, tok, n, (const char *const *)texts, lens, 256, 1, got);
    if (st != LB_OK) fail_msg("embed: %s", lb_ctx_error(ctx));
    double min_cos = 2, max_abs = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double cs = cosine(got + i * C, lb_tensor_f32(want) + i * C, C);
        if (cs < min_cos) min_cos = cs, worst = i;
        for (int64_t k = 0; k < C; k++)
            max_abs = fmax(max_abs, fabs((double)got[i * C + k] - lb_tensor_f32(want)[i * C + k]));
    }
    printf("# %zu sentence embeddings vs sentence-transformers: min cosine 1 - %.3g (case %d), "
           "max |diff| %.3g\n",
           n, 1 - min_cos, ((const int32_t *)idx->data)[worst], max_abs);
    assert_true(min_cos >= 0.9999);

    // padding invariance: sentence 0 alone vs in the padded batch above
    float alone[384];
    st = lb_sentence_embed(ctx, m, tok, 1, (const char *const *)texts, lens, 256, 1, alone);
    assert_int_equal(st, LB_OK);
    double pad_diff = 0;
    for (int64_t k = 0; k < C; k++) pad_diff = fmax(pad_diff, fabs((double)alone[k] - got[k]));
    printf("# alone vs padded batch: max |diff| %.3g\n", pad_diff);
    assert_true(pad_diff <= 1e-6);

    // max_len 2: [CLS] [SEP] only; bad max_len is an argument error
    assert_int_equal(lb_sentence_embed(ctx, m, tok, 1, (const char *const *)texts, lens, 2, 1,
                                       alone), LB_OK);
    assert_int_equal(lb_sentence_embed(ctx, m, tok, 1, (const char *const *)texts, lens, 1, 1,
                                       alone), LB_ERR_ARG);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(got);
    lb_tensor_free(idx);
    lb_tensor_free(want);
    cJSON_Delete(doc);
    lb_tokenizer_free(tok);
    lb_model_free(m);
    lb_ctx_free(ctx);
}

/* Observer state: copies of the embedding LN output and every block output. */
typedef struct capture {
    float *hidden; /* (L + 1, T, C) */
    int64_t T, C;
} capture;

static lb_status capture_fn(void *user, lb_ctx *ctx, const lb_model_tap *tap)
{
    (void)ctx;
    capture *c = user;
    int slot = -1;
    if (tap->site == LB_TAP_EMBED_LN) slot = 0;
    if (tap->site == LB_TAP_LN2) slot = tap->layer + 1;
    if (slot >= 0) memcpy(c->hidden + slot * c->T * c->C, tap->data, (size_t)(c->T * c->C) * 4);
    return LB_OK;
}

static void test_hidden_states(void **state)
{
    (void)state;
    cJSON *doc = load_cases();
    const cJSON *hc = cJSON_GetObjectItemCaseSensitive(doc, "hidden_cases");
    lb_tensor *ids = lb_test_fixture("minilm", "hidden_ids", 0);
    const int64_t C = 384, L = 6;
    lb_model *m = load_model(1, 128, lb_backend_cpu());
    size_t off = 0;
    double worst = 0;
    for (int h = 0; h < 3; h++) {
        const int64_t T = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(hc, h), 1)->valuedouble;
        char name[32];
        snprintf(name, sizeof name, "hidden_%d", h);
        lb_tensor *want = lb_test_fixture("minilm", name, (size_t)((h == 0 ? L + 1 : 1) * T * C));
        capture cap = {malloc((size_t)((L + 1) * T * C) * sizeof(float)), T, C};
        lb_model_set_observer(m, capture_fn, &cap);
        const lb_model_batch b = {.B = 1, .T = T, .tokens = (const int32_t *)ids->data + off};
        assert_int_equal(lb_model_forward(NULL, m, &b, 0, 0, NULL), LB_OK);
        lb_model_set_observer(m, NULL, NULL);
        const float *g = h == 0 ? cap.hidden : cap.hidden + L * T * C;
        const float *w = lb_tensor_f32(want);
        for (size_t i = 0; i < want->numel; i++) {
            const double d = fabs((double)g[i] - w[i]);
            worst = fmax(worst, d);
            if (d > 1e-4 + 1e-5 * fabs(w[i]))
                fail_msg("hidden_%d[%zu]: %.9g vs %.9g", h, i, (double)g[i], (double)w[i]);
        }
        off += (size_t)T;
        free(cap.hidden);
        lb_tensor_free(want);
    }
    printf("# hidden states vs PyTorch: max |diff| %.3g\n", worst);
    lb_tensor_free(ids);
    lb_model_free(m);
    cJSON_Delete(doc);
}

static void test_import_errors(void **state)
{
    (void)state;
    char dir[1024], path[1100], out[1100];
    snprintf(dir, sizeof dir, "%s/minilm-bad", lb_test_tmp_dir());
    snprintf(out, sizeof out, "%s/minilm-bad.safetensors", lb_test_tmp_dir());
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    assert_int_equal(lb_bert_import(ctx, "/nonexistent/minilm", out), LB_ERR_NOT_FOUND);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *relu = "{\"hidden_act\": \"relu\", \"vocab_size\": 10}";
    assert_int_equal(lb_test_write_file(path, relu, strlen(relu)), 0);
    assert_int_equal(lb_bert_import(ctx, dir, out), LB_ERR_FORMAT);
    assert_non_null(strstr(lb_ctx_error(ctx), "hidden_act"));
    const char *nosize = "{\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12}";
    assert_int_equal(lb_test_write_file(path, nosize, strlen(nosize)), 0);
    assert_int_equal(lb_bert_import(ctx, dir, out), LB_ERR_FORMAT);
    assert_non_null(strstr(lb_ctx_error(ctx), "vocab_size"));
    // a checkpoint without tokenizer
    lb_tokenizer *tok = NULL;
    assert_int_equal(lb_checkpoint_load_tokenizer(ctx, "/nonexistent.safetensors", &tok),
                     LB_ERR_IO);
    lb_ctx_free(ctx);
}

int main(void)
{
    char dir[4096];
    if (lb_minilm_locate(NULL, dir, sizeof dir) != LB_OK) {
        printf("SKIP: all-MiniLM-L6-v2 not installed (%s)\n", LB_MINILM_PIP_INSTALL);
        return LB_TEST_SKIP;
    }
    snprintf(g_ckpt, sizeof g_ckpt, "%s/minilm.safetensors", lb_test_tmp_dir());
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    if (lb_bert_import(ctx, dir, g_ckpt) != LB_OK) {
        fprintf(stderr, "import failed: %s\n", lb_ctx_error(ctx));
        return 1;
    }
    lb_ctx_free(ctx);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_hidden_states),
        cmocka_unit_test(test_import_errors),
    };
    return LB_RUN_TESTS(tests);
}

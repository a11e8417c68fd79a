/* tests/test_stats.c — the model's activation taps (lowbit/model.h:
 * lb_model_set_observer, lb_model_create_ex) and the outlier statistics
 * built on them (lowbit/stats.h).
 *
 * Taps: the documented order and shapes for post-LN (bert) and pre-LN (gpt,
 * vit) blocks; a read-only observer leaves every output bit-identical; an
 * observer that overwrites a tap changes the forward exactly as the same
 * change of the weights would; an observer error aborts the forward.
 * Creation options: no_head gives the same hidden states and pooled
 * features without logits, rejects targets and backward; max_tokens caps T.
 * Statistics: per-sequence infinity norm and kurtosis against a direct
 * double computation of the tapped tensors (masked tokens excluded), the
 * kurtosis batch limit, the attention first-token mass and clipped no-op
 * rows against the tapped probabilities, and the summary definitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/model.h"
#include "lowbit/stats.h"
#include "test_util.h"

static lb_model_config tiny(lb_model_kind kind, lb_attention_kind att)
{
    lb_model_config c;
    lb_model_config_default(kind, &c);
    c.n_layer = 2;
    c.d_model = 16;
    c.n_head = 2;
    c.d_ff = 32;
    if (kind == LB_MODEL_VIT) {
        c.image_size = 8;
        c.patch_size = 4;
        c.n_classes = 3;
    } else {
        c.max_seq_len = 8;
    }
    c.attention = att;
    c.clip_gamma = -1.5f; // clips whole rows (max p <= 0.6): no-op rows to count
    c.init_std = 0.5f;    // large weights: peaky attention, visible outliers
    assert_int_equal(lb_model_config_check(NULL, &c), LB_OK); // vit: max_seq_len = 4 + 1
    return c;
}

static lb_model *make(const lb_model_config *c, int64_t B, int no_head, uint64_t seed)
{
    lb_model *m = NULL;
    const lb_model_options o = {B, 0, no_head};
    assert_int_equal(lb_model_create_ex(NULL, c, lb_backend_ref(), NULL, &o, &m), LB_OK);
    assert_int_equal(lb_model_init(NULL, m, seed), LB_OK);
    return m;
}

/* A batch of B x T byte tokens (bert: the last `pad` tokens of row 1 masked). */
typedef struct batch_buf {
    int32_t tokens[64];
    uint8_t mask[64];
    float images[2 * 64];
    lb_model_batch b;
} batch_buf;

static void fill_batch(batch_buf *bb, const lb_model_config *c, int64_t B, int64_t T, int pad)
{
    memset(bb, 0, sizeof *bb);
    for (int64_t i = 0; i < B * T; i++) {
        bb->tokens[i] = (int32_t)((i * 37 + 11) % 200);
        bb->mask[i] = 1;
    }
    for (int i = 0; i < 2 * 64; i++) bb->images[i] = (float)sin(0.3 * i);
    bb->b.B = B;
    bb->b.T = T;
    if (c->kind == LB_MODEL_VIT) {
        bb->b.images = bb->images;
    } else {
        bb->b.tokens = bb->tokens;
        if (c->kind == LB_MODEL_BERT) {
            for (int p = 0; p < pad; p++) bb->mask[1 * T + T - 1 - p] = 0;
            bb->b.attention_mask = bb->mask;
        }
    }
}

/* ------------------------------------------------------------------ taps */

typedef struct recorder {
    int n;
    int site[128], layer[128], ndim[128];
    int64_t shape[128][4];
} recorder;

static lb_status record(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    (void)ctx;
    recorder *r = user;
    assert_true(r->n < 128);
    r->site[r->n] = (int)t->site;
    r->layer[r->n] = t->layer;
    r->ndim[r->n] = t->ndim;
    memcpy(r->shape[r->n], t->shape, sizeof t->shape);
    r->n++;
    return LB_OK;
}

static void check_order(lb_model_kind kind, lb_attention_kind att, const int *block, int n_block)
{
    const lb_model_config c = tiny(kind, att);
    lb_model *m = make(&c, 2, 0, 1);
    batch_buf bb;
    fill_batch(&bb, &c, 2, 6, 0);
    recorder r = {0};
    lb_model_set_observer(m, record, &r);
    assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
    int want[128], wl[128], n = 0;
    want[n] = LB_TAP_EMBED, wl[n++] = -1;
    if (c.embed_ln) want[n] = LB_TAP_EMBED_LN, wl[n++] = -1;
    for (int l = 0; l < c.n_layer; l++)
        for (int j = 0; j < n_block; j++) want[n] = block[j], wl[n++] = l;
    if (kind != LB_MODEL_BERT) want[n] = LB_TAP_FINAL_LN, wl[n++] = -1;
    assert_int_equal(r.n, n);
    const int64_t T = kind == LB_MODEL_VIT ? c.max_seq_len : 6;
    for (int k = 0; k < n; k++) {
        assert_int_equal(r.site[k], want[k]);
        assert_int_equal(r.layer[k], wl[k]);
        assert_int_equal(r.shape[k][0], 2);
        if (r.site[k] == LB_TAP_ATTN_PROBS) {
            assert_int_equal(r.ndim[k], 4);
            assert_int_equal(r.shape[k][1], c.n_head);
            assert_int_equal(r.shape[k][2], T);
            assert_int_equal(r.shape[k][3], T);
        } else if (r.site[k] == LB_TAP_ATTN_GATE) {
            assert_int_equal(r.shape[k][1], c.n_head);
            assert_int_equal(r.shape[k][2], T);
        } else {
            assert_int_equal(r.ndim[k], 3);
            assert_int_equal(r.shape[k][1], T);
            const int64_t w = r.site[k] == LB_TAP_QKV    ? 3 * c.d_model
                              : r.site[k] == LB_TAP_GELU ? c.d_ff
                                                         : c.d_model;
            assert_int_equal(r.shape[k][2], w);
        }
    }
    lb_model_free(m);
}

static void test_tap_order(void **state)
{
    (void)state;
    const int post[] = {LB_TAP_QKV, LB_TAP_ATTN_PROBS, LB_TAP_ATTN_OUT, LB_TAP_PROJ_OUT,
                        LB_TAP_RES1, LB_TAP_LN1, LB_TAP_GELU, LB_TAP_FC2_OUT, LB_TAP_RES2,
                        LB_TAP_LN2};
    check_order(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX, post, (int)(sizeof post / sizeof *post));
    const int pre[] = {LB_TAP_LN1, LB_TAP_QKV, LB_TAP_ATTN_PROBS, LB_TAP_ATTN_OUT,
                       LB_TAP_PROJ_OUT, LB_TAP_RES1, LB_TAP_LN2, LB_TAP_GELU, LB_TAP_FC2_OUT,
                       LB_TAP_RES2};
    check_order(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, pre, (int)(sizeof pre / sizeof *pre));
    check_order(LB_MODEL_VIT, LB_ATTENTION_CLIPPED, pre, (int)(sizeof pre / sizeof *pre));
    const int pre_gated[] = {LB_TAP_LN1, LB_TAP_QKV, LB_TAP_ATTN_PROBS, LB_TAP_ATTN_GATE,
                             LB_TAP_ATTN_OUT, LB_TAP_PROJ_OUT, LB_TAP_RES1, LB_TAP_LN2,
                             LB_TAP_GELU, LB_TAP_FC2_OUT, LB_TAP_RES2};
    check_order(LB_MODEL_GPT, LB_ATTENTION_GATED, pre_gated,
                (int)(sizeof pre_gated / sizeof *pre_gated));
    assert_string_equal(lb_model_tap_name(LB_TAP_FC2_OUT), "fc2_out");
    assert_string_equal(lb_model_tap_name(LB_TAP_COUNT), "?");
}

static lb_status zero_fc2(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    (void)user, (void)ctx;
    if (t->site == LB_TAP_FC2_OUT)
        memset(t->data, 0, (size_t)(t->shape[0] * t->shape[1] * t->shape[2]) * sizeof(float));
    return LB_OK;
}

static lb_status fail_at_gelu(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    (void)user;
    if (t->site == LB_TAP_GELU) return lb_error(ctx, LB_ERR_NUMERIC, "observer says no");
    return LB_OK;
}

static void test_tap_semantics(void **state)
{
    (void)state;
    const lb_model_kind kinds[2] = {LB_MODEL_GPT, LB_MODEL_BERT};
    for (int k = 0; k < 2; k++) {
        const lb_model_config c = tiny(kinds[k], LB_ATTENTION_SOFTMAX);
        lb_model *m = make(&c, 2, 0, 7);
        batch_buf bb;
        fill_batch(&bb, &c, 2, 6, 2);
        int64_t rows, cols;
        assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
        const float *lg = lb_model_logits(m, &rows, &cols);
        float *ref = malloc((size_t)(rows * cols) * sizeof(float));
        memcpy(ref, lg, (size_t)(rows * cols) * sizeof(float));
        // a read-only observer changes nothing, bit for bit
        recorder r = {0};
        lb_model_set_observer(m, record, &r);
        assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
        assert_memory_equal(lb_model_logits(m, NULL, NULL), ref, (size_t)(rows * cols) * 4);
        // zeroing the fc2 output == zero fc2 weights and bias
        lb_model_set_observer(m, zero_fc2, NULL);
        assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
        memcpy(ref, lb_model_logits(m, NULL, NULL), (size_t)(rows * cols) * sizeof(float));
        lb_model_set_observer(m, NULL, NULL);
        for (int l = 0; l < c.n_layer; l++) {
            char name[64];
            snprintf(name, sizeof name, "blocks.%d.mlp.fc2.weight", l);
            const lb_param_info *p = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, name));
            memset(lb_model_params(m) + p->offset, 0, (size_t)p->numel * sizeof(float));
            snprintf(name, sizeof name, "blocks.%d.mlp.fc2.bias", l);
            p = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, name));
            memset(lb_model_params(m) + p->offset, 0, (size_t)p->numel * sizeof(float));
        }
        assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
        assert_memory_equal(lb_model_logits(m, NULL, NULL), ref, (size_t)(rows * cols) * 4);
        // an observer error aborts the forward with that status
        lb_ctx *ctx = NULL;
        lb_ctx_create(&ctx);
        lb_model_set_observer(m, fail_at_gelu, NULL);
        assert_int_equal(lb_model_forward(ctx, m, &bb.b, 0, 0, NULL), LB_ERR_NUMERIC);
        assert_non_null(strstr(lb_ctx_error(ctx), "observer says no"));
        lb_ctx_free(ctx);
        free(ref);
        lb_model_free(m);
    }
}

static void test_no_head(void **state)
{
    (void)state;
    const lb_model_config c = tiny(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX);
    lb_model *full = make(&c, 2, 0, 3), *bare = NULL;
    const lb_model_options o = {2, 6, 1};
    assert_int_equal(lb_model_create_ex(NULL, &c, lb_backend_ref(), NULL, &o, &bare), LB_OK);
    assert_int_equal(lb_model_init(NULL, bare, 3), LB_OK);
    batch_buf bb;
    fill_batch(&bb, &c, 2, 6, 1);
    assert_int_equal(lb_model_forward(NULL, full, &bb.b, 0, 0, NULL), LB_OK);
    assert_int_equal(lb_model_forward(NULL, bare, &bb.b, 0, 0, NULL), LB_OK);
    assert_memory_equal(lb_model_pooled(full), lb_model_pooled(bare), 2 * 16 * sizeof(float));
    int64_t rows = -1;
    lb_model_logits(bare, &rows, NULL);
    assert_int_equal(rows, 0);
    int32_t targets[12];
    for (int i = 0; i < 12; i++) targets[i] = i % 3 ? -1 : 5;
    bb.b.targets = targets;
    assert_int_equal(lb_model_forward(NULL, bare, &bb.b, 1, 0, NULL), LB_ERR_ARG);
    assert_int_equal(lb_model_backward(NULL, bare), LB_ERR_ARG);
    bb.b.targets = NULL;
    bb.b.T = 7; // more than max_tokens
    assert_int_equal(lb_model_forward(NULL, bare, &bb.b, 0, 0, NULL), LB_ERR_ARG);
    const lb_model_options bad = {2, -1, 0};
    lb_model *x = NULL;
    assert_int_equal(lb_model_create_ex(NULL, &c, lb_backend_ref(), NULL, &bad, &x), LB_ERR_ARG);
    lb_model_free(full);
    lb_model_free(bare);
}

/* ------------------------------------------------------------ statistics */

/* Copies of the tapped tensors of one forward, to recompute the statistics. */
typedef struct tape {
    float *data[LB_TAP_COUNT][3]; /* [site][layer + 1] */
    int64_t shape[LB_TAP_COUNT][3][4];
    lb_outlier_stats *stats;
} tape;

static lb_status tape_fn(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    tape *tp = user;
    const int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * (t->ndim == 4 ? t->shape[3] : 1);
    float **d = &tp->data[t->site][t->layer + 1];
    free(*d);
    *d = malloc((size_t)n * sizeof(float));
    memcpy(*d, t->data, (size_t)n * sizeof(float));
    memcpy(tp->shape[t->site][t->layer + 1], t->shape, sizeof t->shape);
    return lb_outlier_stats_observe(tp->stats, ctx, t);
}

/* Direct double computation of one sequence's (inf norm, kurtosis). */
static void direct(const float *x, int64_t T, int64_t W, const uint8_t *mask, double *inf,
                   double *kurt)
{
    double sum = 0, n = 0, mx = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t w = 0; w < W; w++)
            if (!mask || mask[t]) sum += x[t * W + w], n++, mx = fmax(mx, fabs(x[t * W + w]));
    const double mu = sum / n;
    double s2 = 0, s4 = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t w = 0; w < W; w++)
            if (!mask || mask[t]) {
                const double d = x[t * W + w] - mu;
                s2 += d * d;
                s4 += d * d * d * d;
            }
    const double s = sqrt(s2 / (n - 1));
    *inf = mx;
    *kurt = (s4 / n) / (s * s * s * s + 1e-6);
}

static void free_tape(tape *tp)
{
    for (int s = 0; s < LB_TAP_COUNT; s++)
        for (int l = 0; l < 3; l++) free(tp->data[s][l]);
}

static void check_stats(lb_model_kind kind, lb_attention_kind att)
{
    const lb_model_config c = tiny(kind, att);
    lb_model *m = make(&c, 2, 0, 11);
    lb_outlier_stats *s = NULL;
    assert_int_equal(lb_outlier_stats_create(NULL, &c, 1, &s), LB_OK); // kurtosis: batch 1 only
    tape tp = {.stats = s};
    lb_model_set_observer(m, tape_fn, &tp);
    batch_buf bb;
    const int64_t T = kind == LB_MODEL_VIT ? c.max_seq_len : 6;
    fill_batch(&bb, &c, 2, T, 2);
    // expected per-tensor sums over two forwards (the second with other tokens)
    double want_inf[16] = {0}, want_kurt[16] = {0}, want_first[2][2] = {{0}}, want_zero[2][2] = {{0}};
    double queries = 0;
    const int bert = kind == LB_MODEL_BERT;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int i = 0; i < 64; i++) bb.tokens[i] = (bb.tokens[i] + 50) % 250;
            for (int i = 0; i < 128; i++) bb.images[i] = (float)cos(0.7 * i);
        }
        assert_int_equal(lb_model_forward(NULL, m, &bb.b, 0, 0, NULL), LB_OK);
        for (size_t i = 0; i < lb_outlier_stats_count(s); i++) {
            const lb_outlier_tensor *t = lb_outlier_stats_tensor(s, i);
            const float *x = tp.data[t->site][t->layer + 1];
            assert_non_null(x);
            const int64_t W = tp.shape[t->site][t->layer + 1][2];
            for (int b = 0; b < 2; b++) {
                double inf, kurt;
                direct(x + b * T * W, T, W, bert ? bb.mask + b * T : NULL, &inf, &kurt);
                want_inf[i] += inf / 4;
                if (pass == 0) want_kurt[i] += kurt / 2;
            }
        }
        const float *p = tp.data[LB_TAP_ATTN_PROBS][1 + 1]; // layer 1
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < 2; h++)
                for (int64_t q = 0; q < T; q++) {
                    if (bert && !bb.mask[b * T + q]) continue;
                    const float *row = p + ((b * 2 + h) * T + q) * T;
                    want_first[pass][h] += row[0];
                    float mx = 0;
                    for (int64_t k = 0; k < T; k++) mx = fmaxf(mx, row[k]);
                    want_zero[pass][h] += (c.clip_zeta - c.clip_gamma) * mx + c.clip_gamma <= 0;
                    if (h == 0) queries++;
                }
    }
    double max_res2 = 0, max_fc2 = 0;
    for (size_t i = 0; i < lb_outlier_stats_count(s); i++) {
        const lb_outlier_tensor *t = lb_outlier_stats_tensor(s, i);
        assert_int_equal(t->sequences, 4);
        assert_int_equal(t->kurtosis_sequences, 2);
        if (fabs(t->inf_norm - want_inf[i]) > 1e-12 * want_inf[i] ||
            fabs(t->kurtosis - want_kurt[i]) > 1e-9 * want_kurt[i])
            fail_msg("%s layer %d: inf %.17g vs %.17g, kurtosis %.17g vs %.17g",
                     lb_model_tap_name(t->site), t->layer, t->inf_norm, want_inf[i], t->kurtosis,
                     want_kurt[i]);
        if (t->site == LB_TAP_RES2) max_res2 = fmax(max_res2, t->inf_norm);
        if (t->site == LB_TAP_FC2_OUT) max_fc2 = fmax(max_fc2, t->inf_norm);
    }
    assert_int_equal(lb_outlier_stats_count(s), bert ? 6 : 11);
    for (int h = 0; h < 2; h++) {
        const lb_attention_stat a = lb_outlier_stats_attention(s, 1, h);
        assert_int_equal(a.queries, (int64_t)queries);
        assert_true(fabs(a.first_mass - (want_first[0][h] + want_first[1][h]) / queries) < 1e-12);
        const double z = att == LB_ATTENTION_CLIPPED ? (want_zero[0][h] + want_zero[1][h]) / queries
                                                     : 0;
        assert_true(fabs(a.zero_rows - z) < 1e-12);
        if (att == LB_ATTENTION_GATED) assert_true(a.gate_mean > 0 && a.gate_mean < 1);
    }
    lb_outlier_summary sum;
    lb_outlier_stats_summary(s, &sum);
    assert_true(sum.headline_inf_norm == (bert ? max_fc2 : max_res2));
    assert_int_equal(sum.sequences, 4);
    if (att == LB_ATTENTION_CLIPPED) {
        double z = 0;
        for (int h = 0; h < 2; h++) z += lb_outlier_stats_attention(s, 1, h).zero_rows;
        assert_true(z > 0); // the no-op row count is exercised
    }
    if (att == LB_ATTENTION_CLIPPED)
        printf("# clipped %s: exact no-op rows in layer 1, head 0: %.1f%%\n",
               lb_model_kind_name(kind), 100 * lb_outlier_stats_attention(s, 1, 0).zero_rows);
    // out-of-range attention queries are all zero
    assert_int_equal(lb_outlier_stats_attention(s, 5, 0).queries, 0);
    // JSON and table are written without failing
    FILE *f = tmpfile();
    lb_outlier_stats_json(s, f);
    lb_outlier_stats_print(s, f);
    assert_true(ftell(f) > 100);
    fclose(f);
    free_tape(&tp);
    lb_outlier_stats_free(s);
    lb_model_free(m);
}

static void test_stats_values(void **state)
{
    (void)state;
    check_stats(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX);
    check_stats(LB_MODEL_BERT, LB_ATTENTION_CLIPPED);
    check_stats(LB_MODEL_GPT, LB_ATTENTION_CLIPPED);
    check_stats(LB_MODEL_GPT, LB_ATTENTION_GATED);
    check_stats(LB_MODEL_VIT, LB_ATTENTION_SOFTMAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tap_order),
        cmocka_unit_test(test_tap_semantics),
        cmocka_unit_test(test_no_head),
        cmocka_unit_test(test_stats_values),
    };
    return LB_RUN_TESTS(tests);
}

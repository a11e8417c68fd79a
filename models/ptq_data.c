/* models/ptq_data.c — calibration and evaluation batches for post-training
 * work (lowbit/ptq.h "data"). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/datasets.h"
#include "lowbit/ptq.h"
#include "lowbit/rng.h"

typedef enum data_kind { D_IMAGES, D_TEXT, D_LINES } data_kind;

struct lb_ptq_data {
    data_kind kind;
    lb_model_config model;
    lb_ptq_split split;
    uint64_t seed;
    const lb_tokenizer *tok;
    size_t max_len;
    lb_image_set *images;
    int64_t *order;           /* images / lines: the visiting order */
    lb_text_corpus *corpus;
    char *text;               /* lines: the text the lines point into */
    const char **lines;       /* (n_lines) */
    size_t *line_len;         /* (n_lines) */
    int64_t n;                /* examples */
    int64_t cap;              /* batch capacity of the buffers */
    float *x;                 /* images (cap, H, W) */
    int32_t *window;          /* text (cap, T + 1) */
    int32_t *tokens;          /* (cap, T) */
    int32_t *targets;         /* (cap, T) or (cap) */
    uint8_t *mask;            /* lines (cap, T) */
    int32_t *row;             /* lines (max_len) */
    uint8_t *row_mask;        /* lines (max_len) */
    int64_t *idx;             /* (cap) */
};

void lb_ptq_data_free(lb_ptq_data *d)
{
    if (!d) return;
    lb_image_set_free(d->images);
    lb_text_corpus_free(d->corpus);
    lb_free(d->order);
    lb_free(d->text);
    lb_free(d->lines);
    lb_free(d->line_len);
    lb_free(d->x);
    lb_free(d->window);
    lb_free(d->tokens);
    lb_free(d->targets);
    lb_free(d->mask);
    lb_free(d->row);
    lb_free(d->row_mask);
    lb_free(d->idx);
    lb_free(d);
}

/* Splits text[0..len) into its non-empty lines (in place). */
static lb_status split_lines(lb_ctx *ctx, lb_ptq_data *d, char *text, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++) count += text[i] == '\n';
    count++;
    d->lines = lb_alloc(count * sizeof *d->lines);
    d->line_len = lb_alloc(count * sizeof *d->line_len);
    if (!d->lines || !d->line_len) return lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n') continue;
        size_t l = i - start;
        if (l && text[start + l - 1] == '\r') l--;
        int blank = 1;
        for (size_t k = 0; k < l && blank; k++)
            blank = text[start + k] == ' ' || text[start + k] == '\t';
        if (!blank) {
            d->lines[n] = text + start;
            d->line_len[n++] = l;
        }
        start = i + 1;
    }
    d->n = (int64_t)n;
    if (n == 0) return lb_error(ctx, LB_ERR_ARG, "data: no non-empty line");
    return LB_OK;
}

static lb_status read_text_file(lb_ctx *ctx, const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return lb_error(ctx, LB_ERR_NOT_FOUND, "%s cannot be opened", path);
    size_t cap = 1 << 16, n = 0;
    char *b = lb_alloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = lb_alloc(2 * cap);
        if (nb) memcpy(nb, b, n);
        lb_free(b);
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (!b) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
    *out = b;
    *len = n;
    return LB_OK;
}

lb_status lb_ptq_data_open(lb_ctx *ctx, const char *spec, const lb_model_config *model,
                           const lb_tokenizer *tok, size_t max_len, lb_ptq_split split,
                           uint64_t seed, lb_ptq_data **out)
{
    if (!spec || !model || !out) return lb_error(ctx, LB_ERR_ARG, "data: NULL argument");
    *out = NULL;
    lb_ptq_data *d = lb_calloc(1, sizeof *d);
    if (!d) return lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
    d->model = *model;
    d->split = split;
    d->seed = seed;
    d->tok = tok;
    d->max_len = max_len;
    lb_status st = LB_OK;
    const int is_lines = strncmp(spec, "lines:", 6) == 0 && spec[6];
    const int is_sent = strcmp(spec, "sentences") == 0 || (strncmp(spec, "sentences:", 10) == 0 &&
                                                           spec[10]);
    if (strcmp(spec, "fashion-mnist") == 0) {
        d->kind = D_IMAGES;
        if (model->kind != LB_MODEL_VIT)
            st = lb_error(ctx, LB_ERR_ARG, "data: fashion-mnist needs a vit model");
        if (st == LB_OK)
            st = lb_fashion_mnist_load(ctx, NULL, split == LB_PTQ_CALIB ? LB_SPLIT_TRAIN
                                                                        : LB_SPLIT_TEST,
                                       &d->images);
        if (st == LB_OK) {
            d->n = d->images->count;
            d->order = lb_alloc((size_t)d->n * sizeof(int64_t));
            if (!d->order) st = lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
        }
        if (st == LB_OK) {
            if (split == LB_PTQ_CALIB)
                st = lb_shuffle_permutation(ctx, seed, 0, (size_t)d->n, d->order);
            else
                for (int64_t i = 0; i < d->n; i++) d->order[i] = i;
        }
    } else if (strcmp(spec, "text") == 0 || (strncmp(spec, "text:", 5) == 0 && spec[5])) {
        d->kind = D_TEXT;
        if (model->kind == LB_MODEL_VIT)
            st = lb_error(ctx, LB_ERR_ARG, "data: text needs a gpt or bert model");
        if (st == LB_OK)
            st = lb_text_corpus_load(ctx, spec[4] ? spec + 5 : "default", -1, &d->corpus);
        if (st == LB_OK) {
            const size_t T = (size_t)model->max_seq_len;
            d->n = split == LB_PTQ_CALIB
                       ? INT64_MAX
                       : (int64_t)lb_text_num_eval_windows(d->corpus->val_len, T);
            if (split == LB_PTQ_CALIB && d->corpus->train_len < T + 2)
                st = lb_error(ctx, LB_ERR_ARG, "data: training split shorter than a window");
        }
    } else if (is_lines || is_sent) {
        d->kind = D_LINES;
        if (model->kind != LB_MODEL_BERT || !tok || max_len < 2)
            st = lb_error(ctx, LB_ERR_ARG,
                          "data: %s needs a bert model with a WordPiece tokenizer", spec);
        size_t len = 0;
        if (st == LB_OK && is_lines) {
            st = read_text_file(ctx, spec + 6, &d->text, &len);
        } else if (st == LB_OK) {
            st = lb_text_corpus_load(ctx, spec[9] ? spec + 10 : "default", -1, &d->corpus);
            if (st == LB_OK) {
                const uint8_t *src = split == LB_PTQ_CALIB ? d->corpus->train : d->corpus->val;
                len = split == LB_PTQ_CALIB ? d->corpus->train_len : d->corpus->val_len;
                d->text = lb_alloc(len ? len : 1);
                if (!d->text) st = lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
                else memcpy(d->text, src, len);
            }
        }
        if (st == LB_OK) st = split_lines(ctx, d, d->text, len);
        if (st == LB_OK) {
            d->order = lb_alloc((size_t)d->n * sizeof(int64_t));
            d->row = lb_alloc(max_len * sizeof(int32_t));
            d->row_mask = lb_alloc(max_len);
            if (!d->order || !d->row || !d->row_mask)
                st = lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
        }
        if (st == LB_OK) {
            if (split == LB_PTQ_CALIB && is_sent)
                st = lb_shuffle_permutation(ctx, seed, 0, (size_t)d->n, d->order);
            else
                for (int64_t i = 0; i < d->n; i++) d->order[i] = i;
        }
    } else {
        st = lb_error(ctx, LB_ERR_ARG,
                      "unknown data '%s' (expected fashion-mnist, text[:SPEC], "
                      "sentences[:SPEC] or lines:FILE)", spec);
    }
    if (st != LB_OK) {
        lb_ptq_data_free(d);
        return st;
    }
    *out = d;
    return LB_OK;
}

int64_t lb_ptq_data_size(const lb_ptq_data *d) { return d->n; }

/* Grows the buffers to B examples. */
static lb_status reserve(lb_ctx *ctx, lb_ptq_data *d, int64_t B)
{
    if (B <= d->cap) return LB_OK;
    const lb_model_config *m = &d->model;
    const int64_t T = d->kind == D_LINES ? (int64_t)d->max_len : m->max_seq_len;
    lb_free(d->x), lb_free(d->window), lb_free(d->tokens), lb_free(d->targets);
    lb_free(d->mask), lb_free(d->idx);
    d->x = NULL, d->window = d->tokens = d->targets = NULL, d->mask = NULL;
    d->idx = lb_alloc((size_t)B * sizeof(int64_t));
    int ok = d->idx != NULL;
    if (d->kind == D_IMAGES) {
        d->x = lb_alloc((size_t)(B * m->image_size * m->image_size) * sizeof(float));
        d->targets = lb_alloc((size_t)B * sizeof(int32_t));
        ok = ok && d->x && d->targets;
    } else {
        d->window = lb_alloc((size_t)(B * (T + 1)) * sizeof(int32_t));
        d->tokens = lb_alloc((size_t)(B * T) * sizeof(int32_t));
        d->targets = lb_alloc((size_t)(B * T) * sizeof(int32_t));
        d->mask = lb_alloc((size_t)(B * T));
        ok = ok && d->window && d->tokens && d->targets && d->mask;
    }
    if (!ok) {
        d->cap = 0;
        return lb_error(ctx, LB_ERR_NOMEM, "data: out of memory");
    }
    d->cap = B;
    return LB_OK;
}

/* BERT-style masking of one window, as models/train.c's mlm_mask:
 * u = uniform(seed, stream, 3 (row T + t) + k), k = 0 select, 1 replace
 * kind, 2 random byte; 15% selected; 80% [MASK], 10% random byte, 10% kept. */
static void mlm_mask(const int32_t *bytes, int64_t T, int64_t row, uint64_t seed,
                     uint64_t stream, int32_t *inputs, int32_t *targets)
{
    for (int64_t t = 0; t < T; t++) {
        const uint64_t idx = 3 * (uint64_t)(row * T + t);
        inputs[t] = bytes[t];
        targets[t] = -1;
        if (lb_rng_uniform_f64(seed, stream, idx) >= 0.15) continue;
        targets[t] = bytes[t];
        const double kind = lb_rng_uniform_f64(seed, stream, idx + 1);
        if (kind < 0.8) {
            inputs[t] = LB_BERT_MASK_ID;
        } else if (kind < 0.9) {
            int32_t r = (int32_t)(lb_rng_uniform_f64(seed, stream, idx + 2) * LB_TEXT_VOCAB);
            inputs[t] = r < LB_TEXT_VOCAB ? r : LB_TEXT_VOCAB - 1;
        }
    }
}

lb_status lb_ptq_data_batch(lb_ctx *ctx, lb_ptq_data *d, int64_t first, int64_t B,
                            int with_targets, lb_model_batch *batch, int64_t *taken)
{
    if (!d || !batch || !taken || first < 0 || B < 1)
        return lb_error(ctx, LB_ERR_ARG, "data: bad batch request");
    memset(batch, 0, sizeof *batch);
    *taken = 0;
    if (first >= d->n) return LB_OK;
    const int64_t nb = d->n - first < B ? d->n - first : B;
    lb_status st = reserve(ctx, d, nb);
    if (st != LB_OK) return st;
    const lb_model_config *m = &d->model;
    batch->B = nb;
    if (d->kind == D_IMAGES) {
        for (int64_t i = 0; i < nb; i++) d->idx[i] = d->order[first + i];
        st = lb_image_set_batch_f32(ctx, d->images, d->idx, (size_t)nb, LB_FASHION_MNIST_MEAN,
                                    LB_FASHION_MNIST_STD, d->x, d->targets);
        if (st != LB_OK) return st;
        batch->T = m->max_seq_len;
        batch->images = d->x;
    } else if (d->kind == D_TEXT) {
        const int64_t T = m->max_seq_len;
        size_t got = (size_t)nb;
        if (d->split == LB_PTQ_CALIB)
            st = lb_text_sample_windows(ctx, d->corpus->train, d->corpus->train_len, (size_t)T,
                                        d->seed, (uint64_t)first, (size_t)nb, d->window, NULL);
        else
            st = lb_text_eval_windows(ctx, d->corpus->val, d->corpus->val_len, (size_t)T,
                                      (size_t)first, (size_t)nb, d->window, &got);
        if (st != LB_OK) return st;
        const uint64_t seed = d->split == LB_PTQ_CALIB ? d->seed : 0;
        const uint64_t stream = d->split == LB_PTQ_CALIB ? lb_rng_stream("ptq-calib-mask", 0)
                                                         : lb_rng_stream("mlm-eval-mask", 0);
        for (int64_t b = 0; b < (int64_t)got; b++) {
            const int32_t *w = d->window + b * (T + 1);
            if (m->kind == LB_MODEL_GPT) {
                memcpy(d->tokens + b * T, w, (size_t)T * sizeof(int32_t));
                memcpy(d->targets + b * T, w + 1, (size_t)T * sizeof(int32_t));
            } else {
                mlm_mask(w, T, first + b, seed, stream, d->tokens + b * T, d->targets + b * T);
            }
        }
        batch->B = (int64_t)got;
        batch->T = T;
        batch->tokens = d->tokens;
    } else {
        // encode, then pad to the longest row of the batch
        size_t T = 2;
        for (int64_t b = 0; b < nb; b++) {
            const int64_t i = d->order[first + b];
            size_t len = 0;
            st = lb_tokenizer_encode(ctx, d->tok, d->lines[i], d->line_len[i], d->max_len,
                                     d->row, d->row_mask, &len);
            if (st != LB_OK) return st;
            memcpy(d->window + b * (int64_t)d->max_len, d->row, d->max_len * sizeof(int32_t));
            memcpy(d->mask + b * (int64_t)d->max_len, d->row_mask, d->max_len);
            if (len > T) T = len;
        }
        // compact rows of max_len to rows of T
        for (int64_t b = 0; b < nb; b++) {
            memmove(d->tokens + b * (int64_t)T, d->window + b * (int64_t)d->max_len,
                    T * sizeof(int32_t));
            memmove(d->mask + b * (int64_t)T, d->mask + b * (int64_t)d->max_len, T);
        }
        batch->T = (int64_t)T;
        batch->tokens = d->tokens;
        batch->attention_mask = d->mask;
        with_targets = 0;
    }
    if (with_targets) batch->targets = d->targets;
    *taken = batch->B;
    return LB_OK;
}

lb_status lb_ptq_data_lines(const lb_ptq_data *d, size_t n, const char **texts, size_t *lens)
{
    if (!d || d->kind != D_LINES || (int64_t)n > d->n || (n && (!texts || !lens)))
        return LB_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        const int64_t k = d->order[i];
        texts[i] = d->lines[k];
        lens[i] = d->line_len[k];
    }
    return LB_OK;
}

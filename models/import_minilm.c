/* models/import_minilm.c — a Hugging Face BertModel directory
 * (all-MiniLM-L6-v2) as a lowbit `bert` checkpoint, the tokenizer stored in
 * it, and sentence embeddings (mean pooling + L2 normalisation). See
 * lowbit/minilm.h and doc/minilm.md for the mapping and the pipeline.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/minilm.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "train_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* Reads a whole file (NUL-terminated copy in *buf, length in *len). */
static lb_status read_file(lb_ctx *ctx, const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lb_error(ctx, errno == ENOENT ? LB_ERR_NOT_FOUND : LB_ERR_IO, "%s: %s", path,
                        strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = lb_alloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = lb_alloc(2 * cap + 1);
        if (nb) memcpy(nb, b, n);
        lb_free(b);
        b = nb;
        cap *= 2;
    }
    const int err = ferror(f);
    fclose(f);
    if (!b) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
    if (err) {
        lb_free(b);
        return lb_error(ctx, LB_ERR_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return LB_OK;
}

/* buf = dir/name; LB_ERR_ARG when it does not fit. */
static lb_status join_path(lb_ctx *ctx, char *buf, size_t size, const char *dir, const char *name)
{
    const int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return lb_error(ctx, LB_ERR_ARG, "path too long: %s", dir);
    return LB_OK;
}

/* ------------------------------------------------------------ config.json */

static lb_status json_int(lb_ctx *ctx, const cJSON *doc, const char *path, const char *key,
                          int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: \"%s\" must be an integer in %d..%d", path, key,
                        lo, hi);
    *out = (int)v->valuedouble;
    return LB_OK;
}

/* The bert config of a BertModel config.json. */
static lb_status read_bert_config(lb_ctx *ctx, const char *dir, lb_model_config *cfg)
{
    char path[4096];
    TRY(join_path(ctx, path, sizeof path, dir, "config.json"));
    char *text;
    size_t len;
    TRY(read_file(ctx, path, &text, &len));
    cJSON *doc = cJSON_ParseWithLength(text, len);
    lb_free(text);
    if (!doc) return lb_error(ctx, LB_ERR_FORMAT, "%s: not valid JSON", path);
    lb_model_config_default(LB_MODEL_BERT, cfg);
    lb_status st = LB_OK;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(doc, "hidden_act");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(doc, "position_embedding_type");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(doc, "layer_norm_eps");
    if (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu") != 0)
        st = lb_error(ctx, LB_ERR_FORMAT,
                      "%s: hidden_act must be \"gelu\" (the erf GELU of lowbit's bert)", path);
    else if (pos && (!cJSON_IsString(pos) || strcmp(pos->valuestring, "absolute") != 0))
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: only absolute position embeddings are supported",
                      path);
    else if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0))
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: layer_norm_eps must be a positive number", path);
    if (st == LB_OK) st = json_int(ctx, doc, path, "vocab_size", 1, 1 << 20, &cfg->vocab_size);
    if (st == LB_OK) st = json_int(ctx, doc, path, "hidden_size", 1, 16384, &cfg->d_model);
    if (st == LB_OK) st = json_int(ctx, doc, path, "num_hidden_layers", 1, 256, &cfg->n_layer);
    if (st == LB_OK) st = json_int(ctx, doc, path, "num_attention_heads", 1, 16384, &cfg->n_head);
    if (st == LB_OK) st = json_int(ctx, doc, path, "intermediate_size", 1, 65536, &cfg->d_ff);
    if (st == LB_OK)
        st = json_int(ctx, doc, path, "max_position_embeddings", 1, 65536, &cfg->max_seq_len);
    if (st == LB_OK)
        st = json_int(ctx, doc, path, "type_vocab_size", 1, 1024, &cfg->type_vocab_size);
    if (st == LB_OK) {
        cfg->ln_eps = (float)eps->valuedouble;
        cfg->clip_gamma = -2.0f / (float)cfg->max_seq_len;
    }
    cJSON_Delete(doc);
    if (st != LB_OK) return st;
    lb_status cst = lb_model_config_check(ctx, cfg);
    if (cst != LB_OK) return lb_error(ctx, LB_ERR_FORMAT, "%s: %s", path, lb_ctx_error(ctx));
    return LB_OK;
}

/* sentence_bert_config.json's max_seq_length, or 256 (doc/minilm.md). */
static int read_max_seq_length(const char *dir)
{
    char path[4096];
    if (join_path(NULL, path, sizeof path, dir, "sentence_bert_config.json") != LB_OK)
        return LB_MINILM_MAX_SEQ_LEN;
    char *text;
    size_t len;
    if (read_file(NULL, path, &text, &len) != LB_OK) return LB_MINILM_MAX_SEQ_LEN;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    lb_free(text);
    int v = LB_MINILM_MAX_SEQ_LEN;
    const cJSON *m = doc ? cJSON_GetObjectItemCaseSensitive(doc, "max_seq_length") : NULL;
    if (cJSON_IsNumber(m) && m->valuedouble >= 2 && m->valuedouble <= 65536)
        v = (int)m->valuedouble;
    cJSON_Delete(doc);
    return v;
}

/* ----------------------------------------------------------------- import */

/* Reads HF tensor `name` (with or without the "bert." prefix) of shape
 * (d0[, d1]) into dst. */
static lb_status get_hf(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                        const char *name, int ndim, int64_t d0, int64_t d1, float *dst)
{
    const int64_t shape[2] = {d0, d1};
    char pref[256];
    snprintf(pref, sizeof pref, "bert.%s", name);
    const char *use = name;
    if (lb_safetensors_info(NULL, st, name, NULL, NULL, NULL) == LB_ERR_NOT_FOUND &&
        lb_safetensors_info(NULL, st, pref, NULL, NULL, NULL) == LB_OK)
        use = pref;
    lb_status s = lb_safetensors_get_into(ctx, st, use, LB_F32, ndim, shape, dst);
    if (s == LB_ERR_NOT_FOUND)
        return lb_error(ctx, LB_ERR_NOT_FOUND, "%s: tensor '%s' is missing", path, name);
    if (s == LB_ERR_ARG || s == LB_ERR_UNSUPPORTED) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
        return lb_error(ctx, LB_ERR_FORMAT, "%s: %s", path, detail);
    }
    return s;
}

static float *param(lb_model *m, const char *name)
{
    const long i = lb_model_find_tensor(m, name);
    return i < 0 ? NULL : lb_model_params(m) + lb_model_tensor(m, (size_t)i)->offset;
}

/* Copies every BertModel weight into the model's parameters. */
static lb_status map_weights(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                             lb_model *m)
{
    const lb_model_config *c = lb_model_get_config(m);
    const int64_t C = c->d_model, F = c->d_ff;
    TRY(get_hf(ctx, st, path, "embeddings.word_embeddings.weight", 2, c->vocab_size, C,
               param(m, "wte")));
    TRY(get_hf(ctx, st, path, "embeddings.position_embeddings.weight", 2, c->max_seq_len, C,
               param(m, "wpe")));
    TRY(get_hf(ctx, st, path, "embeddings.token_type_embeddings.weight", 2, c->type_vocab_size,
               C, param(m, "wtt")));
    TRY(get_hf(ctx, st, path, "embeddings.LayerNorm.weight", 1, C, 1, param(m, "embed_ln.weight")));
    TRY(get_hf(ctx, st, path, "embeddings.LayerNorm.bias", 1, C, 1, param(m, "embed_ln.bias")));
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int l = 0; l < c->n_layer; l++) {
        char hf[256], lb[96];
        snprintf(lb, sizeof lb, "blocks.%d.attn.qkv.weight", l);
        float *w = param(m, lb);
        snprintf(lb, sizeof lb, "blocks.%d.attn.qkv.bias", l);
        float *b = param(m, lb);
        for (int j = 0; j < 3; j++) {
            snprintf(hf, sizeof hf, "encoder.layer.%d.attention.self.%s.weight", l, qkv[j]);
            TRY(get_hf(ctx, st, path, hf, 2, C, C, w + j * C * C)); // rows [q; k; v]
            snprintf(hf, sizeof hf, "encoder.layer.%d.attention.self.%s.bias", l, qkv[j]);
            TRY(get_hf(ctx, st, path, hf, 1, C, 1, b + j * C));
        }
        static const struct {
            const char *hf, *lb;
            int out_ff, in_ff; // which dimension is F instead of C (weights)
        } map[] = {
            {"attention.output.dense.weight", "attn.proj.weight", 0, 0},
            {"attention.output.dense.bias", "attn.proj.bias", 0, -1},
            {"attention.output.LayerNorm.weight", "ln1.weight", 0, -1},
            {"attention.output.LayerNorm.bias", "ln1.bias", 0, -1},
            {"intermediate.dense.weight", "mlp.fc1.weight", 1, 0},
            {"intermediate.dense.bias", "mlp.fc1.bias", 1, -1},
            {"output.dense.weight", "mlp.fc2.weight", 0, 1},
            {"output.dense.bias", "mlp.fc2.bias", 0, -1},
            {"output.LayerNorm.weight", "ln2.weight", 0, -1},
            {"output.LayerNorm.bias", "ln2.bias", 0, -1},
        };
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            snprintf(hf, sizeof hf, "encoder.layer.%d.%s", l, map[k].hf);
            snprintf(lb, sizeof lb, "blocks.%d.%s", l, map[k].lb);
            const int64_t d0 = map[k].out_ff ? F : C, d1 = map[k].in_ff > 0 ? F : C;
            TRY(get_hf(ctx, st, path, hf, map[k].in_ff < 0 ? 1 : 2, d0, d1, param(m, lb)));
        }
    }
    float *mlm = param(m, "mlm.bias");
    memset(mlm, 0, (size_t)c->vocab_size * sizeof(float));
    return LB_OK;
}

lb_status lb_bert_import(lb_ctx *ctx, const char *dir, const char *out_path)
{
    if (!out_path) return lb_error(ctx, LB_ERR_ARG, "import: NULL output path");
    char found[4096];
    if (!dir) {
        TRY(lb_minilm_locate(ctx, found, sizeof found));
        dir = found;
    }
    lb_train_config tc;
    lb_train_config_default(LB_MODEL_BERT, &tc);
    TRY(read_bert_config(ctx, dir, &tc.model));
    const int max_len = read_max_seq_length(dir);

    char path[4096], vocab_path[4096];
    TRY(join_path(ctx, path, sizeof path, dir, "model.safetensors"));
    TRY(join_path(ctx, vocab_path, sizeof vocab_path, dir, "vocab.txt"));
    // the vocabulary must load as a tokenizer of the model's size
    lb_tokenizer *tok = NULL;
    TRY(lb_tokenizer_load(ctx, vocab_path, NULL, &tok));
    const size_t vocab_n = lb_tokenizer_vocab_size(tok);
    lb_tokenizer_free(tok);
    if (vocab_n != (size_t)tc.model.vocab_size)
        return lb_error(ctx, LB_ERR_FORMAT, "%s has %zu tokens but config.json says vocab_size %d",
                        vocab_path, vocab_n, tc.model.vocab_size);
    char *vocab = NULL;
    size_t vocab_len = 0;
    TRY(read_file(ctx, vocab_path, &vocab, &vocab_len));

    lb_safetensors *st = NULL;
    lb_model *m = NULL;
    lb_safetensors_writer *w = NULL;
    const lb_model_options opts = {1, 1, 1}; // parameters only: tiny activations
    lb_status s = lb_safetensors_read(ctx, path, &st);
    if (s == LB_ERR_IO && lb_safetensors_read(NULL, path, &st) != LB_OK)
        s = lb_error(ctx, LB_ERR_NOT_FOUND, "%s cannot be read", path);
    if (s == LB_OK) s = lb_model_create_ex(ctx, &tc.model, lb_backend_ref(), NULL, &opts, &m);
    if (s == LB_OK) s = map_weights(ctx, st, path, m);
    if (s == LB_OK) s = lb_safetensors_writer_create(ctx, &w);
    if (s == LB_OK) s = lb_checkpoint_write_config(ctx, w, &tc, NULL);
    char maxlen_s[32];
    snprintf(maxlen_s, sizeof maxlen_s, "%d", max_len);
    const char *const meta[] = {
        "state.step", "0", "state.data_epoch", "0", "state.data_position", "0",
        "tokenizer", "wordpiece-uncased", "embed.max_len", maxlen_s, "embed.pooling", "mean",
        "embed.normalize", "1", "import.source", "all-MiniLM-L6-v2 (sentence-transformers)",
        "import.files", "config.json, model.safetensors, vocab.txt"};
    for (size_t i = 0; i + 1 < sizeof meta / sizeof meta[0] && s == LB_OK; i += 2)
        s = lb_safetensors_writer_set_metadata(ctx, w, meta[i], meta[i + 1]);
    for (size_t k = 0; s == LB_OK && k < lb_model_num_tensors(m); k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        char name[96];
        snprintf(name, sizeof name, "model.%s", p->name);
        s = lb_safetensors_writer_add_raw(ctx, w, name, LB_F32, p->ndim, p->shape,
                                          lb_model_params(m) + p->offset);
    }
    const int64_t vshape[1] = {(int64_t)vocab_len};
    if (s == LB_OK)
        s = lb_safetensors_writer_add_raw(ctx, w, LB_TOKENIZER_VOCAB_TENSOR, LB_U8, 1, vshape,
                                          vocab);
    if (s == LB_OK) s = lb_safetensors_writer_save(ctx, w, out_path);
    lb_safetensors_writer_free(w);
    lb_model_free(m);
    lb_safetensors_free(st);
    lb_free(vocab);
    return s;
}

/* -------------------------------------------------------------- tokenizer */

lb_status lb_checkpoint_load_tokenizer(lb_ctx *ctx, const char *path, lb_tokenizer **out)
{
    if (!path || !out) return lb_error(ctx, LB_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    lb_safetensors *st = NULL;
    TRY(lb_safetensors_read(ctx, path, &st));
    lb_tensor *v = NULL;
    lb_status s = lb_safetensors_get(ctx, st, LB_TOKENIZER_VOCAB_TENSOR, &v);
    lb_safetensors_free(st);
    if (s == LB_ERR_NOT_FOUND)
        return lb_error(ctx, LB_ERR_NOT_FOUND,
                        "%s has no tokenizer (tensor %s; only imported models have one)", path,
                        LB_TOKENIZER_VOCAB_TENSOR);
    if (s != LB_OK) return s;
    if (v->dtype != LB_U8 || v->ndim != 1) {
        lb_tensor_free(v);
        return lb_error(ctx, LB_ERR_FORMAT, "%s: %s must be a 1-d U8 tensor", path,
                        LB_TOKENIZER_VOCAB_TENSOR);
    }
    // split into lines (LF or CRLF, the last line end optional), NUL-terminated in place
    const size_t n = v->numel;
    char *text = lb_alloc(n + 1);
    size_t lines = 0;
    if (text) {
        memcpy(text, v->data, n);
        text[n] = 0;
        for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
        lines += n > 0 && text[n - 1] != '\n';
    }
    lb_tensor_free(v);
    const char **tokens = text ? lb_calloc(lines ? lines : 1, sizeof *tokens) : NULL;
    if (!tokens) {
        lb_free(text);
        return lb_error(ctx, LB_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t k = 0;
    for (char *p = text; k < lines; k++) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        const size_t l = strlen(p);
        if (l > 0 && p[l - 1] == '\r') p[l - 1] = 0;
        tokens[k] = p;
        p = e ? e + 1 : p + l;
    }
    s = lb_tokenizer_create(ctx, tokens, lines, NULL, out);
    lb_free(tokens);
    lb_free(text);
    return s;
}

int64_t lb_checkpoint_embed_max_len(const char *path, int64_t fallback)
{
    lb_safetensors *st = NULL;
    if (!path || lb_safetensors_read(NULL, path, &st) != LB_OK) return fallback;
    const char *v = lb_safetensors_metadata(st, "embed.max_len");
    int64_t r = fallback;
    if (v) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*v && !*end && x >= 2 && x <= 65536) r = x;
    }
    lb_safetensors_free(st);
    return r;
}

/* ------------------------------------------------------------- embeddings */

typedef struct text_len {
    size_t index;
    size_t tokens; /* encoded length, [CLS] and [SEP] included */
} text_len;

static int by_tokens(const void *a, const void *b)
{
    const text_len *x = a, *y = b;
    if (x->tokens != y->tokens) return x->tokens < y->tokens ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index; // stable
}

lb_status lb_sentence_embed(lb_ctx *ctx, lb_model *model, const lb_tokenizer *tok, size_t n,
                            const char *const *texts, const size_t *lens, size_t max_len,
                            int normalize, float *out)
{
    if (!model || !tok || (n && (!texts || !out)))
        return lb_error(ctx, LB_ERR_ARG, "embed: NULL argument");
    const lb_model_config *c = lb_model_get_config(model);
    if (c->kind != LB_MODEL_BERT)
        return lb_error(ctx, LB_ERR_ARG, "embed: needs a bert model, not %s",
                        lb_model_kind_name(c->kind));
    if (max_len < 2 || max_len > (size_t)c->max_seq_len)
        return lb_error(ctx, LB_ERR_ARG, "embed: max_len %zu not in 2..%d", max_len,
                        c->max_seq_len);
    const int64_t C = c->d_model, Bmax = lb_model_max_batch(model);
    text_len *order = lb_alloc((n ? n : 1) * sizeof *order);
    int32_t *ids = lb_alloc((size_t)Bmax * max_len * sizeof(int32_t));
    uint8_t *mask = lb_alloc((size_t)Bmax * max_len);
    int32_t *row_ids = lb_alloc(max_len * sizeof(int32_t));
    uint8_t *row_mask = lb_alloc(max_len);
    lb_status st = LB_OK;
    if (!order || !ids || !mask || !row_ids || !row_mask) {
        st = lb_error(ctx, LB_ERR_NOMEM, "embed: out of memory");
        goto done;
    }
    // encoded lengths, then batches of similar length
    for (size_t i = 0; i < n && st == LB_OK; i++) {
        const size_t len = lens ? lens[i] : strlen(texts[i]);
        size_t T = 0;
        st = lb_tokenizer_encode(ctx, tok, texts[i], len, max_len, row_ids, NULL, &T);
        order[i].index = i;
        order[i].tokens = T;
    }
    if (st != LB_OK) goto done;
    qsort(order, n, sizeof *order, by_tokens);
    for (size_t first = 0; first < n && st == LB_OK;) {
        size_t nb = n - first < (size_t)Bmax ? n - first : (size_t)Bmax;
        const size_t T = order[first + nb - 1].tokens; // the longest of the batch
        for (size_t b = 0; b < nb && st == LB_OK; b++) {
            const size_t i = order[first + b].index;
            const size_t len = lens ? lens[i] : strlen(texts[i]);
            size_t got = 0;
            st = lb_tokenizer_encode(ctx, tok, texts[i], len, max_len, row_ids, row_mask, &got);
            memcpy(ids + b * T, row_ids, T * sizeof(int32_t));
            memcpy(mask + b * T, row_mask, T);
        }
        if (st != LB_OK) break;
        const lb_model_batch batch = {.B = (int64_t)nb, .T = (int64_t)T, .tokens = ids,
                                      .attention_mask = mask};
        st = lb_model_forward(ctx, model, &batch, 0, 0, NULL);
        if (st != LB_OK) break;
        const float *pooled = lb_model_pooled(model); // (nb, C)
        for (size_t b = 0; b < nb; b++) {
            const float *v = pooled + b * C;
            float *o = out + order[first + b].index * C;
            double ss = 0;
            for (int64_t k = 0; k < C; k++) ss += (double)v[k] * (double)v[k];
            const double norm = normalize ? fmax(sqrt(ss), 1e-12) : 1.0;
            for (int64_t k = 0; k < C; k++) o[k] = (float)((double)v[k] / norm);
        }
        first += nb;
    }
done:
    lb_free(order);
    lb_free(ids);
    lb_free(mask);
    lb_free(row_ids);
    lb_free(row_mask);
    return st;
}

/* models/checkpoint.c — checkpoints in safetensors: save, resume, load for
 * evaluation.
 *
 * Tensors: "model.<name>" (weights), "optim.m.<name>", "optim.v.<name>"
 * (AdamW moments), all F32 with the parameter's shape. __metadata__:
 *   format = "lowbit-checkpoint", format_version = "1",
 *   model.* (every lb_model_config field), train.* (every lb_train_config
 *   field), state.step, state.data_epoch, state.data_position.
 * Floats are written with %.9g (float fields) or %.17g (double fields), so
 * they read back exactly. Reading checks everything and fails with
 * LB_ERR_FORMAT and the file name, the key or the tensor.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "train_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

#define CHECKPOINT_FORMAT "lowbit-checkpoint"
#define CHECKPOINT_VERSION "1"

/* ------------------------------------------------------- metadata fields */

typedef enum field_type { F_INT, F_I64, F_U64, F_FLOAT, F_DOUBLE, F_STR } field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t offset; /* in lb_train_config */
    size_t size;   /* F_STR: buffer size */
} field;

#define M(key, type, member)                                                                   \
    {"model." key, type, offsetof(lb_train_config, model.member),                              \
     sizeof(((lb_train_config *)0)->model.member)}
#define T(key, type, member)                                                                   \
    {"train." key, type, offsetof(lb_train_config, member), sizeof(((lb_train_config *)0)->member)}

/* Every config field but model.kind and model.attention (written by name). */
static const field fields[] = {
    M("n_layer", F_INT, n_layer),
    M("d_model", F_INT, d_model),
    M("n_head", F_INT, n_head),
    M("d_ff", F_INT, d_ff),
    M("max_seq_len", F_INT, max_seq_len),
    M("vocab_size", F_INT, vocab_size),
    M("type_vocab_size", F_INT, type_vocab_size),
    M("n_classes", F_INT, n_classes),
    M("image_size", F_INT, image_size),
    M("patch_size", F_INT, patch_size),
    M("cls_token", F_INT, cls_token),
    M("tied_embeddings", F_INT, tied_embeddings),
    M("embed_ln", F_INT, embed_ln),
    M("ln_eps", F_FLOAT, ln_eps),
    M("clip_gamma", F_FLOAT, clip_gamma),
    M("clip_zeta", F_FLOAT, clip_zeta),
    M("gate_init", F_FLOAT, gate_init),
    M("init_std", F_FLOAT, init_std),
    T("data", F_STR, data),
    T("recipe", F_STR, recipe),
    T("backend", F_STR, backend),
    T("steps", F_I64, steps),
    T("batch_size", F_I64, batch_size),
    T("lr", F_DOUBLE, lr),
    T("min_lr", F_DOUBLE, min_lr),
    T("warmup_steps", F_I64, warmup_steps),
    T("weight_decay", F_DOUBLE, weight_decay),
    T("beta1", F_DOUBLE, beta1),
    T("beta2", F_DOUBLE, beta2),
    T("eps", F_DOUBLE, eps),
    T("grad_clip", F_DOUBLE, grad_clip),
    T("eval_every", F_I64, eval_every),
    T("eval_limit", F_I64, eval_limit),
    T("train_limit", F_I64, train_limit),
    T("mlm_prob", F_DOUBLE, mlm_prob),
    T("val_fraction", F_DOUBLE, val_fraction),
    T("seed", F_U64, seed),
};

static lb_status set_meta(lb_ctx *ctx, lb_safetensors_writer *w, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static lb_status set_meta(lb_ctx *ctx, lb_safetensors_writer *w, const char *key,
                          const char *fmt, ...)
{
    char value[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    return lb_safetensors_writer_set_metadata(ctx, w, key, value);
}

/* Writes model.* and train.* metadata. */
static lb_status write_config(lb_ctx *ctx, lb_safetensors_writer *w, const lb_train_config *cfg)
{
    TRY(set_meta(ctx, w, "format", "%s", CHECKPOINT_FORMAT));
    TRY(set_meta(ctx, w, "format_version", "%s", CHECKPOINT_VERSION));
    TRY(set_meta(ctx, w, "model.kind", "%s", lb_model_kind_name(cfg->model.kind)));
    TRY(set_meta(ctx, w, "model.attention", "%s", lb_attention_kind_name(cfg->model.attention)));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        const char *p = (const char *)cfg + f->offset;
        switch (f->type) {
        case F_INT: TRY(set_meta(ctx, w, f->key, "%d", *(const int *)p)); break;
        case F_I64: TRY(set_meta(ctx, w, f->key, "%lld", (long long)*(const int64_t *)p)); break;
        case F_U64:
            TRY(set_meta(ctx, w, f->key, "%llu", (unsigned long long)*(const uint64_t *)p));
            break;
        case F_FLOAT: TRY(set_meta(ctx, w, f->key, "%.9g", (double)*(const float *)p)); break;
        case F_DOUBLE: TRY(set_meta(ctx, w, f->key, "%.17g", *(const double *)p)); break;
        case F_STR: TRY(set_meta(ctx, w, f->key, "%s", p)); break;
        }
    }
    // the recipe's options: recipe.<key> (lowbit/recipe.h)
    for (size_t i = 0; i < lb_recipe_option_count(); i++) {
        char key[64], value[128];
        snprintf(key, sizeof key, "recipe.%s", lb_recipe_option_key(i));
        TRY(lb_recipe_option_get(ctx, &cfg->recipe_opt, lb_recipe_option_key(i), value,
                                 sizeof value));
        TRY(set_meta(ctx, w, key, "%s", value));
    }
    return LB_OK;
}

static const char *need_meta(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                             const char *key, lb_status *status)
{
    const char *v = lb_safetensors_metadata(st, key);
    if (!v)
        *status = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: metadata key '%s' is missing",
                           path, key);
    return v;
}

static lb_status parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return LB_ERR_FORMAT;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return LB_ERR_FORMAT;
    *out = v;
    return LB_OK;
}

static lb_status parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return LB_ERR_FORMAT;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return LB_ERR_FORMAT;
    *out = v;
    return LB_OK;
}

static lb_status parse_double(const char *s, double *out)
{
    if (!s || !*s) return LB_ERR_FORMAT;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return LB_ERR_FORMAT;
    *out = v;
    return LB_OK;
}

/* Reads model.* and train.* metadata into *cfg and checks it. */
static lb_status read_config_as(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                                const char *format, lb_train_config *cfg)
{
    lb_status status = LB_OK;
    const char *fmt = lb_safetensors_metadata(st, "format");
    if (!fmt || strcmp(fmt, format) != 0)
        return lb_error(ctx, LB_ERR_FORMAT, "%s is not a %s (metadata 'format' is %s%s%s)",
                        path,
                        strcmp(format, CHECKPOINT_FORMAT) == 0 ? "lowbit checkpoint" : format,
                        fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
    const char *ver = need_meta(ctx, st, path, "format_version", &status);
    if (!ver) return status;
    if (strcmp(ver, CHECKPOINT_VERSION) != 0)
        return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: format version '%s' (expected %s)",
                        path, ver, CHECKPOINT_VERSION);
    memset(cfg, 0, sizeof *cfg);
    const char *kind = need_meta(ctx, st, path, "model.kind", &status);
    if (!kind) return status;
    if (lb_model_kind_from_name(NULL, kind, &cfg->model.kind) != LB_OK)
        return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: unknown model.kind '%s'", path, kind);
    const char *att = need_meta(ctx, st, path, "model.attention", &status);
    if (!att) return status;
    if (lb_attention_kind_from_name(NULL, att, &cfg->model.attention) != LB_OK)
        return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: unknown model.attention '%s'", path,
                        att);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        const char *v = need_meta(ctx, st, path, f->key, &status);
        if (!v) return status;
        char *p = (char *)cfg + f->offset;
        lb_status ok = LB_OK;
        int64_t i64;
        uint64_t u64;
        double d;
        switch (f->type) {
        case F_INT:
            ok = parse_i64(v, &i64);
            if (ok == LB_OK && (i64 < -2147483647 || i64 > 2147483647)) ok = LB_ERR_FORMAT;
            if (ok == LB_OK) *(int *)p = (int)i64;
            break;
        case F_I64:
            ok = parse_i64(v, &i64);
            if (ok == LB_OK) *(int64_t *)p = i64;
            break;
        case F_U64:
            ok = parse_u64(v, &u64);
            if (ok == LB_OK) *(uint64_t *)p = u64;
            break;
        case F_FLOAT:
            ok = parse_double(v, &d);
            if (ok == LB_OK) *(float *)p = (float)d;
            break;
        case F_DOUBLE:
            ok = parse_double(v, &d);
            if (ok == LB_OK) *(double *)p = d;
            break;
        case F_STR:
            if (strlen(v) >= f->size) ok = LB_ERR_FORMAT;
            else memcpy(p, v, strlen(v) + 1);
            break;
        }
        if (ok != LB_OK)
            return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: metadata '%s' has a bad value '%s'",
                            path, f->key, v);
    }
    // recipe.<key>: defaults for keys a file does not have
    lb_recipe_options_default(&cfg->recipe_opt);
    for (size_t i = 0; i < lb_recipe_option_count(); i++) {
        char key[64];
        snprintf(key, sizeof key, "recipe.%s", lb_recipe_option_key(i));
        const char *v = lb_safetensors_metadata(st, key);
        if (v && lb_recipe_option_set(NULL, &cfg->recipe_opt, lb_recipe_option_key(i), v) != LB_OK)
            return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: metadata '%s' has a bad value '%s'",
                            path, key, v);
    }
    lb_status cst = lb_train_config_check(ctx, cfg);
    if (cst == LB_ERR_ARG) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
        return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: invalid config: %s", path, detail);
    }
    return cst;
}

static lb_status read_config(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                             lb_train_config *cfg)
{
    return read_config_as(ctx, st, path, CHECKPOINT_FORMAT, cfg);
}

/* Reads tensor prefix+name of every parameter into base (the parameter layout). */
static lb_status read_tensors(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                              const lb_model *model, const char *prefix, float *base)
{
    for (size_t k = 0; k < lb_model_num_tensors(model); k++) {
        const lb_param_info *p = lb_model_tensor(model, k);
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        lb_status s = lb_safetensors_get_into(ctx, st, name, LB_F32, p->ndim, p->shape,
                                              base + p->offset);
        if (s == LB_ERR_NOT_FOUND)
            return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: tensor '%s' is missing", path,
                            name);
        if (s == LB_ERR_ARG || s == LB_ERR_UNSUPPORTED) {
            char detail[400];
            snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
            return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: %s", path, detail);
        }
        if (s != LB_OK) return s;
    }
    return LB_OK;
}

static lb_status read_state(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                            int64_t *step, lb_data_cursor *cursor)
{
    lb_status status = LB_OK;
    const char *s = need_meta(ctx, st, path, "state.step", &status);
    if (!s) return status;
    const char *e = need_meta(ctx, st, path, "state.data_epoch", &status);
    if (!e) return status;
    const char *p = need_meta(ctx, st, path, "state.data_position", &status);
    if (!p) return status;
    if (parse_i64(s, step) != LB_OK || *step < 0 || parse_u64(e, &cursor->epoch) != LB_OK ||
        parse_u64(p, &cursor->position) != LB_OK)
        return lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: bad state.* metadata", path);
    return LB_OK;
}

/* ------------------------------------------------------------------ saving */

lb_status lb_trainer_save(lb_ctx *ctx, lb_trainer *tr, const char *path)
{
    if (!tr || !path) return lb_error(ctx, LB_ERR_ARG, "save: NULL argument");
    lb_safetensors_writer *w = NULL;
    TRY(lb_safetensors_writer_create(ctx, &w));
    lb_model *model = tr->model;
    const float *params = lb_model_params(model);
    lb_status st = write_config(ctx, w, &tr->cfg);
    uint64_t epoch, position;
    lb_trainer_data_position(tr, &epoch, &position);
    if (st == LB_OK) st = set_meta(ctx, w, "state.step", "%lld", (long long)tr->step);
    if (st == LB_OK)
        st = set_meta(ctx, w, "state.data_epoch", "%llu", (unsigned long long)epoch);
    if (st == LB_OK)
        st = set_meta(ctx, w, "state.data_position", "%llu", (unsigned long long)position);
    const char *prefixes[3] = {"model.", "optim.m.", "optim.v."};
    const float *bases[3] = {params, tr->m, tr->v};
    for (int j = 0; j < 3 && st == LB_OK; j++)
        for (size_t k = 0; k < lb_model_num_tensors(model) && st == LB_OK; k++) {
            const lb_param_info *p = lb_model_tensor(model, k);
            char name[96];
            snprintf(name, sizeof name, "%s%s", prefixes[j], p->name);
            st = lb_safetensors_writer_add_raw(ctx, w, name, LB_F32, p->ndim, p->shape,
                                               bases[j] + p->offset);
        }
    // the recipe's state (learned LSQ steps, chosen blocks, ...): "recipe.state"
    lb_tensor *rs = NULL;
    if (st == LB_OK) st = lb_recipe_get_state(tr->recipe, ctx, &rs);
    if (st == LB_OK && rs) st = lb_safetensors_writer_add(ctx, w, "recipe.state", rs);
    lb_tensor_free(rs);
    if (st == LB_OK) st = lb_safetensors_writer_save(ctx, w, path);
    lb_safetensors_writer_free(w);
    return st;
}

/* ----------------------------------------------------------------- loading */

lb_status lb_trainer_resume(lb_ctx *ctx, const char *path, int64_t steps, lb_trainer **out)
{
    if (!path || !out) return lb_error(ctx, LB_ERR_ARG, "resume: NULL argument");
    *out = NULL;
    lb_safetensors *st = NULL;
    TRY(lb_safetensors_read(ctx, path, &st));
    lb_train_config cfg;
    lb_status s = read_config(ctx, st, path, &cfg);
    int64_t step = 0;
    lb_data_cursor cursor = {0, 0};
    if (s == LB_OK) s = read_state(ctx, st, path, &step, &cursor);
    if (s == LB_OK && steps > 0) cfg.steps = steps;
    lb_trainer *tr = NULL;
    if (s == LB_OK) s = lb_trainer_create(ctx, &cfg, &tr);
    if (s == LB_OK) s = read_tensors(ctx, st, path, tr->model, "model.", lb_model_params(tr->model));
    if (s == LB_OK) {
        char name[96];
        snprintf(name, sizeof name, "optim.m.%s", lb_model_tensor(tr->model, 0)->name);
        if (lb_safetensors_info(NULL, st, name, NULL, NULL, NULL) == LB_ERR_NOT_FOUND)
            s = lb_error(ctx, LB_ERR_FORMAT,
                         "checkpoint %s has no optimizer state (optim.*): it cannot be resumed",
                         path);
    }
    if (s == LB_OK) s = read_tensors(ctx, st, path, tr->model, "optim.m.", tr->m);
    if (s == LB_OK) s = read_tensors(ctx, st, path, tr->model, "optim.v.", tr->v);
    if (s == LB_OK && lb_trainer_recipe(tr)->get_state) {
        // quantized recipes need their state to resume bit-exactly
        lb_tensor *rs = NULL;
        s = lb_safetensors_get(ctx, st, "recipe.state", &rs);
        if (s == LB_ERR_NOT_FOUND)
            s = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s has no recipe.state for recipe %s",
                         path, tr->cfg.recipe);
        if (s == LB_OK) s = lb_recipe_set_state(lb_trainer_recipe(tr), ctx, rs);
        lb_tensor_free(rs);
    }
    if (s == LB_OK) {
        tr->step = step;
        if (tr->batcher) {
            s = lb_batcher_seek(ctx, tr->batcher, cursor);
            if (s != LB_OK) {
                char detail[300];
                snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
                s = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: bad data position: %s", path,
                             detail);
            }
        } else if (cursor.position != (uint64_t)step) {
            s = lb_error(ctx, LB_ERR_FORMAT,
                         "checkpoint %s: text data position %llu differs from step %lld", path,
                         (unsigned long long)cursor.position, (long long)step);
        }
    }
    lb_safetensors_free(st);
    if (s != LB_OK) {
        lb_trainer_free(tr);
        return s;
    }
    *out = tr;
    return LB_OK;
}

lb_status lb_checkpoint_load_model(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                   int64_t max_batch, lb_model **model, lb_checkpoint_info *info)
{
    if (!path || !backend || !model) return lb_error(ctx, LB_ERR_ARG, "load: NULL argument");
    *model = NULL;
    lb_safetensors *st = NULL;
    TRY(lb_safetensors_read(ctx, path, &st));
    lb_train_config cfg;
    lb_status s = read_config(ctx, st, path, &cfg);
    int64_t step = 0;
    lb_data_cursor cursor;
    if (s == LB_OK) s = read_state(ctx, st, path, &step, &cursor);
    lb_model *m = NULL;
    lb_recipe *recipe = NULL;
    // the recipe is not needed to evaluate an fp32 model's weights
    if (s == LB_OK)
        s = lb_model_create(ctx, &cfg.model, backend, recipe,
                            max_batch > 0 ? max_batch : cfg.batch_size, &m);
    if (s == LB_OK) s = read_tensors(ctx, st, path, m, "model.", lb_model_params(m));
    if (s == LB_OK && info) {
        info->train = cfg;
        info->step = step;
        char name[96];
        snprintf(name, sizeof name, "optim.m.%s", lb_model_tensor(m, 0)->name);
        info->has_optimizer = lb_safetensors_info(NULL, st, name, NULL, NULL, NULL) == LB_OK;
    }
    lb_safetensors_free(st);
    if (s != LB_OK) {
        lb_model_free(m);
        return s;
    }
    *model = m;
    return LB_OK;
}

/* ------------------------------------------- weights-only checkpoints and
 * the config of other lowbit files (post-training quantization, import) */

lb_status lb_checkpoint_save_model(lb_ctx *ctx, lb_model *model, const lb_train_config *cfg,
                                   int64_t step, size_t n_meta, const char *const *meta,
                                   const char *path)
{
    if (!model || !cfg || !path || (n_meta && !meta))
        return lb_error(ctx, LB_ERR_ARG, "save: NULL argument");
    lb_train_config c = *cfg;
    c.model = *lb_model_get_config(model);
    lb_safetensors_writer *w = NULL;
    TRY(lb_safetensors_writer_create(ctx, &w));
    const float *params = lb_model_params(model);
    lb_status st = write_config(ctx, w, &c);
    if (st == LB_OK) st = set_meta(ctx, w, "state.step", "%lld", (long long)step);
    if (st == LB_OK) st = set_meta(ctx, w, "state.data_epoch", "0");
    if (st == LB_OK) st = set_meta(ctx, w, "state.data_position", "%lld", (long long)step);
    for (size_t i = 0; i < n_meta && st == LB_OK; i++)
        st = lb_safetensors_writer_set_metadata(ctx, w, meta[2 * i], meta[2 * i + 1]);
    for (size_t k = 0; k < lb_model_num_tensors(model) && st == LB_OK; k++) {
        const lb_param_info *p = lb_model_tensor(model, k);
        char name[96];
        snprintf(name, sizeof name, "model.%s", p->name);
        st = lb_safetensors_writer_add_raw(ctx, w, name, LB_F32, p->ndim, p->shape,
                                           params + p->offset);
    }
    if (st == LB_OK) st = lb_safetensors_writer_save(ctx, w, path);
    lb_safetensors_writer_free(w);
    return st;
}

lb_status lb_checkpoint_write_config(lb_ctx *ctx, lb_safetensors_writer *w,
                                     const lb_train_config *cfg, const char *format)
{
    TRY(write_config(ctx, w, cfg));
    if (format) TRY(lb_safetensors_writer_set_metadata(ctx, w, "format", format));
    return LB_OK;
}

lb_status lb_checkpoint_read_config(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                                    const char *format, lb_train_config *cfg)
{
    return read_config_as(ctx, st, path, format ? format : CHECKPOINT_FORMAT, cfg);
}

/* models/model_config.c — model configurations: names, defaults, checks. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/model.h"

const char *lb_model_kind_name(lb_model_kind kind)
{
    switch (kind) {
    case LB_MODEL_VIT: return "vit";
    case LB_MODEL_GPT: return "gpt";
    case LB_MODEL_BERT: return "bert";
    }
    return "?";
}

lb_status lb_model_kind_from_name(lb_ctx *ctx, const char *name, lb_model_kind *out)
{
    for (int k = LB_MODEL_VIT; k <= LB_MODEL_BERT; k++)
        if (name && strcmp(name, lb_model_kind_name((lb_model_kind)k)) == 0) {
            *out = (lb_model_kind)k;
            return LB_OK;
        }
    return lb_error(ctx, LB_ERR_ARG, "unknown model '%s' (expected vit, gpt or bert)",
                    name ? name : "(null)");
}

const char *lb_attention_kind_name(lb_attention_kind kind)
{
    switch (kind) {
    case LB_ATTENTION_SOFTMAX: return "softmax";
    case LB_ATTENTION_CLIPPED: return "clipped";
    case LB_ATTENTION_GATED: return "gated";
    }
    return "?";
}

lb_status lb_attention_kind_from_name(lb_ctx *ctx, const char *name, lb_attention_kind *out)
{
    for (int k = LB_ATTENTION_SOFTMAX; k <= LB_ATTENTION_GATED; k++)
        if (name && strcmp(name, lb_attention_kind_name((lb_attention_kind)k)) == 0) {
            *out = (lb_attention_kind)k;
            return LB_OK;
        }
    return lb_error(ctx, LB_ERR_ARG,
                    "unknown attention '%s' (expected softmax, clipped or gated)",
                    name ? name : "(null)");
}

void lb_model_config_default(lb_model_kind kind, lb_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->attention = LB_ATTENTION_SOFTMAX;
    cfg->clip_zeta = 1.0f;
    cfg->gate_init = 0.5f;
    cfg->init_std = 0.02f;
    cfg->ln_eps = 1e-5f;
    switch (kind) {
    case LB_MODEL_VIT:
        cfg->n_layer = 4;
        cfg->d_model = 64;
        cfg->n_head = 4;
        cfg->d_ff = 256;
        cfg->image_size = 28;
        cfg->patch_size = 7;
        cfg->cls_token = 1;
        cfg->n_classes = 10;
        cfg->max_seq_len = (28 / 7) * (28 / 7) + 1;
        break;
    case LB_MODEL_GPT:
        cfg->n_layer = 4;
        cfg->d_model = 128;
        cfg->n_head = 4;
        cfg->d_ff = 512;
        cfg->max_seq_len = 128;
        cfg->vocab_size = 256;
        cfg->tied_embeddings = 1;
        break;
    case LB_MODEL_BERT:
        cfg->n_layer = 4;
        cfg->d_model = 128;
        cfg->n_head = 4;
        cfg->d_ff = 512;
        cfg->max_seq_len = 128;
        cfg->vocab_size = 257;
        cfg->type_vocab_size = 2;
        cfg->embed_ln = 1;
        cfg->ln_eps = 1e-12f;
        break;
    }
    cfg->clip_gamma = -2.0f / (float)cfg->max_seq_len;
}

void lb_model_config_minilm(lb_model_config *cfg)
{
    lb_model_config_default(LB_MODEL_BERT, cfg);
    cfg->n_layer = 6;
    cfg->d_model = 384;
    cfg->n_head = 12;
    cfg->d_ff = 1536;
    cfg->vocab_size = 30522;
    cfg->max_seq_len = 512;
    cfg->clip_gamma = -2.0f / 512;
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) return lb_error(ctx, LB_ERR_ARG, __VA_ARGS__);                            \
    } while (0)

lb_status lb_model_config_check(lb_ctx *ctx, lb_model_config *cfg)
{
    CHECK(cfg, "model config: NULL");
    CHECK(cfg->kind >= LB_MODEL_VIT && cfg->kind <= LB_MODEL_BERT, "model config: bad kind %d",
          (int)cfg->kind);
    CHECK(cfg->n_layer >= 1 && cfg->n_layer <= 256, "model config: n_layer %d not in 1..256",
          cfg->n_layer);
    CHECK(cfg->d_model >= 1 && cfg->d_model <= 16384, "model config: d_model %d not in 1..16384",
          cfg->d_model);
    CHECK(cfg->n_head >= 1 && cfg->d_model % cfg->n_head == 0,
          "model config: d_model %d is not a multiple of n_head %d", cfg->d_model, cfg->n_head);
    CHECK(cfg->d_ff >= 1 && cfg->d_ff <= 65536, "model config: d_ff %d not in 1..65536",
          cfg->d_ff);
    CHECK(cfg->ln_eps > 0 && isfinite(cfg->ln_eps), "model config: ln_eps must be > 0");
    CHECK(cfg->init_std >= 0 && isfinite(cfg->init_std), "model config: init_std must be >= 0");
    CHECK(cfg->attention >= LB_ATTENTION_SOFTMAX && cfg->attention <= LB_ATTENTION_GATED,
          "model config: bad attention %d", (int)cfg->attention);
    CHECK(isfinite(cfg->clip_gamma) && cfg->clip_gamma <= 0,
          "model config: clip_gamma %g must be <= 0", (double)cfg->clip_gamma);
    CHECK(isfinite(cfg->clip_zeta) && cfg->clip_zeta >= 1,
          "model config: clip_zeta %g must be >= 1", (double)cfg->clip_zeta);
    CHECK(cfg->gate_init > 0 && cfg->gate_init < 1, "model config: gate_init %g not in (0, 1)",
          (double)cfg->gate_init);
    if (cfg->kind == LB_MODEL_VIT) {
        CHECK(cfg->image_size >= 1 && cfg->image_size <= 4096,
              "model config: image_size %d not in 1..4096", cfg->image_size);
        CHECK(cfg->patch_size >= 1 && cfg->image_size % cfg->patch_size == 0,
              "model config: patch_size %d does not divide image_size %d", cfg->patch_size,
              cfg->image_size);
        CHECK(cfg->n_classes >= 1 && cfg->n_classes <= 65536,
              "model config: n_classes %d not in 1..65536", cfg->n_classes);
        CHECK(cfg->cls_token == 0 || cfg->cls_token == 1, "model config: cls_token must be 0/1");
        const int side = cfg->image_size / cfg->patch_size;
        cfg->max_seq_len = side * side + cfg->cls_token;
        cfg->vocab_size = 0;
        cfg->type_vocab_size = 0;
        cfg->tied_embeddings = 0;
    } else {
        CHECK(cfg->max_seq_len >= 1 && cfg->max_seq_len <= 65536,
              "model config: max_seq_len %d not in 1..65536", cfg->max_seq_len);
        CHECK(cfg->vocab_size >= 1 && cfg->vocab_size <= 1 << 20,
              "model config: vocab_size %d not in 1..2^20", cfg->vocab_size);
        if (cfg->kind == LB_MODEL_BERT) {
            CHECK(cfg->type_vocab_size >= 1 && cfg->type_vocab_size <= 1024,
                  "model config: type_vocab_size %d not in 1..1024", cfg->type_vocab_size);
            cfg->embed_ln = 1;
            cfg->tied_embeddings = 1;
        } else {
            cfg->type_vocab_size = 0;
            CHECK(cfg->tied_embeddings == 0 || cfg->tied_embeddings == 1,
                  "model config: tied_embeddings must be 0/1");
        }
        cfg->image_size = cfg->patch_size = cfg->n_classes = cfg->cls_token = 0;
    }
    CHECK(cfg->embed_ln == 0 || cfg->embed_ln == 1, "model config: embed_ln must be 0/1");
    return LB_OK;
}

void lb_model_config_describe(const lb_model_config *c, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "model %s\nlayers %d\nd_model %d\nheads %d\nd_ff %d\nseq_len %d\n"
                     "attention %s\n",
                     lb_model_kind_name(c->kind), c->n_layer, c->d_model, c->n_head, c->d_ff,
                     c->max_seq_len, lb_attention_kind_name(c->attention));
    if (n < 0 || (size_t)n >= size) return;
    size_t used = (size_t)n;
    if (c->attention == LB_ATTENTION_CLIPPED)
        n = snprintf(buf + used, size - used, "clip_gamma %g\nclip_zeta %g\n",
                     (double)c->clip_gamma, (double)c->clip_zeta);
    else if (c->attention == LB_ATTENTION_GATED)
        n = snprintf(buf + used, size - used, "gate_init %g\n", (double)c->gate_init);
    else
        n = 0;
    if (n < 0 || (size_t)n >= size - used) return;
    used += (size_t)n;
    if (c->kind == LB_MODEL_VIT)
        n = snprintf(buf + used, size - used,
                     "image %dx%d\npatch %dx%d\npooling %s\nclasses %d\nembed_ln %d\n",
                     c->image_size, c->image_size, c->patch_size, c->patch_size,
                     c->cls_token ? "cls" : "mean", c->n_classes, c->embed_ln);
    else
        n = snprintf(buf + used, size - used, "vocab %d\n%s %d\n", c->vocab_size,
                     c->kind == LB_MODEL_GPT ? "tied" : "types",
                     c->kind == LB_MODEL_GPT ? c->tied_embeddings : c->type_vocab_size);
    (void)n;
}

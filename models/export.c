/* models/export.c — weights-only safetensors with PyTorch-style names.
 *
 * The mapping (doc/models.md has the full table and the PyTorch modules
 * they load into):
 *   vit  -> timm VisionTransformer (in_chans 1, LayerNorm eps 1e-5,
 *           qkv_bias, class_token or global_pool 'avg' with fc_norm False,
 *           pre_norm for embed_ln): patch_embed.proj, cls_token, pos_embed,
 *           norm_pre, blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
 *           mlp.fc2}, norm, head;
 *   gpt  -> nanoGPT GPT (bias=True, nn.GELU): transformer.{wte, wpe, h.i.{ln_1,
 *           attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f},
 *           lm_head (a copy of wte when tied);
 *   bert -> HF BertModel (no pooler): embeddings.{word_, position_,
 *           token_type_}embeddings, embeddings.LayerNorm,
 *           encoder.layer.i.attention.self.{query, key, value} (the fused
 *           qkv split in three), attention.output.{dense, LayerNorm},
 *           intermediate.dense, output.{dense, LayerNorm}; mlm.bias stays.
 * Gate parameters keep lowbit's names (blocks.i.attn.gate.{weight, bias});
 * no PyTorch module has them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lowbit/safetensors.h"
#include "lowbit/train.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* Renames a block tensor "blocks.L.REST" with the per-kind table; returns 0
 * when `name` is not a block tensor. */
static int block_name(lb_model_kind kind, const char *name, char *out, size_t n)
{
    int layer, used = 0;
    if (sscanf(name, "blocks.%d.%n", &layer, &used) != 1 || used == 0) return 0;
    const char *rest = name + used;
    static const char *const vit[][2] = {
        {"ln1.", "norm1."},       {"attn.qkv.", "attn.qkv."},   {"attn.proj.", "attn.proj."},
        {"ln2.", "norm2."},       {"mlp.fc1.", "mlp.fc1."},     {"mlp.fc2.", "mlp.fc2."},
        {"attn.gate.", "attn.gate."},
    };
    static const char *const gpt[][2] = {
        {"ln1.", "ln_1."},        {"attn.qkv.", "attn.c_attn."}, {"attn.proj.", "attn.c_proj."},
        {"ln2.", "ln_2."},        {"mlp.fc1.", "mlp.c_fc."},     {"mlp.fc2.", "mlp.c_proj."},
        {"attn.gate.", "attn.gate."},
    };
    static const char *const bert[][2] = {
        {"attn.qkv.", "attention.self.qkv."}, /* split by the caller */
        {"attn.proj.", "attention.output.dense."},
        {"ln1.", "attention.output.LayerNorm."},
        {"mlp.fc1.", "intermediate.dense."},
        {"mlp.fc2.", "output.dense."},
        {"ln2.", "output.LayerNorm."},
        {"attn.gate.", "attention.gate."},
    };
    const char *const(*table)[2] = kind == LB_MODEL_VIT ? vit : kind == LB_MODEL_GPT ? gpt : bert;
    const char *prefix = kind == LB_MODEL_VIT ? "blocks" : kind == LB_MODEL_GPT ? "transformer.h"
                                                                                : "encoder.layer";
    for (int i = 0; i < 7; i++) {
        const size_t len = strlen(table[i][0]);
        if (strncmp(rest, table[i][0], len) == 0) {
            snprintf(out, n, "%s.%d.%s%s", prefix, layer, table[i][1], rest + len);
            return 1;
        }
    }
    return 0;
}

/* Export name of a non-block tensor. */
static const char *top_name(lb_model_kind kind, const char *name)
{
    static const char *const vit[][2] = {
        {"patch.weight", "patch_embed.proj.weight"}, {"patch.bias", "patch_embed.proj.bias"},
        {"cls", "cls_token"}, {"pos", "pos_embed"}, {"embed_ln.weight", "norm_pre.weight"},
        {"embed_ln.bias", "norm_pre.bias"}, {"ln_f.weight", "norm.weight"},
        {"ln_f.bias", "norm.bias"}, {"head.weight", "head.weight"}, {"head.bias", "head.bias"},
    };
    static const char *const gpt[][2] = {
        {"wte", "transformer.wte.weight"}, {"wpe", "transformer.wpe.weight"},
        {"ln_f.weight", "transformer.ln_f.weight"}, {"ln_f.bias", "transformer.ln_f.bias"},
        {"lm_head.weight", "lm_head.weight"}, {"embed_ln.weight", "transformer.embed_ln.weight"},
        {"embed_ln.bias", "transformer.embed_ln.bias"}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL},
    };
    static const char *const bert[][2] = {
        {"wte", "embeddings.word_embeddings.weight"},
        {"wpe", "embeddings.position_embeddings.weight"},
        {"wtt", "embeddings.token_type_embeddings.weight"},
        {"embed_ln.weight", "embeddings.LayerNorm.weight"},
        {"embed_ln.bias", "embeddings.LayerNorm.bias"},
        {"mlm.bias", "mlm.bias"}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL},
    };
    const char *const(*table)[2] = kind == LB_MODEL_VIT ? vit : kind == LB_MODEL_GPT ? gpt : bert;
    for (int i = 0; i < 10 && table[i][0]; i++)
        if (strcmp(name, table[i][0]) == 0) return table[i][1];
    return name;
}

lb_status lb_model_export(lb_ctx *ctx, lb_model *model, const char *path)
{
    if (!model || !path) return lb_error(ctx, LB_ERR_ARG, "export: NULL argument");
    const lb_model_config *c = lb_model_get_config(model);
    const float *params = lb_model_params(model);
    lb_safetensors_writer *w = NULL;
    TRY(lb_safetensors_writer_create(ctx, &w));
    lb_status st = lb_safetensors_writer_set_metadata(ctx, w, "format", "lowbit-export");
    const char *names = c->kind == LB_MODEL_VIT ? "timm" : c->kind == LB_MODEL_GPT ? "nanogpt"
                                                                                    : "hf-bert";
    char buf[64];
    if (st == LB_OK) st = lb_safetensors_writer_set_metadata(ctx, w, "names", names);
    if (st == LB_OK)
        st = lb_safetensors_writer_set_metadata(ctx, w, "model.kind", lb_model_kind_name(c->kind));
    if (st == LB_OK)
        st = lb_safetensors_writer_set_metadata(ctx, w, "model.attention",
                                                lb_attention_kind_name(c->attention));
    const struct {
        const char *key;
        double v;
    } meta[] = {
        {"model.n_layer", c->n_layer},       {"model.d_model", c->d_model},
        {"model.n_head", c->n_head},         {"model.d_ff", c->d_ff},
        {"model.max_seq_len", c->max_seq_len}, {"model.vocab_size", c->vocab_size},
        {"model.n_classes", c->n_classes},   {"model.patch_size", c->patch_size},
        {"model.cls_token", c->cls_token},   {"model.ln_eps", (double)c->ln_eps},
        {"model.clip_gamma", (double)c->clip_gamma}, {"model.clip_zeta", (double)c->clip_zeta},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0] && st == LB_OK; i++) {
        snprintf(buf, sizeof buf, "%.9g", meta[i].v);
        st = lb_safetensors_writer_set_metadata(ctx, w, meta[i].key, buf);
    }
    const int64_t C = c->d_model;
    for (size_t k = 0; k < lb_model_num_tensors(model) && st == LB_OK; k++) {
        const lb_param_info *p = lb_model_tensor(model, k);
        const float *data = params + p->offset;
        char name[128];
        if (!block_name(c->kind, p->name, name, sizeof name))
            snprintf(name, sizeof name, "%s", top_name(c->kind, p->name));
        if (c->kind == LB_MODEL_BERT && strstr(name, ".attention.self.qkv.")) {
            // split (3C, C) / (3C) into query, key, value
            static const char *const parts[3] = {"query", "key", "value"};
            const int is_weight = p->ndim == 2;
            char stem[128];
            snprintf(stem, sizeof stem, "%.*s", (int)(strstr(name, "qkv.") - name), name);
            for (int j = 0; j < 3 && st == LB_OK; j++) {
                char part[160];
                snprintf(part, sizeof part, "%s%s.%s", stem, parts[j],
                         is_weight ? "weight" : "bias");
                const int64_t shape[2] = {C, C};
                st = lb_safetensors_writer_add_raw(ctx, w, part, LB_F32, is_weight ? 2 : 1, shape,
                                                   data + j * C * (is_weight ? C : 1));
            }
            continue;
        }
        int ndim = p->ndim;
        int64_t shape[LB_MAX_DIMS];
        memcpy(shape, p->shape, sizeof shape);
        if (c->kind == LB_MODEL_VIT && strcmp(p->name, "patch.weight") == 0) {
            ndim = 4; // Conv2d(1, C, P, stride P)
            shape[0] = C, shape[1] = 1, shape[2] = c->patch_size, shape[3] = c->patch_size;
        } else if (c->kind == LB_MODEL_VIT && strcmp(p->name, "cls") == 0) {
            ndim = 3, shape[0] = 1, shape[1] = 1, shape[2] = C;
        } else if (c->kind == LB_MODEL_VIT && strcmp(p->name, "pos") == 0) {
            ndim = 3, shape[0] = 1, shape[1] = p->shape[0], shape[2] = C;
        }
        st = lb_safetensors_writer_add_raw(ctx, w, name, LB_F32, ndim, shape, data);
        if (st == LB_OK && c->kind == LB_MODEL_GPT && c->tied_embeddings &&
            strcmp(p->name, "wte") == 0)
            st = lb_safetensors_writer_add_raw(ctx, w, "lm_head.weight", LB_F32, ndim, shape,
                                               data);
    }
    if (st == LB_OK) st = lb_safetensors_writer_save(ctx, w, path);
    lb_safetensors_writer_free(w);
    return st;
}

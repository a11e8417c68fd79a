/* models/model.c — vit, gpt and bert: parameter layout, initialisation,
 * forward and backward, written once over the backend table (lowbit/backend.h)
 * with every linear layer going through the recipe (lowbit/model_linear.h).
 *
 * Shapes: B examples, T tokens, N = B*T rows, C = d_model, NH heads,
 * hs = C/NH, F = d_ff, V = vocabulary, K = classes, P = patch side,
 * NP = patches per image, PP = P*P pixels per patch.
 *
 * Block structure (x = block input, (N, C)):
 *   pre-LN  (vit, gpt):  a = LN1(x); x1 = x + proj(attn(a)); b = LN2(x1);
 *                        out = x1 + fc2(gelu(fc1(b)))
 *   post-LN (bert):      x1 = LN1(x + proj(attn(x)));
 *                        out = LN2(x1 + fc2(gelu(fc1(x1))))
 * The attention input (pre-LN: a, post-LN: x) also feeds the gate of gated
 * attention (spec outlier_free §2.1).
 *
 * Activations are stored per block for the backward (llm.c style); the
 * activation gradients use a few (N, C) / (N, F) buffers reused by every
 * block. Backward ops accumulate, so each buffer is zeroed before use.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/rng.h"
#include "lowbit/model.h"

/* Offsets (in floats) of the parameters of one block; -1 when absent. */
typedef struct block_off {
    int64_t ln1_w, ln1_b;   // (C), (C)
    int64_t qkv_w, qkv_b;   // (3C, C), (3C)
    int64_t gate_w, gate_b; // (NH, hs), (NH)   gated only
    int64_t proj_w, proj_b; // (C, C), (C)
    int64_t ln2_w, ln2_b;   // (C), (C)
    int64_t fc1_w, fc1_b;   // (F, C), (F)
    int64_t fc2_w, fc2_b;   // (C, F), (C)
} block_off;

/* Activations of one block (pointers into the activation buffer). */
typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; // (N, C), (N), (N)
    float *qkv;                       // (N, 3C)
    float *att_probs;                 // (B, NH, T, T)
    float *att_ctx;                   // (N, C) ungated context, gated only
    float *att_gate;                  // (B, NH, T) gate values, gated only
    float *att_out;                   // (N, C) attention output = proj input
    float *res1;                      // (N, C) x + proj
    float *ln2, *ln2_mean, *ln2_rstd; // (N, C), (N), (N)
    float *fc1;                       // (N, F) pre-activation
    float *gelu;                      // (N, F)
    float *res2;                      // (N, C) res1 (pre-LN) or ln1 (post-LN) + fc2
} block_acts;

struct lb_model {
    lb_model_config cfg;
    const lb_backend *be;
    lb_recipe *recipe;
    int64_t max_B, max_T;
    int no_head;                         // gpt/bert: no LM/MLM head (lb_model_options)
    lb_model_observer_fn observer;       // activation taps (NULL: none)
    void *observer_user;

    /* parameters */
    lb_param_info *tensors;
    size_t n_tensors, cap_tensors;
    int64_t n_params;
    float *params, *grads; // (n_params) each
    // offsets of the non-block tensors (-1 when absent)
    int64_t patch_w, patch_b, cls, pos;  // vit: (C, PP), (C), (C), (T, C)
    int64_t wte, wpe, wtt;               // gpt/bert: (V, C), (T, C), (types, C)
    int64_t emb_ln_w, emb_ln_b;          // (C)
    int64_t lnf_w, lnf_b;                // vit/gpt: (C)
    int64_t head_w, head_b;              // vit: (K, C), (K)
    int64_t lm_w;                        // gpt untied: (V, C)
    int64_t mlm_b;                       // bert: (V)
    block_off *blocks;                   // (n_layer)

    /* activations, one buffer */
    float *act_mem;
    block_acts *acts;                    // (n_layer)
    float *patches;                      // vit: (B, NP, PP)
    float *patch_out;                    // vit: (B*NP, C)
    float *emb;                          // (N, C) embedding sum
    float *emb_ln, *emb_mean, *emb_rstd; // (N, C), (N), (N)
    float *lnf, *lnf_mean, *lnf_rstd;    // (N, C), (N), (N)
    float *pooled;                       // (B, C)
    float *logits, *probs;               // (rows, cols)
    float *losses;                       // (rows)
    float *lin_out;                      // (N, C) proj / fc2 output before the residual add
    int32_t *zero_ids;                   // (N) token types when none are given

    /* activation gradients, reused by every block */
    float *grad_mem;
    float *d_res, *d_buf1, *d_buf2;      // (N, C)
    float *d_qkv;                        // (N, 3C)
    float *d_ff1, *d_ff2;                // (N, F)
    float *d_logits;                     // (rows, cols)
    float *d_pooled;                     // (B, C)
    float *d_att_scratch;                // lb_attention_scratch_floats

    /* the last forward */
    lb_model_batch batch;
    int64_t B, T, rows, cols;
    int64_t n_targets;
    int have_forward, training;
    int64_t step;
};

/* ------------------------------------------------------------- small helpers */

static lb_status add_tensor(lb_ctx *ctx, lb_model *m, int64_t *off, int decay, int ndim,
                            const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Appends a tensor to the table and returns its offset in *off. */
static lb_status add_tensor(lb_ctx *ctx, lb_model *m, int64_t *off, int decay, int ndim,
                            const int64_t *shape, const char *fmt, ...)
{
    if (m->n_tensors == m->cap_tensors) {
        const size_t cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        lb_param_info *t = lb_calloc(cap, sizeof *t);
        if (!t) return lb_error(ctx, LB_ERR_NOMEM, "model: out of memory");
        if (m->tensors) memcpy(t, m->tensors, m->n_tensors * sizeof *t);
        lb_free(m->tensors);
        m->tensors = t;
        m->cap_tensors = cap;
    }
    lb_param_info *p = &m->tensors[m->n_tensors++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < LB_MAX_DIMS; i++) p->shape[i] = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->offset = m->n_params;
    p->decay = decay;
    m->n_params += p->numel;
    *off = p->offset;
    return LB_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define ADD(off, decay, ndim, shape, ...)                                                      \
    do {                                                                                       \
        lb_status st_ = add_tensor(ctx, m, (off), (decay), (ndim), (shape), __VA_ARGS__);      \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* Builds the parameter table of the config (names: doc/models.md). */
static lb_status build_layout(lb_ctx *ctx, lb_model *m)
{
    const lb_model_config *c = &m->cfg;
    const int64_t C = c->d_model, F = c->d_ff, NH = c->n_head, hs = C / NH;
    const int64_t T = c->max_seq_len, V = c->vocab_size;
    m->patch_w = m->patch_b = m->cls = m->pos = m->wte = m->wpe = m->wtt = -1;
    m->emb_ln_w = m->emb_ln_b = m->lnf_w = m->lnf_b = m->head_w = m->head_b = -1;
    m->lm_w = m->mlm_b = -1;
    if (c->kind == LB_MODEL_VIT) {
        const int64_t PP = (int64_t)c->patch_size * c->patch_size;
        ADD(&m->patch_w, 1, 2, SHAPE(C, PP), "patch.weight");
        ADD(&m->patch_b, 0, 1, SHAPE(C), "patch.bias");
        if (c->cls_token) ADD(&m->cls, 0, 1, SHAPE(C), "cls");
        ADD(&m->pos, 0, 2, SHAPE(T, C), "pos");
    } else {
        ADD(&m->wte, 1, 2, SHAPE(V, C), "wte");
        ADD(&m->wpe, 0, 2, SHAPE(T, C), "wpe");
        if (c->kind == LB_MODEL_BERT)
            ADD(&m->wtt, 0, 2, SHAPE((int64_t)c->type_vocab_size, C), "wtt");
    }
    if (c->embed_ln) {
        ADD(&m->emb_ln_w, 0, 1, SHAPE(C), "embed_ln.weight");
        ADD(&m->emb_ln_b, 0, 1, SHAPE(C), "embed_ln.bias");
    }
    for (int l = 0; l < c->n_layer; l++) {
        block_off *b = &m->blocks[l];
        ADD(&b->ln1_w, 0, 1, SHAPE(C), "blocks.%d.ln1.weight", l);
        ADD(&b->ln1_b, 0, 1, SHAPE(C), "blocks.%d.ln1.bias", l);
        ADD(&b->qkv_w, 1, 2, SHAPE(3 * C, C), "blocks.%d.attn.qkv.weight", l);
        ADD(&b->qkv_b, 0, 1, SHAPE(3 * C), "blocks.%d.attn.qkv.bias", l);
        b->gate_w = b->gate_b = -1;
        if (c->attention == LB_ATTENTION_GATED) {
            ADD(&b->gate_w, 1, 2, SHAPE(NH, hs), "blocks.%d.attn.gate.weight", l);
            ADD(&b->gate_b, 0, 1, SHAPE(NH), "blocks.%d.attn.gate.bias", l);
        }
        ADD(&b->proj_w, 1, 2, SHAPE(C, C), "blocks.%d.attn.proj.weight", l);
        ADD(&b->proj_b, 0, 1, SHAPE(C), "blocks.%d.attn.proj.bias", l);
        ADD(&b->ln2_w, 0, 1, SHAPE(C), "blocks.%d.ln2.weight", l);
        ADD(&b->ln2_b, 0, 1, SHAPE(C), "blocks.%d.ln2.bias", l);
        ADD(&b->fc1_w, 1, 2, SHAPE(F, C), "blocks.%d.mlp.fc1.weight", l);
        ADD(&b->fc1_b, 0, 1, SHAPE(F), "blocks.%d.mlp.fc1.bias", l);
        ADD(&b->fc2_w, 1, 2, SHAPE(C, F), "blocks.%d.mlp.fc2.weight", l);
        ADD(&b->fc2_b, 0, 1, SHAPE(C), "blocks.%d.mlp.fc2.bias", l);
    }
    if (c->kind != LB_MODEL_BERT) {
        ADD(&m->lnf_w, 0, 1, SHAPE(C), "ln_f.weight");
        ADD(&m->lnf_b, 0, 1, SHAPE(C), "ln_f.bias");
    }
    if (c->kind == LB_MODEL_VIT) {
        ADD(&m->head_w, 1, 2, SHAPE((int64_t)c->n_classes, C), "head.weight");
        ADD(&m->head_b, 0, 1, SHAPE((int64_t)c->n_classes), "head.bias");
    } else if (c->kind == LB_MODEL_GPT && !c->tied_embeddings) {
        ADD(&m->lm_w, 1, 2, SHAPE(V, C), "lm_head.weight");
    } else if (c->kind == LB_MODEL_BERT) {
        ADD(&m->mlm_b, 0, 1, SHAPE(V), "mlm.bias");
    }
    return LB_OK;
}

lb_status lb_model_config_num_params(lb_ctx *ctx, const lb_model_config *cfg, int64_t *out)
{
    if (!cfg || !out) return lb_error(ctx, LB_ERR_ARG, "model: NULL argument");
    lb_model tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *cfg;
    lb_status st = lb_model_config_check(ctx, &tmp.cfg);
    if (st != LB_OK) return st;
    tmp.blocks = lb_calloc((size_t)tmp.cfg.n_layer, sizeof *tmp.blocks);
    if (!tmp.blocks) return lb_error(ctx, LB_ERR_NOMEM, "model: out of memory");
    lb_model *m = &tmp;
    st = build_layout(ctx, m);
    *out = tmp.n_params;
    lb_free(tmp.tensors);
    lb_free(tmp.blocks);
    return st;
}

/* A bump allocator over one float buffer: first pass counts, second assigns. */
typedef struct carve {
    float *base;
    int64_t used;
} carve;

static float *take(carve *cv, int64_t n)
{
    float *p = cv->base ? cv->base + cv->used : NULL;
    cv->used += (n + 15) & ~(int64_t)15; // keep every array 64-byte aligned
    return p;
}

/* Lays out the activations (cv->base NULL: only counts). */
static void carve_acts(lb_model *m, carve *cv)
{
    const lb_model_config *c = &m->cfg;
    const int64_t B = m->max_B, T = m->max_T, N = B * T, C = c->d_model, F = c->d_ff;
    const int64_t NH = c->n_head;
    const int gated = c->attention == LB_ATTENTION_GATED;
    const int64_t rows = c->kind == LB_MODEL_VIT ? B : m->no_head ? 0 : N;
    const int64_t cols = c->kind == LB_MODEL_VIT ? c->n_classes : c->vocab_size;
    for (int l = 0; l < c->n_layer; l++) {
        block_acts *a = &m->acts[l];
        a->ln1 = take(cv, N * C);
        a->ln1_mean = take(cv, N);
        a->ln1_rstd = take(cv, N);
        a->qkv = take(cv, N * 3 * C);
        a->att_probs = take(cv, B * NH * T * T);
        a->att_ctx = gated ? take(cv, N * C) : NULL;
        a->att_gate = gated ? take(cv, B * NH * T) : NULL;
        a->att_out = take(cv, N * C);
        a->res1 = take(cv, N * C);
        a->ln2 = take(cv, N * C);
        a->ln2_mean = take(cv, N);
        a->ln2_rstd = take(cv, N);
        a->fc1 = take(cv, N * F);
        a->gelu = take(cv, N * F);
        a->res2 = take(cv, N * C);
    }
    if (c->kind == LB_MODEL_VIT) {
        const int64_t side = c->image_size / c->patch_size, NP = side * side;
        const int64_t PP = (int64_t)c->patch_size * c->patch_size;
        m->patches = take(cv, B * NP * PP);
        m->patch_out = take(cv, B * NP * C);
    }
    m->emb = take(cv, N * C);
    m->emb_ln = take(cv, N * C);
    m->emb_mean = take(cv, N);
    m->emb_rstd = take(cv, N);
    m->lnf = take(cv, N * C);
    m->lnf_mean = take(cv, N);
    m->lnf_rstd = take(cv, N);
    m->pooled = take(cv, B * C);
    m->logits = take(cv, rows * cols);
    m->probs = take(cv, rows * cols);
    m->losses = take(cv, rows);
    m->lin_out = take(cv, N * C);
}

static void carve_grads(lb_model *m, carve *cv)
{
    const lb_model_config *c = &m->cfg;
    const int64_t B = m->max_B, T = m->max_T, N = B * T, C = c->d_model, F = c->d_ff;
    const int64_t rows = c->kind == LB_MODEL_VIT ? B : m->no_head ? 0 : N;
    const int64_t cols = c->kind == LB_MODEL_VIT ? c->n_classes : c->vocab_size;
    lb_attention_shape s = {B, T, C, c->n_head, 0, 0, 0, 0, 1};
    m->d_res = take(cv, N * C);
    m->d_buf1 = take(cv, N * C);
    m->d_buf2 = take(cv, N * C);
    m->d_qkv = take(cv, N * 3 * C);
    m->d_ff1 = take(cv, N * F);
    m->d_ff2 = take(cv, N * F);
    m->d_logits = take(cv, rows * cols);
    m->d_pooled = take(cv, B * C);
    m->d_att_scratch = take(cv, lb_attention_scratch_floats(&s));
}

/* ------------------------------------------------------------ create / free */

lb_status lb_model_create(lb_ctx *ctx, const lb_model_config *cfg, const lb_backend *backend,
                          lb_recipe *recipe, int64_t max_batch, lb_model **out)
{
    const lb_model_options opts = {max_batch, 0, 0};
    return lb_model_create_ex(ctx, cfg, backend, recipe, &opts, out);
}

lb_status lb_model_create_ex(lb_ctx *ctx, const lb_model_config *cfg, const lb_backend *backend,
                             lb_recipe *recipe, const lb_model_options *opts, lb_model **out)
{
    if (!cfg || !backend || !opts || !out)
        return lb_error(ctx, LB_ERR_ARG, "model: NULL argument");
    *out = NULL;
    lb_model_config c = *cfg;
    lb_status st = lb_model_config_check(ctx, &c);
    if (st != LB_OK) return st;
    const int64_t max_batch = opts->max_batch;
    if (opts->max_tokens < 0 || (opts->no_head != 0 && opts->no_head != 1))
        return lb_error(ctx, LB_ERR_ARG, "model: max_tokens must be >= 0 and no_head 0 or 1");
    if (max_batch < 1 || max_batch > (1 << 20))
        return lb_error(ctx, LB_ERR_ARG, "model: max_batch %lld not in 1..2^20",
                        (long long)max_batch);
    if (!recipe) {
        st = lb_recipe_create(ctx, "fp32", &recipe);
        if (st != LB_OK) return st;
    }
    lb_model *m = lb_calloc(1, sizeof *m);
    if (!m) return lb_error(ctx, LB_ERR_NOMEM, "model: out of memory");
    m->cfg = c;
    m->be = backend;
    m->recipe = recipe;
    m->max_B = max_batch;
    m->max_T = c.max_seq_len;
    if (c.kind != LB_MODEL_VIT && opts->max_tokens > 0 && opts->max_tokens < c.max_seq_len)
        m->max_T = opts->max_tokens;
    m->no_head = c.kind != LB_MODEL_VIT && opts->no_head;
    m->blocks = lb_calloc((size_t)c.n_layer, sizeof *m->blocks);
    m->acts = lb_calloc((size_t)c.n_layer, sizeof *m->acts);
    if (!m->blocks || !m->acts) {
        lb_model_free(m);
        return lb_error(ctx, LB_ERR_NOMEM, "model: out of memory");
    }
    st = build_layout(ctx, m);
    if (st != LB_OK) {
        lb_model_free(m);
        return st;
    }
    // sizes: count first (NULL base), then allocate and assign
    carve acts = {NULL, 0}, grads = {NULL, 0};
    carve_acts(m, &acts);
    carve_grads(m, &grads);
    size_t pbytes, abytes, gbytes, zbytes;
    if (!lb_mul_size((size_t)m->n_params, sizeof(float), &pbytes) ||
        !lb_mul_size((size_t)acts.used, sizeof(float), &abytes) ||
        !lb_mul_size((size_t)grads.used, sizeof(float), &gbytes) ||
        !lb_mul_size((size_t)(m->max_B * m->max_T), sizeof(int32_t), &zbytes)) {
        lb_model_free(m);
        return lb_error(ctx, LB_ERR_NOMEM, "model: size overflow");
    }
    m->params = lb_calloc(1, pbytes);
    m->grads = lb_calloc(1, pbytes);
    m->act_mem = lb_calloc(1, abytes);
    m->grad_mem = lb_calloc(1, gbytes);
    m->zero_ids = lb_calloc(1, zbytes);
    if (!m->params || !m->grads || !m->act_mem || !m->grad_mem || !m->zero_ids) {
        lb_model_free(m);
        return lb_error(ctx, LB_ERR_NOMEM,
                        "model: cannot allocate %.1f MB of parameters and activations",
                        (double)(2 * pbytes + abytes + gbytes) / 1e6);
    }
    acts = (carve){m->act_mem, 0};
    grads = (carve){m->grad_mem, 0};
    carve_acts(m, &acts);
    carve_grads(m, &grads);
    *out = m;
    return LB_OK;
}

void lb_model_free(lb_model *m)
{
    if (!m) return;
    lb_free(m->tensors);
    lb_free(m->blocks);
    lb_free(m->acts);
    lb_free(m->params);
    lb_free(m->grads);
    lb_free(m->act_mem);
    lb_free(m->grad_mem);
    lb_free(m->zero_ids);
    lb_free(m);
}

const lb_model_config *lb_model_get_config(const lb_model *m) { return &m->cfg; }
const lb_backend *lb_model_backend(const lb_model *m) { return m->be; }
void lb_model_set_backend(lb_model *m, const lb_backend *backend)
{
    if (backend) m->be = backend;
}
int64_t lb_model_max_batch(const lb_model *m) { return m->max_B; }
size_t lb_model_num_tensors(const lb_model *m) { return m->n_tensors; }
const lb_param_info *lb_model_tensor(const lb_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}
long lb_model_find_tensor(const lb_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return (long)i;
    return -1;
}
int64_t lb_model_num_params(const lb_model *m) { return m->n_params; }
float *lb_model_params(lb_model *m) { return m->params; }
float *lb_model_grads(lb_model *m) { return m->grads; }

void lb_model_set_observer(lb_model *m, lb_model_observer_fn fn, void *user)
{
    m->observer = fn;
    m->observer_user = fn ? user : NULL;
}

const char *lb_model_tap_name(lb_model_tap_site site)
{
    static const char *const names[LB_TAP_COUNT] = {
        "embed", "embed_ln", "ln1", "qkv", "attn_probs", "attn_gate", "attn_out",
        "proj_out", "res1", "ln2", "gelu", "fc2_out", "res2", "final_ln"};
    return (int)site >= 0 && site < LB_TAP_COUNT ? names[site] : "?";
}

void lb_model_zero_grad(lb_model *m)
{
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
}

/* ---------------------------------------------------------- initialisation */

lb_status lb_model_init(lb_ctx *ctx, lb_model *m, uint64_t seed)
{
    if (!m) return lb_error(ctx, LB_ERR_ARG, "model init: NULL model");
    const lb_model_config *c = &m->cfg;
    const double hs = (double)(c->d_model / c->n_head);
    const double gate_bias = log((double)c->gate_init / (1.0 - (double)c->gate_init));
    for (size_t k = 0; k < m->n_tensors; k++) {
        const lb_param_info *t = &m->tensors[k];
        float *p = m->params + t->offset;
        const uint64_t stream = lb_rng_stream("init", k);
        const char *dot = strrchr(t->name, '.');
        const int is_bias = dot && strcmp(dot, ".bias") == 0;
        const int is_ln = strstr(t->name, "ln") && dot && strcmp(dot, ".weight") == 0 &&
                          t->ndim == 1;
        const int is_gate = strstr(t->name, ".gate.") != NULL;
        for (int64_t i = 0; i < t->numel; i++) {
            double v;
            if (is_gate && is_bias) {
                v = gate_bias;
            } else if (is_gate) {
                // nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
                const double u = lb_rng_uniform_f64(seed, stream, (uint64_t)i);
                v = (2 * u - 1) / sqrt(hs);
            } else if (is_ln) {
                v = 1;
            } else if (is_bias) {
                v = 0;
            } else {
                // Box-Muller from two uniforms; 1 - u1 is in (0, 1]
                const double u1 = 1.0 - lb_rng_uniform_f64(seed, stream, 2 * (uint64_t)i);
                const double u2 = lb_rng_uniform_f64(seed, stream, 2 * (uint64_t)i + 1);
                v = (double)c->init_std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
            }
            p[i] = (float)v;
        }
    }
    return LB_OK;
}

/* ------------------------------------------------------------------ forward */

#define PARAM(off) (m->params + (off))
#define GRAD(off) (m->grads + (off))

static lb_status linear_fwd(lb_ctx *ctx, lb_model *m, lb_linear_role role, int layer, float *out,
                            const float *inp, int64_t w_off, int64_t b_off, int64_t N, int64_t C,
                            int64_t OC)
{
    const lb_linear_site site = {role, layer, m->step, m->training};
    return m->recipe->linear_forward(m->recipe, ctx, m->be, &site, out, inp, PARAM(w_off),
                                     b_off >= 0 ? PARAM(b_off) : NULL, N, C, OC);
}

static lb_status linear_bwd(lb_ctx *ctx, lb_model *m, lb_linear_role role, int layer,
                            float *dinp, const float *dout, const float *inp, int64_t w_off,
                            int64_t b_off, int64_t N, int64_t C, int64_t OC)
{
    const lb_linear_site site = {role, layer, m->step, m->training};
    return m->recipe->linear_backward(m->recipe, ctx, m->be, &site, dinp, GRAD(w_off),
                                      b_off >= 0 ? GRAD(b_off) : NULL, dout, inp, PARAM(w_off),
                                      N, C, OC);
}

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

static lb_attention_shape attention_shape(const lb_model *m, int64_t B, int64_t T)
{
    const lb_model_config *c = &m->cfg;
    lb_attention_shape s = {B, T, c->d_model, c->n_head, c->kind == LB_MODEL_GPT,
                            c->attention == LB_ATTENTION_CLIPPED,
                            c->attention == LB_ATTENTION_GATED, c->clip_gamma, c->clip_zeta};
    if (!s.clipped) s.gamma = 0, s.zeta = 1;
    return s;
}

/* Calls the observer (if any) on the (B, T, width) activation x of a site. */
static lb_status tap(lb_ctx *ctx, lb_model *m, lb_model_tap_site site, int layer, float *x,
                     int64_t width)
{
    if (!m->observer) return LB_OK;
    const lb_model_tap t = {site, layer, x, 3, {m->B, m->T, width, 1}, m->batch.attention_mask,
                            m->training};
    return m->observer(m->observer_user, ctx, &t);
}

/* The input of block l: the embedding output or the previous block's output. */
static float *block_input(lb_model *m, int l)
{
    const int post_ln = m->cfg.kind == LB_MODEL_BERT;
    if (l == 0) return m->cfg.embed_ln ? m->emb_ln : m->emb;
    return post_ln ? m->acts[l - 1].ln2 : m->acts[l - 1].res2;
}

static float *block_output(lb_model *m, int l)
{
    return m->cfg.kind == LB_MODEL_BERT ? m->acts[l].ln2 : m->acts[l].res2;
}

/* vit: images (B, H, W) -> patches (B, NP, PP); patch (py, px) is row
 * py * side + px, its pixels in (dy, dx) row-major order (the order of a
 * Conv2d(1, C, P, stride P) weight flattened to (C, P*P)). */
static void patchify(const lb_model *m, const float *images, int64_t B, float *patches)
{
    const int64_t H = m->cfg.image_size, P = m->cfg.patch_size, side = H / P;
    for (int64_t b = 0; b < B; b++)
        for (int64_t py = 0; py < side; py++)
            for (int64_t px = 0; px < side; px++) {
                float *dst = patches + ((b * side + py) * side + px) * P * P;
                for (int64_t dy = 0; dy < P; dy++)
                    memcpy(dst + dy * P, images + (b * H + py * P + dy) * H + px * P,
                           (size_t)P * sizeof(float));
            }
}

/* Embeddings -> m->emb (B, T, C) (+ embedding LayerNorm). */
static lb_status embed_forward(lb_ctx *ctx, lb_model *m)
{
    const lb_model_config *c = &m->cfg;
    const lb_backend *be = m->be;
    const lb_model_batch *in = &m->batch;
    const int64_t B = m->B, T = m->T, N = B * T, C = c->d_model;
    if (c->kind == LB_MODEL_VIT) {
        const int64_t side = c->image_size / c->patch_size, NP = side * side;
        const int64_t PP = (int64_t)c->patch_size * c->patch_size;
        patchify(m, in->images, B, m->patches);
        // patch_out (B*NP, C) = patches (B*NP, PP) . patch_w^T + patch_b
        TRY(linear_fwd(ctx, m, LB_LINEAR_PATCH, -1, m->patch_out, m->patches, m->patch_w,
                       m->patch_b, B * NP, PP, C));
        // emb[b] = [cls; patch_out[b]] + pos
        for (int64_t b = 0; b < B; b++) {
            float *e = m->emb + b * T * C;
            if (c->cls_token) memcpy(e, PARAM(m->cls), (size_t)C * sizeof(float));
            memcpy(e + c->cls_token * C, m->patch_out + b * NP * C,
                   (size_t)(NP * C) * sizeof(float));
        }
        be->add_broadcast(m->emb, PARAM(m->pos), B, T * C);
    } else {
        // emb (N, C) = wte[tokens] + wpe[t] (+ wtt[types])
        be->embedding_forward(m->emb, in->tokens, PARAM(m->wte), N, C);
        be->add_broadcast(m->emb, PARAM(m->wpe), B, T * C);
        if (c->kind == LB_MODEL_BERT) {
            const int32_t *types = in->token_types ? in->token_types : m->zero_ids;
            be->embedding_forward(m->lin_out, types, PARAM(m->wtt), N, C);
            be->add(m->emb, m->emb, m->lin_out, N * C);
        }
    }
    TRY(tap(ctx, m, LB_TAP_EMBED, -1, m->emb, C));
    if (c->embed_ln) {
        be->layernorm_forward(m->emb_ln, m->emb_mean, m->emb_rstd, m->emb, PARAM(m->emb_ln_w),
                              PARAM(m->emb_ln_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_EMBED_LN, -1, m->emb_ln, C));
    }
    return LB_OK;
}

static lb_status block_forward(lb_ctx *ctx, lb_model *m, int l)
{
    const lb_model_config *c = &m->cfg;
    const lb_backend *be = m->be;
    const block_off *p = &m->blocks[l];
    block_acts *a = &m->acts[l];
    const int64_t B = m->B, T = m->T, N = B * T, C = c->d_model, F = c->d_ff;
    const int post_ln = c->kind == LB_MODEL_BERT;
    const lb_attention_shape s = attention_shape(m, B, T);
    const uint8_t *mask = m->batch.attention_mask;
    float *x = block_input(m, l); // (N, C)

    // attention input: pre-LN a = LN1(x); post-LN the block input itself
    const float *att_in = x;
    if (!post_ln) {
        be->layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, PARAM(p->ln1_w),
                              PARAM(p->ln1_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_LN1, l, a->ln1, C));
        att_in = a->ln1;
    }
    TRY(linear_fwd(ctx, m, LB_LINEAR_QKV, l, a->qkv, att_in, p->qkv_w, p->qkv_b, N, C, 3 * C));
    TRY(tap(ctx, m, LB_TAP_QKV, l, a->qkv, 3 * C));
    be->attention_forward(a->att_out, a->att_probs, a->att_ctx, a->att_gate, a->qkv, mask, att_in,
                          s.gated ? PARAM(p->gate_w) : NULL, s.gated ? PARAM(p->gate_b) : NULL,
                          &s);
    if (m->observer) {
        lb_model_tap t = {LB_TAP_ATTN_PROBS, l, a->att_probs, 4, {B, c->n_head, T, T}, mask,
                          m->training};
        TRY(m->observer(m->observer_user, ctx, &t));
        if (s.gated) {
            lb_model_tap g = {LB_TAP_ATTN_GATE, l, a->att_gate, 3, {B, c->n_head, T, 1}, mask,
                              m->training};
            TRY(m->observer(m->observer_user, ctx, &g));
        }
    }
    TRY(tap(ctx, m, LB_TAP_ATTN_OUT, l, a->att_out, C));
    TRY(linear_fwd(ctx, m, LB_LINEAR_PROJ, l, m->lin_out, a->att_out, p->proj_w, p->proj_b, N, C,
                   C));
    TRY(tap(ctx, m, LB_TAP_PROJ_OUT, l, m->lin_out, C));
    be->add(a->res1, x, m->lin_out, N * C); // res1 = x + proj
    TRY(tap(ctx, m, LB_TAP_RES1, l, a->res1, C));

    // MLP input: pre-LN b = LN2(res1); post-LN x1 = LN1(res1)
    const float *mlp_in;
    if (!post_ln) {
        be->layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, PARAM(p->ln2_w),
                              PARAM(p->ln2_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_LN2, l, a->ln2, C));
        mlp_in = a->ln2;
    } else {
        be->layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->res1, PARAM(p->ln1_w),
                              PARAM(p->ln1_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_LN1, l, a->ln1, C));
        mlp_in = a->ln1;
    }
    TRY(linear_fwd(ctx, m, LB_LINEAR_FC1, l, a->fc1, mlp_in, p->fc1_w, p->fc1_b, N, C, F));
    be->gelu_forward(a->gelu, a->fc1, N * F);
    TRY(tap(ctx, m, LB_TAP_GELU, l, a->gelu, F));
    TRY(linear_fwd(ctx, m, LB_LINEAR_FC2, l, m->lin_out, a->gelu, p->fc2_w, p->fc2_b, N, F, C));
    TRY(tap(ctx, m, LB_TAP_FC2_OUT, l, m->lin_out, C));
    // res2 = res1 + fc2 (pre-LN) or ln1 + fc2 (post-LN: the residual is the LN output)
    be->add(a->res2, post_ln ? a->ln1 : a->res1, m->lin_out, N * C);
    TRY(tap(ctx, m, LB_TAP_RES2, l, a->res2, C));
    if (post_ln) {
        be->layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, PARAM(p->ln2_w),
                              PARAM(p->ln2_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_LN2, l, a->ln2, C));
    }
    return LB_OK;
}

/* Final LayerNorm, pooling and head -> logits (rows, cols). */
static lb_status head_forward(lb_ctx *ctx, lb_model *m)
{
    const lb_model_config *c = &m->cfg;
    const lb_backend *be = m->be;
    const int64_t B = m->B, T = m->T, N = B * T, C = c->d_model;
    float *h = block_output(m, c->n_layer - 1); // (N, C)
    if (c->kind == LB_MODEL_VIT) {
        be->layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, h, PARAM(m->lnf_w),
                              PARAM(m->lnf_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_FINAL_LN, -1, m->lnf, C));
        if (c->cls_token) {
            for (int64_t b = 0; b < B; b++)
                memcpy(m->pooled + b * C, m->lnf + b * T * C, (size_t)C * sizeof(float));
        } else {
            be->meanpool_forward(m->pooled, m->lnf, NULL, B, T, C);
        }
        // logits (B, K) = pooled . head_w^T + head_b
        TRY(linear_fwd(ctx, m, LB_LINEAR_HEAD, -1, m->logits, m->pooled, m->head_w, m->head_b, B,
                       C, c->n_classes));
    } else if (c->kind == LB_MODEL_GPT) {
        be->layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, h, PARAM(m->lnf_w),
                              PARAM(m->lnf_b), N, C, c->ln_eps);
        TRY(tap(ctx, m, LB_TAP_FINAL_LN, -1, m->lnf, C));
        if (m->no_head) return LB_OK;
        // logits (N, V) = lnf . W^T, W = wte (tied) or lm_head
        TRY(linear_fwd(ctx, m, LB_LINEAR_LM, -1, m->logits, m->lnf,
                       c->tied_embeddings ? m->wte : m->lm_w, -1, N, C, c->vocab_size));
    } else {
        be->meanpool_forward(m->pooled, h, m->batch.attention_mask, B, T, C);
        if (m->no_head) return LB_OK;
        // MLM logits (N, V) = h . wte^T + mlm_bias
        TRY(linear_fwd(ctx, m, LB_LINEAR_LM, -1, m->logits, h, m->wte, m->mlm_b, N, C,
                       c->vocab_size));
    }
    return LB_OK;
}

/* Validates a batch against the model. */
static lb_status check_batch(lb_ctx *ctx, const lb_model *m, const lb_model_batch *in)
{
    const lb_model_config *c = &m->cfg;
    if (!in) return lb_error(ctx, LB_ERR_ARG, "forward: NULL batch");
    if (in->B < 1 || in->B > m->max_B)
        return lb_error(ctx, LB_ERR_ARG, "forward: batch size %lld not in 1..%lld",
                        (long long)in->B, (long long)m->max_B);
    if (c->kind == LB_MODEL_VIT) {
        if (!in->images) return lb_error(ctx, LB_ERR_ARG, "forward: vit needs images");
        if (in->targets)
            for (int64_t b = 0; b < in->B; b++)
                if (in->targets[b] >= c->n_classes || in->targets[b] < -1)
                    return lb_error(ctx, LB_ERR_ARG, "forward: label %d of example %lld not in "
                                    "0..%d", in->targets[b], (long long)b, c->n_classes - 1);
        return LB_OK;
    }
    if (in->T < 1 || in->T > m->max_T)
        return lb_error(ctx, LB_ERR_ARG, "forward: sequence length %lld not in 1..%lld",
                        (long long)in->T, (long long)m->max_T);
    if (m->no_head && in->targets)
        return lb_error(ctx, LB_ERR_ARG, "forward: a model without head takes no targets");
    if (!in->tokens) return lb_error(ctx, LB_ERR_ARG, "forward: %s needs tokens",
                                     lb_model_kind_name(c->kind));
    const int64_t N = in->B * in->T;
    for (int64_t n = 0; n < N; n++) {
        if (in->tokens[n] < 0 || in->tokens[n] >= c->vocab_size)
            return lb_error(ctx, LB_ERR_ARG, "forward: token %d at %lld not in 0..%d",
                            in->tokens[n], (long long)n, c->vocab_size - 1);
        if (in->targets && (in->targets[n] < -1 || in->targets[n] >= c->vocab_size))
            return lb_error(ctx, LB_ERR_ARG, "forward: target %d at %lld not in -1..%d",
                            in->targets[n], (long long)n, c->vocab_size - 1);
        if (in->token_types &&
            (in->token_types[n] < 0 || in->token_types[n] >= c->type_vocab_size))
            return lb_error(ctx, LB_ERR_ARG, "forward: token type %d at %lld not in 0..%d",
                            in->token_types[n], (long long)n, c->type_vocab_size - 1);
    }
    if (c->kind == LB_MODEL_GPT && (in->token_types || in->attention_mask))
        return lb_error(ctx, LB_ERR_ARG, "forward: gpt takes no token types or attention mask");
    return LB_OK;
}

lb_status lb_model_forward(lb_ctx *ctx, lb_model *m, const lb_model_batch *batch, int training,
                           int64_t step, double *loss)
{
    if (!m) return lb_error(ctx, LB_ERR_ARG, "forward: NULL model");
    TRY(check_batch(ctx, m, batch));
    const lb_model_config *c = &m->cfg;
    m->batch = *batch;
    m->B = batch->B;
    m->T = c->kind == LB_MODEL_VIT ? c->max_seq_len : batch->T;
    m->rows = c->kind == LB_MODEL_VIT ? m->B : m->no_head ? 0 : m->B * m->T;
    m->cols = c->kind == LB_MODEL_VIT ? c->n_classes : c->vocab_size;
    m->training = training;
    m->step = step;
    m->have_forward = 0;

    TRY(embed_forward(ctx, m));
    for (int l = 0; l < c->n_layer; l++) TRY(block_forward(ctx, m, l));
    TRY(head_forward(ctx, m));

    // loss: mean cross-entropy over the rows with a target
    m->n_targets = 0;
    double total = 0;
    if (batch->targets && !m->no_head) {
        m->be->crossentropy_forward(m->losses, m->probs, m->logits, batch->targets, m->rows,
                                    m->cols);
        for (int64_t r = 0; r < m->rows; r++) {
            if (batch->targets[r] < 0) continue;
            total += (double)m->losses[r];
            m->n_targets++;
        }
    }
    if (loss) *loss = m->n_targets > 0 ? total / (double)m->n_targets : 0.0;
    m->have_forward = 1;
    return LB_OK;
}

/* ----------------------------------------------------------------- backward */

/* d_res holds dL/d(block output); on return dL/d(block input). */
static lb_status block_backward(lb_ctx *ctx, lb_model *m, int l)
{
    const lb_model_config *c = &m->cfg;
    const lb_backend *be = m->be;
    const block_off *p = &m->blocks[l];
    const block_acts *a = &m->acts[l];
    const int64_t B = m->B, T = m->T, N = B * T, C = c->d_model, F = c->d_ff;
    const lb_attention_shape s = attention_shape(m, B, T);
    const uint8_t *mask = m->batch.attention_mask;
    const size_t nc = (size_t)(N * C) * sizeof(float), nf = (size_t)(N * F) * sizeof(float);
    float *x = block_input(m, l);
    float *d_res = m->d_res, *d1 = m->d_buf1, *d2 = m->d_buf2;
    float *gate_w = s.gated ? PARAM(p->gate_w) : NULL;
    float *dgate_w = s.gated ? GRAD(p->gate_w) : NULL, *dgate_b = s.gated ? GRAD(p->gate_b) : NULL;

    if (c->kind != LB_MODEL_BERT) {
        // pre-LN. d_res = dL/d res2; res2 = res1 + fc2(gelu(fc1(ln2)))
        memset(m->d_ff2, 0, nf);
        TRY(linear_bwd(ctx, m, LB_LINEAR_FC2, l, m->d_ff2, d_res, a->gelu, p->fc2_w, p->fc2_b, N,
                       F, C));
        memset(m->d_ff1, 0, nf);
        be->gelu_backward(m->d_ff1, a->fc1, m->d_ff2, N * F);
        memset(d1, 0, nc);
        TRY(linear_bwd(ctx, m, LB_LINEAR_FC1, l, d1, m->d_ff1, a->ln2, p->fc1_w, p->fc1_b, N, C,
                       F));
        // d res1 = d res2 + LN2 backward (accumulated into d_res)
        be->layernorm_backward(d_res, GRAD(p->ln2_w), GRAD(p->ln2_b), d1, a->res1,
                               PARAM(p->ln2_w), a->ln2_mean, a->ln2_rstd, N, C);
        // res1 = x + proj(att_out)
        memset(d1, 0, nc);
        TRY(linear_bwd(ctx, m, LB_LINEAR_PROJ, l, d1, d_res, a->att_out, p->proj_w, p->proj_b, N,
                       C, C));
        memset(m->d_qkv, 0, (size_t)(N * 3 * C) * sizeof(float));
        memset(d2, 0, nc); // d ln1: from the gate and from qkv
        be->attention_backward(m->d_qkv, d2, dgate_w, dgate_b, m->d_att_scratch, d1, a->qkv,
                               a->att_probs, a->att_ctx, a->att_gate, mask, a->ln1, gate_w, &s);
        TRY(linear_bwd(ctx, m, LB_LINEAR_QKV, l, d2, m->d_qkv, a->ln1, p->qkv_w, p->qkv_b, N, C,
                       3 * C));
        // d x = d res1 + LN1 backward
        be->layernorm_backward(d_res, GRAD(p->ln1_w), GRAD(p->ln1_b), d2, x, PARAM(p->ln1_w),
                               a->ln1_mean, a->ln1_rstd, N, C);
    } else {
        // post-LN. d_res = dL/d ln2 (the block output)
        memset(d1, 0, nc); // d res2
        be->layernorm_backward(d1, GRAD(p->ln2_w), GRAD(p->ln2_b), d_res, a->res2,
                               PARAM(p->ln2_w), a->ln2_mean, a->ln2_rstd, N, C);
        // res2 = ln1 + fc2(gelu(fc1(ln1)))
        memset(m->d_ff2, 0, nf);
        TRY(linear_bwd(ctx, m, LB_LINEAR_FC2, l, m->d_ff2, d1, a->gelu, p->fc2_w, p->fc2_b, N, F,
                       C));
        memset(m->d_ff1, 0, nf);
        be->gelu_backward(m->d_ff1, a->fc1, m->d_ff2, N * F);
        memcpy(d2, d1, nc); // d ln1 = d res2 (residual) + fc1 path
        TRY(linear_bwd(ctx, m, LB_LINEAR_FC1, l, d2, m->d_ff1, a->ln1, p->fc1_w, p->fc1_b, N, C,
                       F));
        memset(d1, 0, nc); // d res1
        be->layernorm_backward(d1, GRAD(p->ln1_w), GRAD(p->ln1_b), d2, a->res1, PARAM(p->ln1_w),
                               a->ln1_mean, a->ln1_rstd, N, C);
        // res1 = x + proj(att_out)
        memset(d2, 0, nc);
        TRY(linear_bwd(ctx, m, LB_LINEAR_PROJ, l, d2, d1, a->att_out, p->proj_w, p->proj_b, N, C,
                       C));
        memcpy(d_res, d1, nc); // d x = d res1 (residual) + gate + qkv paths
        memset(m->d_qkv, 0, (size_t)(N * 3 * C) * sizeof(float));
        be->attention_backward(m->d_qkv, d_res, dgate_w, dgate_b, m->d_att_scratch, d2, a->qkv,
                               a->att_probs, a->att_ctx, a->att_gate, mask, x, gate_w, &s);
        TRY(linear_bwd(ctx, m, LB_LINEAR_QKV, l, d_res, m->d_qkv, x, p->qkv_w, p->qkv_b, N, C,
                       3 * C));
    }
    return LB_OK;
}

lb_status lb_model_backward(lb_ctx *ctx, lb_model *m)
{
    if (!m) return lb_error(ctx, LB_ERR_ARG, "backward: NULL model");
    if (m->no_head) return lb_error(ctx, LB_ERR_ARG, "backward: the model has no head");
    if (!m->have_forward || !m->batch.targets)
        return lb_error(ctx, LB_ERR_ARG, "backward: no forward pass with targets to differentiate");
    const lb_model_config *c = &m->cfg;
    const lb_backend *be = m->be;
    const int64_t B = m->B, T = m->T, N = B * T, C = c->d_model;
    const size_t nc = (size_t)(N * C) * sizeof(float);
    const float *h = block_output(m, c->n_layer - 1);

    // d logits = (probs - onehot) / n_targets
    memset(m->d_logits, 0, (size_t)(m->rows * m->cols) * sizeof(float));
    if (m->n_targets > 0)
        be->crossentropy_backward(m->d_logits, m->probs, m->batch.targets, m->rows, m->cols,
                                  1.0f / (float)m->n_targets);

    // head -> d_res = dL/d(last block output)
    memset(m->d_res, 0, nc);
    if (c->kind == LB_MODEL_VIT) {
        memset(m->d_pooled, 0, (size_t)(B * C) * sizeof(float));
        TRY(linear_bwd(ctx, m, LB_LINEAR_HEAD, -1, m->d_pooled, m->d_logits, m->pooled, m->head_w,
                       m->head_b, B, C, c->n_classes));
        memset(m->d_buf1, 0, nc); // d lnf
        if (c->cls_token) {
            for (int64_t b = 0; b < B; b++)
                memcpy(m->d_buf1 + b * T * C, m->d_pooled + b * C, (size_t)C * sizeof(float));
        } else {
            be->meanpool_backward(m->d_buf1, m->d_pooled, NULL, B, T, C);
        }
        be->layernorm_backward(m->d_res, GRAD(m->lnf_w), GRAD(m->lnf_b), m->d_buf1, h,
                               PARAM(m->lnf_w), m->lnf_mean, m->lnf_rstd, N, C);
    } else if (c->kind == LB_MODEL_GPT) {
        memset(m->d_buf1, 0, nc); // d lnf
        TRY(linear_bwd(ctx, m, LB_LINEAR_LM, -1, m->d_buf1, m->d_logits, m->lnf,
                       c->tied_embeddings ? m->wte : m->lm_w, -1, N, C, c->vocab_size));
        be->layernorm_backward(m->d_res, GRAD(m->lnf_w), GRAD(m->lnf_b), m->d_buf1, h,
                               PARAM(m->lnf_w), m->lnf_mean, m->lnf_rstd, N, C);
    } else {
        TRY(linear_bwd(ctx, m, LB_LINEAR_LM, -1, m->d_res, m->d_logits, h, m->wte, m->mlm_b, N, C,
                       c->vocab_size));
    }

    for (int l = c->n_layer - 1; l >= 0; l--) TRY(block_backward(ctx, m, l));

    // embeddings: d_res = dL/d(embedding output)
    float *d_emb = m->d_res;
    if (c->embed_ln) {
        memset(m->d_buf1, 0, nc);
        be->layernorm_backward(m->d_buf1, GRAD(m->emb_ln_w), GRAD(m->emb_ln_b), m->d_res, m->emb,
                               PARAM(m->emb_ln_w), m->emb_mean, m->emb_rstd, N, C);
        d_emb = m->d_buf1;
    }
    if (c->kind == LB_MODEL_VIT) {
        const int64_t side = c->image_size / c->patch_size, NP = side * side;
        const int64_t PP = (int64_t)c->patch_size * c->patch_size;
        be->sum_rows(GRAD(m->pos), d_emb, B, T * C);
        if (c->cls_token)
            for (int64_t b = 0; b < B; b++) be->sum_rows(GRAD(m->cls), d_emb + b * T * C, 1, C);
        // gather the patch rows (B*NP, C); no gradient to the images
        for (int64_t b = 0; b < B; b++)
            memcpy(m->patch_out + b * NP * C, d_emb + (b * T + c->cls_token) * C,
                   (size_t)(NP * C) * sizeof(float));
        TRY(linear_bwd(ctx, m, LB_LINEAR_PATCH, -1, NULL, m->patch_out, m->patches, m->patch_w,
                       m->patch_b, B * NP, PP, C));
    } else {
        be->embedding_backward(GRAD(m->wte), d_emb, m->batch.tokens, N, C);
        be->sum_rows(GRAD(m->wpe), d_emb, B, T * C);
        if (c->kind == LB_MODEL_BERT)
            be->embedding_backward(GRAD(m->wtt), d_emb,
                                   m->batch.token_types ? m->batch.token_types : m->zero_ids, N,
                                   C);
    }
    return LB_OK;
}

/* ------------------------------------------------------------------ outputs */

const float *lb_model_logits(const lb_model *m, int64_t *rows, int64_t *cols)
{
    if (rows) *rows = m->rows;
    if (cols) *cols = m->cols;
    return m->logits;
}

const float *lb_model_pooled(const lb_model *m) { return m->pooled; }
const float *lb_model_row_losses(const lb_model *m) { return m->losses; }

/* --------------------------------------------------------------- generation */

lb_status lb_model_generate(lb_ctx *ctx, lb_model *m, const int32_t *prompt, int64_t n_prompt,
                            int64_t n_new, float temperature, int top_k, uint64_t seed,
                            int32_t *out)
{
    if (!m || !prompt || (n_new > 0 && !out))
        return lb_error(ctx, LB_ERR_ARG, "generate: NULL argument");
    const lb_model_config *c = &m->cfg;
    if (c->kind != LB_MODEL_GPT || m->no_head)
        return lb_error(ctx, LB_ERR_ARG, "generate: needs a gpt model with its head, not %s",
                        lb_model_kind_name(c->kind));
    if (n_prompt < 1 || n_new < 0 || !(temperature >= 0) || !isfinite(temperature))
        return lb_error(ctx, LB_ERR_ARG, "generate: need a prompt, n_new >= 0, temperature >= 0");
    const int64_t Tmax = m->max_T, V = c->vocab_size;
    const int64_t total = n_prompt + n_new;
    int32_t *seq = lb_alloc((size_t)total * sizeof(int32_t));
    double *weights = lb_alloc((size_t)V * sizeof(double));
    int32_t *order = lb_alloc((size_t)V * sizeof(int32_t));
    if (!seq || !weights || !order) {
        lb_free(seq), lb_free(weights), lb_free(order);
        return lb_error(ctx, LB_ERR_NOMEM, "generate: out of memory");
    }
    memcpy(seq, prompt, (size_t)n_prompt * sizeof(int32_t));
    const uint64_t stream = lb_rng_stream("generate", 0);
    lb_status st = LB_OK;
    for (int64_t i = 0; i < n_new; i++) {
        const int64_t len = n_prompt + i, T = len < Tmax ? len : Tmax;
        lb_model_batch b = {.B = 1, .T = T, .tokens = seq + len - T};
        st = lb_model_forward(ctx, m, &b, 0, 0, NULL);
        if (st != LB_OK) break;
        const float *logit = m->logits + (T - 1) * V; // (V) at the last position
        int32_t next = 0;
        for (int64_t v = 1; v < V; v++)
            if (logit[v] > logit[next]) next = (int32_t)v;
        if (temperature > 0) {
            // top-k by repeated selection (V is small for byte models)
            const int64_t k = top_k > 0 && top_k < V ? top_k : V;
            for (int64_t v = 0; v < V; v++) order[v] = (int32_t)v;
            for (int64_t a = 0; a < k; a++) {
                int64_t best = a;
                for (int64_t j = a + 1; j < V; j++)
                    if (logit[order[j]] > logit[order[best]]) best = j;
                const int32_t tmp = order[a];
                order[a] = order[best];
                order[best] = tmp;
            }
            double sum = 0;
            for (int64_t a = 0; a < k; a++) {
                weights[a] = exp(((double)logit[order[a]] - (double)logit[order[0]]) /
                                 (double)temperature);
                sum += weights[a];
            }
            const double u = lb_rng_uniform_f64(seed, stream, (uint64_t)i) * sum;
            double acc = 0;
            next = order[k - 1];
            for (int64_t a = 0; a < k; a++) {
                acc += weights[a];
                if (u < acc) {
                    next = order[a];
                    break;
                }
            }
        }
        seq[len] = next;
        out[i] = next;
    }
    lb_free(seq), lb_free(weights), lb_free(order);
    return st;
}

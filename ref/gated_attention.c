/* ref/gated_attention.c — the gate of gated attention (Bondarenko et al. 2023,
 * "Quantizable Transformers", eq. 5-7; spec outlier_free_attention_and_w8a8.md
 * §2.1-§2.4): gate = scale · sigmoid(G(x)) per token and head, its product
 * with the attention context, and both backward passes (spec §2.4, extended
 * to the MLP and all-heads parameterisations of §2.2).
 *
 * Leaves out: Q/K/V, the softmax and the output projection (callers do them;
 * see lowbit/ref/clipped_softmax.h), weight initialisation other than the
 * bias formula (callers draw weights; spec §2.3), and the activation
 * regulariser of the fine-tuning recipe (not in the authors' code).
 *
 * Shapes: x (tokens, H·dh); gate, dgate (tokens, H); context (tokens, H·dh);
 * parameters as in lowbit/ref/gated_attention.h. The arithmetic order is the
 * contract written there. The float entry points convert the parameters to
 * double once per call and each token's features as it is used, so that both
 * precisions run the same double code.
 */
#include "config.h"
#include "lowbit/ref/gated_attention.h"
#include "lowbit/alloc.h"

#include <math.h>
#include <string.h>

/* ---- precision views ---------------------------------------------------- */

/* Read-only float or double array (exactly one pointer non-NULL, or both NULL
 * for an absent array). */
typedef struct in_vec {
    const float *f32;
    const double *f64;
} in_vec;

typedef struct out_vec {
    float *f32;
    double *f64;
} out_vec;

static inline int in_present(in_vec v) { return v.f32 || v.f64; }
static inline int out_present(out_vec v) { return v.f32 || v.f64; }
static inline double in_at(in_vec v, int64_t i) { return v.f32 ? (double)v.f32[i] : v.f64[i]; }

static inline void out_set(out_vec v, int64_t i, double x)
{
    if (v.f32)
        v.f32[i] = (float)x;
    else
        v.f64[i] = x;
}

/* v[i] += x with one rounding to the array's type. */
static inline void out_add(out_vec v, int64_t i, double x)
{
    if (v.f32)
        v.f32[i] = (float)((double)v.f32[i] + x);
    else
        v.f64[i] = v.f64[i] + x;
}

/* Token t's d features as doubles: a pointer into a double array, or the
 * float features widened into buf (d). */
static const double *load_token(in_vec x, int64_t t, int64_t d, double *buf)
{
    if (x.f64) return x.f64 + t * d;
    for (int64_t k = 0; k < d; k++) buf[k] = (double)x.f32[t * d + k];
    return buf;
}

/* ---- configuration ------------------------------------------------------ */

const char *lb_gate_kind_name(lb_gate_kind kind)
{
    switch (kind) {
    case LB_GATE_LINEAR: return "linear";
    case LB_GATE_MLP: return "mlp";
    case LB_GATE_ALL_HEADS: return "all-heads";
    case LB_GATE_UNCONDITIONAL: return "unconditional";
    }
    return NULL;
}

lb_gate_config lb_gate_config_default(lb_gate_kind kind, int64_t n_heads, int64_t d_head)
{
    lb_gate_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.pool = LB_GATE_PER_TOKEN;
    c.n_heads = n_heads;
    c.d_head = d_head;
    c.n_hidden = d_head / 4 > 1 ? d_head / 4 : 1;
    c.seq_len = 0;
    c.scale = 1.0;
    return c;
}

/* Dimensions are capped so that every parameter count and index product
 * fits int64 comfortably (the largest real gate is tiny). */
#define GATE_MAX_DIM ((int64_t)1 << 20)

lb_status lb_gate_config_check(lb_ctx *ctx, const lb_gate_config *cfg)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "gate: NULL config");
    if (!lb_gate_kind_name(cfg->kind))
        return lb_error(ctx, LB_ERR_ARG, "gate: unknown kind %d", (int)cfg->kind);
    if (cfg->pool != LB_GATE_PER_TOKEN && cfg->pool != LB_GATE_PER_SEQUENCE)
        return lb_error(ctx, LB_ERR_ARG, "gate: unknown pooling %d", (int)cfg->pool);
    if (cfg->n_heads < 1 || cfg->n_heads > GATE_MAX_DIM || cfg->d_head < 1 ||
        cfg->d_head > GATE_MAX_DIM)
        return lb_error(ctx, LB_ERR_ARG, "gate: n_heads=%lld and d_head=%lld must be in [1, 2^20]",
                        (long long)cfg->n_heads, (long long)cfg->d_head);
    if (cfg->kind == LB_GATE_MLP && (cfg->n_hidden < 1 || cfg->n_hidden > GATE_MAX_DIM))
        return lb_error(ctx, LB_ERR_ARG, "gate: MLP n_hidden=%lld must be in [1, 2^20]",
                        (long long)cfg->n_hidden);
    if (cfg->pool == LB_GATE_PER_SEQUENCE && cfg->kind != LB_GATE_UNCONDITIONAL &&
        cfg->seq_len < 1)
        return lb_error(ctx, LB_ERR_ARG, "gate: per-sequence pooling needs seq_len >= 1, got %lld",
                        (long long)cfg->seq_len);
    if (!isfinite(cfg->scale) || !(cfg->scale > 0.0))
        return lb_error(ctx, LB_ERR_ARG, "gate: scale=%g must be finite and > 0 (1 normally)",
                        cfg->scale);
    return LB_OK;
}

lb_status lb_gate_param_counts(lb_ctx *ctx, const lb_gate_config *cfg, int64_t counts[4])
{
    lb_status st = lb_gate_config_check(ctx, cfg);
    if (st != LB_OK) return st;
    if (!counts) return lb_error(ctx, LB_ERR_ARG, "gate: NULL counts");
    const int64_t H = cfg->n_heads, dh = cfg->d_head, n = cfg->n_hidden;
    counts[0] = counts[1] = counts[2] = counts[3] = 0;
    switch (cfg->kind) {
    case LB_GATE_LINEAR: counts[0] = H * dh, counts[1] = H; break;
    case LB_GATE_MLP: counts[0] = H * n * dh, counts[1] = H * n, counts[2] = H * n, counts[3] = H; break;
    case LB_GATE_ALL_HEADS: counts[0] = H * H * dh, counts[1] = H; break;
    case LB_GATE_UNCONDITIONAL: counts[1] = H; break;
    }
    return LB_OK;
}

double lb_gate_bias_init(double pi_init)
{
    if (isnan(pi_init)) return pi_init;
    double p = pi_init < 1e-16 ? 1e-16 : (pi_init > 1.0 - 1e-16 ? 1.0 - 1e-16 : pi_init);
    return -log(1.0 / p - 1.0);
}

/* ---- the gate function G ----------------------------------------------- */

/* Stable logistic function (header). */
static double sigmoid(double z)
{
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* Parameters in double, whatever the caller's precision. */
typedef struct gate_params {
    const double *weight, *bias, *weight2, *bias2;
} gate_params;

/* logit_{t,h} for token features xt (H·dh). MLP: pre (n) receives the hidden
 * pre-activations (for the backward). */
static double head_logit(const lb_gate_config *cfg, const gate_params *p, int64_t h,
                         const double *xt, double *pre)
{
    const int64_t dh = cfg->d_head, D = cfg->n_heads * cfg->d_head;
    switch (cfg->kind) {
    case LB_GATE_LINEAR: {
        const double *w = p->weight + h * dh, *v = xt + h * dh;
        double acc = 0.0;
        for (int64_t k = 0; k < dh; k++) acc += w[k] * v[k];
        return acc + p->bias[h];
    }
    case LB_GATE_MLP: {
        const int64_t n = cfg->n_hidden;
        const double *v = xt + h * dh;
        double out = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const double *w = p->weight + (h * n + j) * dh;
            double a = 0.0;
            for (int64_t k = 0; k < dh; k++) a += w[k] * v[k];
            a += p->bias[h * n + j];
            pre[j] = a;
            double r = a < 0.0 ? 0.0 : a; /* relu; NaN passes through */
            out += p->weight2[h * n + j] * r;
        }
        return out + p->bias2[h];
    }
    case LB_GATE_ALL_HEADS: {
        const double *w = p->weight + h * D;
        double acc = 0.0;
        for (int64_t k = 0; k < D; k++) acc += w[k] * xt[k];
        return acc + p->bias[h];
    }
    case LB_GATE_UNCONDITIONAL: return p->bias[h];
    }
    return NAN;
}

/* Accumulates the gradients of logit_{t,h} times dlogit: parameters into g
 * (double accumulators; NULL members skipped) and features into dxt (H·dh;
 * may be NULL). pre is what head_logit stored for this token and head. */
static void head_logit_backward(const lb_gate_config *cfg, const gate_params *p, int64_t h,
                                const double *xt, const double *pre, double dlogit,
                                double *g_w, double *g_b, double *g_w2, double *g_b2, double *dxt)
{
    const int64_t dh = cfg->d_head, D = cfg->n_heads * cfg->d_head;
    switch (cfg->kind) {
    case LB_GATE_LINEAR: {
        const double *w = p->weight + h * dh, *v = xt + h * dh;
        if (g_w)
            for (int64_t k = 0; k < dh; k++) g_w[h * dh + k] += dlogit * v[k];
        if (g_b) g_b[h] += dlogit;
        if (dxt)
            for (int64_t k = 0; k < dh; k++) dxt[h * dh + k] += dlogit * w[k];
        return;
    }
    case LB_GATE_MLP: {
        const int64_t n = cfg->n_hidden;
        const double *v = xt + h * dh;
        if (g_b2) g_b2[h] += dlogit;
        for (int64_t j = 0; j < n; j++) {
            const double a = pre[j];
            const double r = a < 0.0 ? 0.0 : a;
            if (g_w2) g_w2[h * n + j] += dlogit * r;
            /* relu'(a) = 1 for a > 0, else 0 (0 at a = 0, as PyTorch) */
            const double da = a > 0.0 ? dlogit * p->weight2[h * n + j] : 0.0;
            const double *w = p->weight + (h * n + j) * dh;
            if (g_w)
                for (int64_t k = 0; k < dh; k++) g_w[(h * n + j) * dh + k] += da * v[k];
            if (g_b) g_b[h * n + j] += da;
            if (dxt)
                for (int64_t k = 0; k < dh; k++) dxt[h * dh + k] += da * w[k];
        }
        return;
    }
    case LB_GATE_ALL_HEADS: {
        const double *w = p->weight + h * D;
        if (g_w)
            for (int64_t k = 0; k < D; k++) g_w[h * D + k] += dlogit * xt[k];
        if (g_b) g_b[h] += dlogit;
        if (dxt)
            for (int64_t k = 0; k < D; k++) dxt[k] += dlogit * w[k];
        return;
    }
    case LB_GATE_UNCONDITIONAL:
        if (g_b) g_b[h] += dlogit;
        return;
    }
}

/* ---- argument checks and parameter conversion --------------------------- */

static lb_status check_weights(lb_ctx *ctx, const lb_gate_config *cfg, const void *weight,
                               const void *bias, const void *weight2, const void *bias2)
{
    int64_t c[4];
    lb_status st = lb_gate_param_counts(ctx, cfg, c);
    if (st != LB_OK) return st;
    const void *ptr[4] = {weight, bias, weight2, bias2};
    static const char *const names[4] = {"weight", "bias", "weight2", "bias2"};
    for (int i = 0; i < 4; i++)
        if (c[i] > 0 && !ptr[i])
            return lb_error(ctx, LB_ERR_ARG, "gate (%s): NULL %s", lb_gate_kind_name(cfg->kind),
                            names[i]);
    return LB_OK;
}

static lb_status check_tokens(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens)
{
    if (tokens < 0) return lb_error(ctx, LB_ERR_ARG, "gate: negative tokens=%lld", (long long)tokens);
    if (cfg->pool == LB_GATE_PER_SEQUENCE && cfg->kind != LB_GATE_UNCONDITIONAL &&
        tokens % cfg->seq_len != 0)
        return lb_error(ctx, LB_ERR_ARG, "gate: tokens=%lld is not a multiple of seq_len=%lld",
                        (long long)tokens, (long long)cfg->seq_len);
    return LB_OK;
}

/* Working memory of one call: double copies of float parameters, a token
 * buffer, MLP pre-activations, per-head sums and gradient accumulators. */
typedef struct gate_work {
    gate_params p;
    double *owned_params; /* float parameters widened (NULL for double input) */
    double *token;        /* (H·dh) */
    double *dtoken;       /* (H·dh) backward only */
    double *pre;          /* (H, n) MLP pre-activations of one token */
    double *head_sum;     /* (H) per-sequence logit sums */
    double *head_dsum;    /* (H) per-sequence dgate sums */
    double *grad;         /* gradient accumulators, weight | bias | weight2 | bias2 */
    int64_t counts[4];
} gate_work;

static void work_free(gate_work *wk)
{
    lb_free(wk->owned_params);
    lb_free(wk->token);
    lb_free(wk->dtoken);
    lb_free(wk->pre);
    lb_free(wk->head_sum);
    lb_free(wk->head_dsum);
    lb_free(wk->grad);
}

static lb_status work_init(lb_ctx *ctx, const lb_gate_config *cfg, const lb_gate_weights *wf,
                           const lb_gate_weights_f64 *wd, int backward, gate_work *wk)
{
    memset(wk, 0, sizeof *wk);
    lb_status st = lb_gate_param_counts(ctx, cfg, wk->counts);
    if (st != LB_OK) return st;
    const int64_t *c = wk->counts;
    const size_t total = (size_t)(c[0] + c[1] + c[2] + c[3]);
    const size_t D = (size_t)(cfg->n_heads * cfg->d_head), H = (size_t)cfg->n_heads;
    const size_t n = cfg->kind == LB_GATE_MLP ? (size_t)cfg->n_hidden : 1;
    wk->token = lb_alloc(D * sizeof(double));
    wk->pre = lb_alloc(H * n * sizeof(double));
    wk->head_sum = lb_calloc(H, sizeof(double));
    wk->head_dsum = lb_calloc(H, sizeof(double));
    int ok = wk->token && wk->pre && wk->head_sum && wk->head_dsum;
    if (backward) {
        wk->dtoken = lb_alloc(D * sizeof(double));
        wk->grad = lb_calloc(total + 1, sizeof(double));
        ok = ok && wk->dtoken && wk->grad;
    }
    if (wf) {
        wk->owned_params = lb_alloc((total + 1) * sizeof(double));
        ok = ok && wk->owned_params;
        if (ok) {
            const float *src[4] = {wf->weight, wf->bias, wf->weight2, wf->bias2};
            const double *dst[4];
            double *at = wk->owned_params;
            for (int i = 0; i < 4; i++) {
                dst[i] = c[i] > 0 ? at : NULL;
                for (int64_t k = 0; k < c[i]; k++) at[k] = (double)src[i][k];
                at += c[i];
            }
            wk->p.weight = dst[0], wk->p.bias = dst[1], wk->p.weight2 = dst[2], wk->p.bias2 = dst[3];
        }
    } else {
        wk->p.weight = wd->weight, wk->p.bias = wd->bias, wk->p.weight2 = wd->weight2,
        wk->p.bias2 = wd->bias2;
    }
    if (!ok) {
        work_free(wk);
        return lb_error(ctx, LB_ERR_NOMEM, "gate: out of memory for working buffers");
    }
    return LB_OK;
}

/* Gradient accumulator of parameter i (NULL when the caller skips it). */
static double *grad_slot(gate_work *wk, int i, int wanted)
{
    if (!wanted || wk->counts[i] == 0) return NULL;
    int64_t off = 0;
    for (int k = 0; k < i; k++) off += wk->counts[k];
    return wk->grad + off;
}

/* ---- forward ------------------------------------------------------------ */

static lb_status gate_forward(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens, in_vec x,
                              const lb_gate_weights *wf, const lb_gate_weights_f64 *wd,
                              out_vec gate)
{
    lb_status st = lb_gate_config_check(ctx, cfg);
    if (st != LB_OK) return st;
    if ((st = check_tokens(ctx, cfg, tokens)) != LB_OK) return st;
    if (!wf && !wd) return lb_error(ctx, LB_ERR_ARG, "gate: NULL weights");
    st = wf ? check_weights(ctx, cfg, wf->weight, wf->bias, wf->weight2, wf->bias2)
            : check_weights(ctx, cfg, wd->weight, wd->bias, wd->weight2, wd->bias2);
    if (st != LB_OK) return st;
    if (tokens == 0) return LB_OK;
    const int conditional = cfg->kind != LB_GATE_UNCONDITIONAL;
    if (!out_present(gate) || (conditional && !in_present(x)))
        return lb_error(ctx, LB_ERR_ARG, "gate: NULL x or gate");

    gate_work wk;
    if ((st = work_init(ctx, cfg, wf, wd, 0, &wk)) != LB_OK) return st;
    const int64_t H = cfg->n_heads, D = H * cfg->d_head;
    const int64_t n = cfg->kind == LB_GATE_MLP ? cfg->n_hidden : 1;
    if (!conditional || cfg->pool == LB_GATE_PER_TOKEN) {
        for (int64_t t = 0; t < tokens; t++) {
            const double *xt = conditional ? load_token(x, t, D, wk.token) : NULL;
            for (int64_t h = 0; h < H; h++) {
                double z = head_logit(cfg, &wk.p, h, xt, wk.pre + h * n);
                out_set(gate, t * H + h, cfg->scale * sigmoid(z));
            }
        }
    } else {
        const int64_t T = cfg->seq_len;
        for (int64_t s0 = 0; s0 < tokens; s0 += T) {
            for (int64_t h = 0; h < H; h++) wk.head_sum[h] = 0.0;
            for (int64_t t = s0; t < s0 + T; t++) {
                const double *xt = load_token(x, t, D, wk.token);
                for (int64_t h = 0; h < H; h++)
                    wk.head_sum[h] += head_logit(cfg, &wk.p, h, xt, wk.pre + h * n);
            }
            for (int64_t h = 0; h < H; h++) {
                double g = cfg->scale * sigmoid(wk.head_sum[h] / (double)T);
                for (int64_t t = s0; t < s0 + T; t++) out_set(gate, t * H + h, g);
            }
        }
    }
    work_free(&wk);
    return LB_OK;
}

lb_status lb_gate_forward_ref(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                              const float *x, const lb_gate_weights *w, float *gate)
{
    if (!w) return lb_error(ctx, LB_ERR_ARG, "gate: NULL weights");
    in_vec xv = {x, NULL};
    out_vec gv = {gate, NULL};
    return gate_forward(ctx, cfg, tokens, xv, w, NULL, gv);
}

lb_status lb_gate_forward_ref_f64(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                                  const double *x, const lb_gate_weights_f64 *w, double *gate)
{
    if (!w) return lb_error(ctx, LB_ERR_ARG, "gate: NULL weights");
    in_vec xv = {NULL, x};
    out_vec gv = {NULL, gate};
    return gate_forward(ctx, cfg, tokens, xv, NULL, w, gv);
}

/* ---- backward ----------------------------------------------------------- */

/* One token's gradients given dlogit (H) for its heads: parameters into the
 * accumulators, features into dx[t] (added once per element). */
static void token_backward(const lb_gate_config *cfg, gate_work *wk, const int want[4],
                           const double *xt, const double *dlogit, out_vec dx, int64_t t)
{
    const int64_t H = cfg->n_heads, D = H * cfg->d_head;
    const int64_t n = cfg->kind == LB_GATE_MLP ? cfg->n_hidden : 1;
    const int conditional = cfg->kind != LB_GATE_UNCONDITIONAL;
    double *dxt = conditional && out_present(dx) ? wk->dtoken : NULL;
    if (dxt)
        for (int64_t k = 0; k < D; k++) dxt[k] = 0.0;
    for (int64_t h = 0; h < H; h++) {
        if (cfg->kind == LB_GATE_MLP) (void)head_logit(cfg, &wk->p, h, xt, wk->pre + h * n);
        head_logit_backward(cfg, &wk->p, h, xt, wk->pre + h * n, dlogit[h],
                            grad_slot(wk, 0, want[0]), grad_slot(wk, 1, want[1]),
                            grad_slot(wk, 2, want[2]), grad_slot(wk, 3, want[3]), dxt);
    }
    if (dxt)
        for (int64_t k = 0; k < D; k++) out_add(dx, t * D + k, dxt[k]);
}

static lb_status gate_backward(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens, in_vec x,
                               const lb_gate_weights *wf, const lb_gate_weights_f64 *wd,
                               in_vec dgate, out_vec dx, out_vec gw, out_vec gb, out_vec gw2,
                               out_vec gb2)
{
    lb_status st = lb_gate_config_check(ctx, cfg);
    if (st != LB_OK) return st;
    if ((st = check_tokens(ctx, cfg, tokens)) != LB_OK) return st;
    if (!wf && !wd) return lb_error(ctx, LB_ERR_ARG, "gate backward: NULL weights");
    st = wf ? check_weights(ctx, cfg, wf->weight, wf->bias, wf->weight2, wf->bias2)
            : check_weights(ctx, cfg, wd->weight, wd->bias, wd->weight2, wd->bias2);
    if (st != LB_OK) return st;
    if (tokens == 0) return LB_OK;
    const int conditional = cfg->kind != LB_GATE_UNCONDITIONAL;
    if (!in_present(dgate) || (conditional && !in_present(x)))
        return lb_error(ctx, LB_ERR_ARG, "gate backward: NULL x or dgate");

    gate_work wk;
    if ((st = work_init(ctx, cfg, wf, wd, 1, &wk)) != LB_OK) return st;
    const int want[4] = {out_present(gw), out_present(gb), out_present(gw2), out_present(gb2)};
    const int64_t H = cfg->n_heads, D = H * cfg->d_head;
    const int64_t n = cfg->kind == LB_GATE_MLP ? cfg->n_hidden : 1;
    double *dlogit = wk.head_dsum; /* (H) per token or sequence */

    if (!conditional || cfg->pool == LB_GATE_PER_TOKEN) {
        for (int64_t t = 0; t < tokens; t++) {
            const double *xt = conditional ? load_token(x, t, D, wk.token) : NULL;
            for (int64_t h = 0; h < H; h++) {
                double sg = sigmoid(head_logit(cfg, &wk.p, h, xt, wk.pre + h * n));
                dlogit[h] = cfg->scale * (sg * (1.0 - sg)) * in_at(dgate, t * H + h);
            }
            token_backward(cfg, &wk, want, xt, dlogit, dx, t);
        }
    } else {
        const int64_t T = cfg->seq_len;
        for (int64_t s0 = 0; s0 < tokens; s0 += T) {
            /* pass 1: the pooled logit and the summed upstream gradient
             * (dsum shares its storage with dlogit: element h is read just
             * before it is overwritten below) */
            double *dsum = wk.head_dsum;
            for (int64_t h = 0; h < H; h++) wk.head_sum[h] = 0.0, dsum[h] = 0.0;
            for (int64_t t = s0; t < s0 + T; t++) {
                const double *xt = load_token(x, t, D, wk.token);
                for (int64_t h = 0; h < H; h++) {
                    wk.head_sum[h] += head_logit(cfg, &wk.p, h, xt, wk.pre + h * n);
                    dsum[h] += in_at(dgate, t * H + h);
                }
            }
            /* dL/dlogit_t = dL/dpooled / T for every token of the sequence */
            for (int64_t h = 0; h < H; h++) {
                double sg = sigmoid(wk.head_sum[h] / (double)T);
                dlogit[h] = cfg->scale * (sg * (1.0 - sg)) * dsum[h] / (double)T;
            }
            /* pass 2: per-token parameter and feature gradients */
            for (int64_t t = s0; t < s0 + T; t++) {
                const double *xt = load_token(x, t, D, wk.token);
                token_backward(cfg, &wk, want, xt, dlogit, dx, t);
            }
        }
    }
    /* add the accumulated parameter gradients once */
    out_vec outs[4] = {gw, gb, gw2, gb2};
    for (int i = 0; i < 4; i++) {
        double *acc = grad_slot(&wk, i, want[i]);
        if (!acc) continue;
        for (int64_t k = 0; k < wk.counts[i]; k++) out_add(outs[i], k, acc[k]);
    }
    work_free(&wk);
    return LB_OK;
}

lb_status lb_gate_backward_ref(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                               const float *x, const lb_gate_weights *w, const float *dgate,
                               float *dx, const lb_gate_grads *grads)
{
    if (!w) return lb_error(ctx, LB_ERR_ARG, "gate backward: NULL weights");
    in_vec xv = {x, NULL}, dg = {dgate, NULL};
    out_vec dxv = {dx, NULL};
    out_vec gw = {grads ? grads->weight : NULL, NULL}, gb = {grads ? grads->bias : NULL, NULL};
    out_vec gw2 = {grads ? grads->weight2 : NULL, NULL}, gb2 = {grads ? grads->bias2 : NULL, NULL};
    return gate_backward(ctx, cfg, tokens, xv, w, NULL, dg, dxv, gw, gb, gw2, gb2);
}

lb_status lb_gate_backward_ref_f64(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                                   const double *x, const lb_gate_weights_f64 *w,
                                   const double *dgate, double *dx,
                                   const lb_gate_grads_f64 *grads)
{
    if (!w) return lb_error(ctx, LB_ERR_ARG, "gate backward: NULL weights");
    in_vec xv = {NULL, x}, dg = {NULL, dgate};
    out_vec dxv = {NULL, dx};
    out_vec gw = {NULL, grads ? grads->weight : NULL}, gb = {NULL, grads ? grads->bias : NULL};
    out_vec gw2 = {NULL, grads ? grads->weight2 : NULL}, gb2 = {NULL, grads ? grads->bias2 : NULL};
    return gate_backward(ctx, cfg, tokens, xv, NULL, w, dg, dxv, gw, gb, gw2, gb2);
}

/* ---- applying the gate to the context ---------------------------------- */

static lb_status check_apply(lb_ctx *ctx, const char *what, int64_t tokens, int64_t H, int64_t dh)
{
    if (tokens < 0 || H < 1 || dh < 1 || H > GATE_MAX_DIM || dh > GATE_MAX_DIM)
        return lb_error(ctx, LB_ERR_ARG, "%s: bad sizes tokens=%lld n_heads=%lld d_head=%lld", what,
                        (long long)tokens, (long long)H, (long long)dh);
    return LB_OK;
}

static lb_status gate_apply(lb_ctx *ctx, int64_t tokens, int64_t H, int64_t dh, in_vec gate,
                            in_vec c, out_vec out)
{
    lb_status st = check_apply(ctx, "gate apply", tokens, H, dh);
    if (st != LB_OK) return st;
    if (tokens > 0 && (!in_present(gate) || !in_present(c) || !out_present(out)))
        return lb_error(ctx, LB_ERR_ARG, "gate apply: NULL array");
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t h = 0; h < H; h++) {
            const double g = in_at(gate, t * H + h);
            for (int64_t k = 0; k < dh; k++) {
                const int64_t i = (t * H + h) * dh + k;
                out_set(out, i, g * in_at(c, i));
            }
        }
    return LB_OK;
}

lb_status lb_gate_apply_ref(lb_ctx *ctx, int64_t tokens, int64_t n_heads, int64_t d_head,
                            const float *gate, const float *context, float *out)
{
    in_vec g = {gate, NULL}, c = {context, NULL};
    out_vec o = {out, NULL};
    return gate_apply(ctx, tokens, n_heads, d_head, g, c, o);
}

lb_status lb_gate_apply_ref_f64(lb_ctx *ctx, int64_t tokens, int64_t n_heads, int64_t d_head,
                                const double *gate, const double *context, double *out)
{
    in_vec g = {NULL, gate}, c = {NULL, context};
    out_vec o = {NULL, out};
    return gate_apply(ctx, tokens, n_heads, d_head, g, c, o);
}

static lb_status gate_apply_backward(lb_ctx *ctx, int64_t tokens, int64_t H, int64_t dh,
                                     in_vec gate, in_vec c, in_vec dout, out_vec dc,
                                     out_vec dgate)
{
    lb_status st = check_apply(ctx, "gate apply backward", tokens, H, dh);
    if (st != LB_OK) return st;
    if (tokens > 0 && (!in_present(dout) || (out_present(dc) && !in_present(gate)) ||
                       (out_present(dgate) && !in_present(c))))
        return lb_error(ctx, LB_ERR_ARG, "gate apply backward: NULL array");
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t base = (t * H + h) * dh;
            /* dgate first: dcontext may overwrite dout */
            if (out_present(dgate)) {
                double acc = 0.0;
                for (int64_t k = 0; k < dh; k++) acc += in_at(dout, base + k) * in_at(c, base + k);
                out_set(dgate, t * H + h, acc);
            }
            if (out_present(dc)) {
                const double g = in_at(gate, t * H + h);
                for (int64_t k = 0; k < dh; k++) out_set(dc, base + k, g * in_at(dout, base + k));
            }
        }
    return LB_OK;
}

lb_status lb_gate_apply_backward_ref(lb_ctx *ctx, int64_t tokens, int64_t n_heads,
                                     int64_t d_head, const float *gate, const float *context,
                                     const float *dout, float *dcontext, float *dgate)
{
    in_vec g = {gate, NULL}, c = {context, NULL}, d = {dout, NULL};
    out_vec dc = {dcontext, NULL}, dg = {dgate, NULL};
    return gate_apply_backward(ctx, tokens, n_heads, d_head, g, c, d, dc, dg);
}

lb_status lb_gate_apply_backward_ref_f64(lb_ctx *ctx, int64_t tokens, int64_t n_heads,
                                         int64_t d_head, const double *gate,
                                         const double *context, const double *dout,
                                         double *dcontext, double *dgate)
{
    in_vec g = {NULL, gate}, c = {NULL, context}, d = {NULL, dout};
    out_vec dc = {NULL, dcontext}, dg = {NULL, dgate};
    return gate_apply_backward(ctx, tokens, n_heads, d_head, g, c, d, dc, dg);
}

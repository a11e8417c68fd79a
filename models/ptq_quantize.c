/* models/ptq_quantize.c — the post-training quantization driver
 * (lb_ptq_quantize, lowbit/ptq.h): weights by the method (W8A8 / RTN,
 * GPTQ, PowerQuant, NUPES), then the activation quantizers calibrated
 * sequentially in fake-quant (spec outlier_free_attention_and_w8a8.md §4.4).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/gptq.h"
#include "lowbit/ref/power_quantizer.h"
#include "ptq_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* ---------------------------------------------------------------- options */

static const char *const method_names[] = {"w8a8", "rtn", "gptq", "powerquant", "nupes"};

const char *lb_ptq_method_name(lb_ptq_method m)
{
    return (int)m >= 0 && (int)m < 5 ? method_names[m] : NULL;
}

lb_status lb_ptq_method_from_name(lb_ctx *ctx, const char *name, lb_ptq_method *out)
{
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, method_names[i]) == 0) {
            *out = (lb_ptq_method)i;
            return LB_OK;
        }
    return lb_error(ctx, LB_ERR_ARG,
                    "unknown method '%s' (expected w8a8, rtn, gptq, powerquant or nupes)",
                    name ? name : "(null)");
}

const char *lb_ptq_act_sites_name(lb_ptq_act_sites s)
{
    switch (s) {
    case LB_PTQ_ACT_NONE: return "none";
    case LB_PTQ_ACT_LINEAR: return "linear";
    case LB_PTQ_ACT_ALL: return "all";
    }
    return NULL;
}

void lb_ptq_options_default(lb_ptq_method method, lb_ptq_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = method;
    o->wbits = method == LB_PTQ_W8A8 ? 8 : 4;
    o->abits = method == LB_PTQ_W8A8 ? 8 : 0;
    o->granularity = method == LB_PTQ_W8A8 ? LB_WQ_TENSOR : LB_WQ_CHANNEL;
    o->range = lb_range_options_default();
    o->range.mse_margin = 0.0; // weights: the candidate K is min-max (weight_quant.h)
    o->act_range = LB_RANGE_MINMAX;
    o->act_percentile = 99.999;
    o->act_momentum = 0.9;
    o->act_sites = method == LB_PTQ_W8A8 ? LB_PTQ_ACT_ALL : LB_PTQ_ACT_NONE;
    o->calib_batches = 16;
    o->percdamp = 0.01;
    o->act_order = 0;
    o->per_layer_exponent = 0;
    o->codebook = LB_PTQ_CODEBOOK_AUTO;
    o->nupes_iters = 500;
    o->nupes_lr_v = 1e-3;
    o->nupes_lr_theta = 1e-3;
    o->nupes_a_min = 0.2;
    o->nupes_init = LB_PTQ_NUPES_INIT_GPTQ;
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) return lb_error(ctx, LB_ERR_ARG, __VA_ARGS__);                            \
    } while (0)

lb_status lb_ptq_options_check(lb_ctx *ctx, const lb_ptq_options *o)
{
    CHECK(o, "ptq: NULL options");
    CHECK(lb_ptq_method_name(o->method), "ptq: unknown method %d", (int)o->method);
    CHECK(o->wbits >= 2 && o->wbits <= 8, "ptq: wbits %d not in 2..8", o->wbits);
    CHECK(o->abits == 0 || (o->abits >= 2 && o->abits <= 8), "ptq: abits %d not 0 or 2..8",
          o->abits);
    CHECK(o->granularity == LB_WQ_TENSOR || o->granularity == LB_WQ_CHANNEL,
          "ptq: granularity must be tensor or channel");
    CHECK(lb_range_method_name(o->range.method), "ptq: unknown weight range method");
    CHECK(o->act_range == LB_RANGE_MINMAX || o->act_range == LB_RANGE_PERCENTILE,
          "ptq: activation ranges are minmax or percentile");
    CHECK(o->act_percentile >= 50 && o->act_percentile <= 100, "ptq: percentile not in [50, 100]");
    CHECK(o->act_momentum >= 0 && o->act_momentum <= 1, "ptq: momentum not in [0, 1]");
    CHECK(lb_ptq_act_sites_name(o->act_sites), "ptq: unknown activation sites");
    CHECK((o->abits == 0) == (o->act_sites == LB_PTQ_ACT_NONE),
          "ptq: abits 0 goes with activation sites 'none' and abits > 0 with linear or all");
    CHECK(o->calib_batches >= 0, "ptq: calib_batches must be >= 0");
    CHECK(isfinite(o->percdamp) && o->percdamp >= 0, "ptq: percdamp must be >= 0");
    CHECK(o->codebook >= LB_PTQ_CODEBOOK_FLOAT && o->codebook <= 127,
          "ptq: codebook must be auto (0), float (-1) or R in 1..127");
    CHECK(o->nupes_iters >= 0, "ptq: nupes iterations must be >= 0");
    CHECK(o->nupes_lr_v >= 0 && o->nupes_lr_theta >= 0, "ptq: learning rates must be >= 0");
    CHECK(o->nupes_a_min >= LB_POWER_A_MIN && o->nupes_a_min < 1, "ptq: a_min not in [0.01, 1)");
    CHECK(o->nupes_init == LB_PTQ_NUPES_INIT_GPTQ || o->nupes_init == LB_PTQ_NUPES_INIT_RTN,
          "ptq: nupes init must be gptq or rtn");
    if (o->method == LB_PTQ_POWERQUANT || o->method == LB_PTQ_NUPES)
        CHECK(o->range.method == LB_RANGE_MINMAX,
              "ptq: the power grid's group maximum is max |w| (range minmax)");
    return LB_OK;
}

/* ------------------------------------------------------------ the driver */

/* Linear layers to quantize, in forward order. */
typedef struct layer_list {
    ptq_linear *l[1 + 4 * 256];
    int n;
} layer_list;

static void list_layers(ptq_runtime *rt, layer_list *ll)
{
    ll->n = 0;
    ptq_linear *p = ptq_linear_at(rt, LB_LINEAR_PATCH, -1);
    if (p->w_offset >= 0) ll->l[ll->n++] = p;
    static const lb_linear_role roles[4] = {LB_LINEAR_QKV, LB_LINEAR_PROJ, LB_LINEAR_FC1,
                                            LB_LINEAR_FC2};
    for (int l = 0; l < rt->cfg.n_layer; l++)
        for (int r = 0; r < 4; r++) {
            ptq_linear *L = ptq_linear_at(rt, roles[r], l);
            if (L->w_offset >= 0) ll->l[ll->n++] = L;
        }
}

static int64_t n_scales_of(const lb_ptq_options *o, const ptq_linear *L)
{
    return o->granularity == LB_WQ_TENSOR ? 1 : L->OC;
}

static double weight_relerr(const float *W, const float *What, int64_t n)
{
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)W[i] - (double)What[i];
        e += d * d;
        r += (double)W[i] * (double)W[i];
    }
    return r > 0 ? e / r : 0;
}

static lb_weight_quant_config uniform_config(const lb_ptq_options *o)
{
    lb_weight_quant_config c = lb_weight_quant_config_default();
    c.bits = o->wbits;
    c.symmetric = 1;
    c.granularity = o->granularity;
    c.range = o->range;
    c.grid = LB_WQ_GRID_UNIFORM;
    c.power_a = 1.0;
    return c;
}

/* int32 codes -> int8 */
static int8_t *narrow_codes(const int32_t *c32, int64_t n)
{
    int8_t *c = lb_alloc((size_t)n);
    if (c)
        for (int64_t i = 0; i < n; i++) c[i] = (int8_t)c32[i];
    return c;
}

static lb_status rtn_layer(lb_ctx *ctx, lb_ptq_model *qm, ptq_linear *L)
{
    const lb_ptq_options *o = &qm->rt->opts;
    float *params = lb_model_params(qm->model);
    const float *W = params + L->w_offset;
    const int64_t n = L->OC * L->K, ns = n_scales_of(o, L);
    const lb_weight_quant_config c = uniform_config(o);
    int32_t *c32 = lb_alloc((size_t)n * sizeof(int32_t));
    float *scale = lb_alloc((size_t)ns * sizeof(float)), *what = lb_alloc((size_t)n * sizeof(float));
    lb_status st = c32 && scale && what ? LB_OK : lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    if (st == LB_OK) st = lb_weight_rtn_ref(ctx, &c, L->OC, L->K, W, c32, scale, NULL, what);
    int8_t *codes = st == LB_OK ? narrow_codes(c32, n) : NULL;
    if (st == LB_OK && !codes) st = lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    const double err = st == LB_OK ? weight_relerr(W, what, n) : 0;
    if (st == LB_OK)
        st = ptq_linear_set(ctx, L, params, o->wbits, LB_WQ_GRID_UNIFORM, 1.0, 0, codes, ns, scale);
    L->relerr = err;
    lb_free(c32), lb_free(scale), lb_free(what), lb_free(codes);
    return st;
}

static lb_status power_layer(lb_ctx *ctx, lb_ptq_model *qm, ptq_linear *L, double a)
{
    const lb_ptq_options *o = &qm->rt->opts;
    float *params = lb_model_params(qm->model);
    const int64_t n = L->OC * L->K, ns = n_scales_of(o, L);
    const lb_qgroups g = {1, ns, n / ns};
    float *W = lb_alloc((size_t)n * sizeof(float)), *gmax = lb_alloc((size_t)ns * sizeof(float));
    int8_t *codes = lb_alloc((size_t)n);
    lb_status st = W && gmax && codes ? LB_OK : lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    if (st == LB_OK) {
        memcpy(W, params + L->w_offset, (size_t)n * sizeof(float));
        st = lb_power_quantize_ref(ctx, o->wbits, a, &g, W, gmax, codes, NULL);
    }
    if (st == LB_OK)
        st = ptq_linear_set(ctx, L, params, o->wbits, LB_WQ_GRID_POWER, a, o->codebook, codes, ns,
                            gmax);
    if (st == LB_OK) L->relerr = weight_relerr(W, params + L->w_offset, n);
    lb_free(W), lb_free(gmax), lb_free(codes);
    return st;
}

static lb_status powerquant(lb_ctx *ctx, lb_ptq_model *qm, const layer_list *ll)
{
    const lb_ptq_options *o = &qm->rt->opts;
    const float *params = lb_model_params(qm->model);
    lb_power_search_options so = lb_power_search_options_default();
    so.bits = o->wbits;
    lb_power_layer *pl = lb_alloc((size_t)(ll->n ? ll->n : 1) * sizeof *pl);
    if (!pl) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    for (int i = 0; i < ll->n; i++) {
        const int64_t n = ll->l[i]->OC * ll->l[i]->K, ns = n_scales_of(o, ll->l[i]);
        pl[i].w = params + ll->l[i]->w_offset;
        pl[i].groups = (lb_qgroups){1, ns, n / ns};
    }
    lb_status st = LB_OK;
    lb_power_search_result r;
    if (!o->per_layer_exponent) {
        st = lb_power_search_ref(ctx, &so, ll->n, pl, &r);
        if (st == LB_OK)
            lb_log(ctx, LB_LOG_INFO, "powerquant: exponent a = %.4f (weight error %.4g of uniform's)",
                   r.a, r.error_a1 > 0 ? r.error / r.error_a1 : 1.0);
    }
    for (int i = 0; i < ll->n && st == LB_OK; i++) {
        double a = r.a;
        if (o->per_layer_exponent) {
            st = lb_power_search_ref(ctx, &so, 1, &pl[i], &r);
            a = r.a;
        }
        // pl[i].w points at the parameters that power_layer overwrites: it copies W first
        if (st == LB_OK) st = power_layer(ctx, qm, ll->l[i], a);
    }
    lb_free(pl);
    return st;
}

/* Runs calibration batches 0..n-1 through the model (targets dropped). */
static lb_status run_calib(lb_ctx *ctx, lb_ptq_model *qm, lb_ptq_batch_fn calib, void *user,
                           int64_t n)
{
    ptq_runtime *rt = qm->rt;
    for (int64_t i = 0; i < n; i++) {
        lb_model_batch b;
        memset(&b, 0, sizeof b);
        TRY(calib(user, ctx, i, &b));
        b.targets = NULL;
        rt->mask = b.attention_mask;
        rt->mask_rows = b.B * b.T;
        rt->stopped = 0;
        lb_status st = lb_model_forward(ctx, qm->model, &b, 0, 0, NULL);
        rt->mask = NULL;
        if (st == PTQ_STOP && rt->stopped) st = LB_OK;
        rt->stopped = 0;
        TRY(st);
    }
    return LB_OK;
}

static lb_status hessian_capture(void *user, lb_ctx *ctx, int64_t rows, int64_t cols,
                                 const float *x)
{
    lb_gptq_hessian *h = user;
    if (cols != h->c_in) return lb_error(ctx, LB_ERR_INTERNAL, "ptq: capture width mismatch");
    return lb_gptq_hessian_add_batch_ref(ctx, h, rows, x);
}

/* GPTQ or NUPES, layer by layer in forward order. */
static lb_status sequential(lb_ctx *ctx, lb_ptq_model *qm, const layer_list *ll,
                            lb_ptq_batch_fn calib, void *user)
{
    ptq_runtime *rt = qm->rt;
    const lb_ptq_options *o = &rt->opts;
    float *params = lb_model_params(qm->model);
    for (int i = 0; i < ll->n; i++) {
        ptq_linear *L = ll->l[i];
        const int64_t n = L->OC * L->K, ns = n_scales_of(o, L);
        lb_gptq_hessian *h = NULL;
        TRY(lb_gptq_hessian_create(ctx, L->K, &h));
        double *H = lb_alloc((size_t)(L->K * L->K) * sizeof(double));
        float *W = lb_alloc((size_t)n * sizeof(float)), *scale = lb_alloc((size_t)ns * sizeof(float));
        float *what = lb_alloc((size_t)n * sizeof(float));
        int32_t *c32 = lb_alloc((size_t)n * sizeof(int32_t));
        int8_t *codes = lb_alloc((size_t)n);
        lb_status st = H && W && scale && what && c32 && codes
                           ? LB_OK
                           : lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
        if (st == LB_OK) {
            memcpy(W, params + L->w_offset, (size_t)n * sizeof(float));
            rt->cap_role = (int)L->role;
            rt->cap_layer = L->layer;
            rt->cap_fn = hessian_capture;
            rt->cap_user = h;
            rt->cap_stop = 1;
            st = run_calib(ctx, qm, calib, user, o->calib_batches);
            rt->cap_fn = NULL;
            rt->cap_role = rt->cap_layer = -1;
        }
        if (st == LB_OK && h->n_samples == 0)
            st = lb_error(ctx, LB_ERR_ARG, "ptq: no calibration rows reached layer %s %d",
                          lb_linear_role_name(L->role), L->layer);
        if (st == LB_OK) st = lb_gptq_hessian_get(ctx, h, H);
        double err = 0, ref = 0;
        if (st == LB_OK && o->method == LB_PTQ_GPTQ) {
            lb_gptq_config gc = lb_gptq_config_default();
            gc.quant = uniform_config(o);
            gc.percdamp = o->percdamp;
            gc.act_order = o->act_order;
            lb_gptq_info info;
            st = lb_gptq_quantize_ref(ctx, &gc, L->OC, L->K, W, H, c32, scale, NULL, what, NULL,
                                      NULL, &info);
            for (int64_t k = 0; st == LB_OK && k < n; k++) codes[k] = (int8_t)c32[k];
            if (st == LB_OK) st = lb_gptq_hessian_error_ref(ctx, L->OC, L->K, H, W, what, &err, &ref);
            if (st == LB_OK)
                st = ptq_linear_set(ctx, L, params, o->wbits, LB_WQ_GRID_UNIFORM, 1.0, 0, codes,
                                    ns, scale);
            L->relerr = ref > 0 ? err / ref : 0;
            lb_log(ctx, LB_LOG_INFO, "gptq %-4s layer %2d: output error %.4g (%lld rows)",
                   lb_linear_role_name(L->role), L->layer, L->relerr,
                   (long long)h->n_samples);
        } else if (st == LB_OK) {
            double a = 1, l0 = 0, l1 = 0;
            st = ptq_nupes_layer(ctx, o, L->OC, L->K, W, H, ns, codes, scale, &a, &l0, &l1);
            if (st == LB_OK)
                st = ptq_linear_set(ctx, L, params, o->wbits, LB_WQ_GRID_POWER, a, o->codebook,
                                    codes, ns, scale);
            // the error of the stored weights (codebook included)
            if (st == LB_OK)
                st = lb_gptq_hessian_error_ref(ctx, L->OC, L->K, H, W, params + L->w_offset,
                                               &err, &ref);
            L->relerr = ref > 0 ? err / ref : 0;
            lb_log(ctx, LB_LOG_INFO,
                   "nupes %-4s layer %2d: a = %.4f, output error %.4g -> %.4g (stored %.4g)",
                   lb_linear_role_name(L->role), L->layer, a, l0, l1, L->relerr);
        }
        lb_gptq_hessian_free(h);
        lb_free(H), lb_free(W), lb_free(scale), lb_free(what), lb_free(c32), lb_free(codes);
        TRY(st);
    }
    return LB_OK;
}

static lb_status calibrate_acts(lb_ctx *ctx, lb_ptq_model *qm, lb_ptq_batch_fn calib,
                                void *user)
{
    ptq_runtime *rt = qm->rt;
    ptq_enable_acts(rt);
    const int nacts = PTQ_N_SITES * (rt->cfg.n_layer + 1);
    for (int i = 0; i < nacts; i++) rt->acts[i].calibrating = rt->acts[i].enabled;
    TRY(run_calib(ctx, qm, calib, user, rt->opts.calib_batches));
    for (int i = 0; i < nacts; i++) rt->acts[i].calibrating = 0;
    return LB_OK;
}

lb_status lb_ptq_quantize(lb_ctx *ctx, const lb_model *source, const lb_checkpoint_info *info,
                          const lb_ptq_options *opts, lb_ptq_batch_fn calib, void *user,
                          const lb_backend *backend, const lb_model_options *opts_model,
                          lb_ptq_model **out)
{
    if (!source || !opts || !backend || !opts_model || !out)
        return lb_error(ctx, LB_ERR_ARG, "ptq: NULL argument");
    *out = NULL;
    TRY(lb_ptq_options_check(ctx, opts));
    const int needs_data = opts->abits > 0 || opts->method == LB_PTQ_GPTQ ||
                           opts->method == LB_PTQ_NUPES;
    if (needs_data && (!calib || opts->calib_batches < 1))
        return lb_error(ctx, LB_ERR_ARG, "ptq: %s%s needs calibration batches",
                        lb_ptq_method_name(opts->method), opts->abits ? " with activations" : "");
    const lb_model_config *cfg = lb_model_get_config(source);
    lb_ptq_model *qm = lb_calloc(1, sizeof *qm);
    if (!qm) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    lb_status st = ptq_runtime_create(ctx, cfg, opts, &qm->rt);
    if (st == LB_OK)
        st = lb_model_create_ex(ctx, cfg, backend, &qm->rt->recipe, opts_model, &qm->model);
    if (st == LB_OK) {
        memcpy(lb_model_params(qm->model), lb_model_params((lb_model *)source),
               (size_t)lb_model_num_params(qm->model) * sizeof(float));
        st = ptq_runtime_bind(ctx, qm->rt, qm->model);
    }
    if (info) {
        qm->info = *info;
        qm->have_info = 1;
    }
    if (st != LB_OK) {
        lb_ptq_model_free(qm);
        return st;
    }
    lb_model_set_observer(qm->model, ptq_observe, qm->rt);
    qm->rt->exec = LB_PTQ_EXEC_FAKE;
    layer_list *ll = lb_alloc(sizeof *ll);
    if (!ll) st = lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    else list_layers(qm->rt, ll);
    if (st == LB_OK) {
        switch (opts->method) {
        case LB_PTQ_W8A8:
        case LB_PTQ_RTN:
            for (int i = 0; i < ll->n && st == LB_OK; i++) st = rtn_layer(ctx, qm, ll->l[i]);
            break;
        case LB_PTQ_POWERQUANT: st = powerquant(ctx, qm, ll); break;
        case LB_PTQ_GPTQ:
        case LB_PTQ_NUPES: st = sequential(ctx, qm, ll, calib, user); break;
        }
    }
    lb_free(ll);
    if (st == LB_OK && opts->abits > 0) st = calibrate_acts(ctx, qm, calib, user);
    if (st == LB_OK) st = lb_ptq_model_set_exec(ctx, qm, LB_PTQ_EXEC_INTEGER, LB_PTQ_KERNEL_FAST);
    if (st != LB_OK) {
        lb_ptq_model_free(qm);
        return st;
    }
    *out = qm;
    return LB_OK;
}

/* models/ptq_io.c — quantized model files (format "lowbit-quantized",
 * lowbit/ptq.h: lb_ptq_save, lb_ptq_model_load).
 *
 * A safetensors file with the checkpoint's config metadata (model.*,
 * train.*, state.*; format = "lowbit-quantized", format_version = "1") and
 *   model.<name>            F32  every parameter that stays float
 *   q.<name>.codes          I8 (OC, K) codes in [-N, N], or for bits <= 4
 *                           U8 (ceil(OC K / 2)) int4 nibbles (lowbit/cpu.h
 *                           order: element e in byte e / 2, low nibble first)
 *   q.<name>.scale          F32 (1) per tensor or (OC) per channel: the uniform
 *                           step Δ, or the power grid's group maximum M
 *   q.<name>.exponent       F64 (1) the power exponent a (power grid only)
 *   q.<name>.codebook       I8 (N + 1) the int8 codebook r_k, with
 *   q.<name>.codebook_r     I32 (1) its R (power grid with an integer path)
 *   act.<site>.<layer>      F32 (4) an activation quantizer: step Δ, zero
 *                           point z (an integer), running range lo, hi
 * and metadata ptq.method, ptq.wbits, ptq.abits, ptq.granularity,
 * ptq.range, ptq.act_range, ptq.act_percentile, ptq.act_sites,
 * ptq.calib_batches, ptq.codebook, ptq.per_layer_exponent,
 * ptq.nupes_iters, and per quantized weight q.<name>.bits, q.<name>.grid,
 * q.<name>.relerr. <site> is lowbit/model.h's tap name ("patch_in" for the
 * vit patches), <layer> the block index or -1.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/minilm.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/safetensors.h"
#include "ptq_internal.h"
#include "train_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

#define QFORMAT "lowbit-quantized"

static const char *site_name(int site)
{
    return site == PTQ_SITE_PATCH_IN ? "patch_in" : lb_model_tap_name((lb_model_tap_site)site);
}

static lb_status meta(lb_ctx *ctx, lb_safetensors_writer *w, const char *key, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static lb_status meta(lb_ctx *ctx, lb_safetensors_writer *w, const char *key, const char *fmt,
                      ...)
{
    char v[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return lb_safetensors_writer_set_metadata(ctx, w, key, v);
}

/* The parameter name of a linear layer's weight. */
static const char *weight_name(const lb_model *m, const ptq_linear *L)
{
    for (size_t k = 0; k < lb_model_num_tensors(m); k++)
        if (lb_model_tensor(m, k)->offset == L->w_offset) return lb_model_tensor(m, k)->name;
    return NULL;
}

static int is_quantized_weight(ptq_runtime *rt, int64_t offset)
{
    for (int i = 0; i < PTQ_N_ROLES * (rt->cfg.n_layer + 1); i++)
        if (rt->lin[i].quantized && rt->lin[i].w_offset == offset) return 1;
    return 0;
}

static lb_status write_linear(lb_ctx *ctx, lb_safetensors_writer *w, const lb_model *m,
                              const ptq_linear *L)
{
    const char *name = weight_name(m, L);
    if (!name) return lb_error(ctx, LB_ERR_INTERNAL, "ptq save: weight of a layer not found");
    char key[160];
    const int64_t n = L->OC * L->K;
    snprintf(key, sizeof key, "q.%s.codes", name);
    if (L->bits <= 4) {
        const int64_t nb = lb_s4_bytes(n);
        uint8_t *nib = lb_calloc((size_t)nb, 1);
        if (!nib) return lb_error(ctx, LB_ERR_NOMEM, "ptq save: out of memory");
        for (int64_t e = 0; e < n; e++)
            nib[e / 2] |= (uint8_t)(((uint8_t)L->codes[e] & 0x0F) << (4 * (e & 1)));
        lb_status st = lb_safetensors_writer_add_raw(ctx, w, key, LB_U8, 1, &nb, nib);
        lb_free(nib);
        TRY(st);
    } else {
        const int64_t shape[2] = {L->OC, L->K};
        TRY(lb_safetensors_writer_add_raw(ctx, w, key, LB_S8, 2, shape, L->codes));
    }
    snprintf(key, sizeof key, "q.%s.scale", name);
    TRY(lb_safetensors_writer_add_raw(ctx, w, key, LB_F32, 1, &L->n_scales, L->scale));
    if (L->grid == LB_WQ_GRID_POWER) {
        const int64_t one = 1;
        snprintf(key, sizeof key, "q.%s.exponent", name);
        TRY(lb_safetensors_writer_add_raw(ctx, w, key, LB_F64, 1, &one, &L->a));
        if (L->R > 0) {
            const int64_t nc = (1 << (L->bits - 1));
            const int32_t R = L->R;
            snprintf(key, sizeof key, "q.%s.codebook", name);
            TRY(lb_safetensors_writer_add_raw(ctx, w, key, LB_S8, 1, &nc, L->codebook));
            snprintf(key, sizeof key, "q.%s.codebook_r", name);
            TRY(lb_safetensors_writer_add_raw(ctx, w, key, LB_S32, 1, &one, &R));
        }
    }
    snprintf(key, sizeof key, "q.%s.bits", name);
    TRY(meta(ctx, w, key, "%d", L->bits));
    snprintf(key, sizeof key, "q.%s.grid", name);
    TRY(meta(ctx, w, key, "%s", lb_wq_grid_name(L->grid)));
    snprintf(key, sizeof key, "q.%s.relerr", name);
    TRY(meta(ctx, w, key, "%.9g", L->relerr));
    return LB_OK;
}

/* Tokenizer, embed.*, import.*, tokenizer metadata of an imported model. */
static lb_status copy_extras(lb_ctx *ctx, lb_safetensors_writer *w, const char *from)
{
    lb_safetensors *st = NULL;
    TRY(lb_safetensors_read(ctx, from, &st));
    lb_status s = LB_OK;
    for (size_t i = 0; i < lb_safetensors_metadata_count(st) && s == LB_OK; i++) {
        const char *k = lb_safetensors_metadata_key(st, i);
        if (strncmp(k, "embed.", 6) == 0 || strncmp(k, "import.", 7) == 0 ||
            strcmp(k, "tokenizer") == 0)
            s = lb_safetensors_writer_set_metadata(ctx, w, k, lb_safetensors_metadata(st, k));
    }
    lb_tensor *v = NULL;
    if (s == LB_OK && lb_safetensors_get(NULL, st, LB_TOKENIZER_VOCAB_TENSOR, &v) == LB_OK)
        s = lb_safetensors_writer_add(ctx, w, LB_TOKENIZER_VOCAB_TENSOR, v);
    lb_tensor_free(v);
    lb_safetensors_free(st);
    return s;
}

lb_status lb_ptq_save(lb_ctx *ctx, lb_ptq_model *qm, const char *copy_from, const char *path)
{
    if (!qm || !qm->rt || !path) return lb_error(ctx, LB_ERR_ARG, "ptq save: not a quantized model");
    ptq_runtime *rt = qm->rt;
    const lb_ptq_options *o = &rt->opts;
    lb_model *m = qm->model;
    lb_train_config tc;
    if (qm->have_info) {
        tc = qm->info.train;
    } else {
        lb_train_config_default(rt->cfg.kind, &tc);
    }
    tc.model = rt->cfg;
    lb_safetensors_writer *w = NULL;
    TRY(lb_safetensors_writer_create(ctx, &w));
    lb_status st = lb_checkpoint_write_config(ctx, w, &tc, QFORMAT);
    const long long step = qm->have_info ? (long long)qm->info.step : 0;
    if (st == LB_OK) st = meta(ctx, w, "state.step", "%lld", step);
    if (st == LB_OK) st = meta(ctx, w, "state.data_epoch", "0");
    if (st == LB_OK) st = meta(ctx, w, "state.data_position", "%lld", step);
    if (st == LB_OK) st = meta(ctx, w, "ptq.method", "%s", lb_ptq_method_name(o->method));
    if (st == LB_OK) st = meta(ctx, w, "ptq.wbits", "%d", o->wbits);
    if (st == LB_OK) st = meta(ctx, w, "ptq.abits", "%d", o->abits);
    if (st == LB_OK) st = meta(ctx, w, "ptq.granularity", "%s", lb_wq_granularity_name(o->granularity));
    if (st == LB_OK) st = meta(ctx, w, "ptq.range", "%s", lb_range_method_name(o->range.method));
    if (st == LB_OK) st = meta(ctx, w, "ptq.act_range", "%s", lb_range_method_name(o->act_range));
    if (st == LB_OK) st = meta(ctx, w, "ptq.act_percentile", "%.17g", o->act_percentile);
    if (st == LB_OK) st = meta(ctx, w, "ptq.act_sites", "%s", lb_ptq_act_sites_name(o->act_sites));
    if (st == LB_OK) st = meta(ctx, w, "ptq.calib_batches", "%lld", (long long)o->calib_batches);
    if (st == LB_OK) st = meta(ctx, w, "ptq.codebook", "%d", o->codebook);
    if (st == LB_OK) st = meta(ctx, w, "ptq.per_layer_exponent", "%d", o->per_layer_exponent);
    if (st == LB_OK) st = meta(ctx, w, "ptq.nupes_iters", "%d", o->nupes_iters);
    if (st == LB_OK)
        st = meta(ctx, w, "ptq.nupes_init", "%s",
                  o->nupes_init == LB_PTQ_NUPES_INIT_RTN ? "rtn" : "gptq");
    // float parameters
    for (size_t k = 0; k < lb_model_num_tensors(m) && st == LB_OK; k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        if (is_quantized_weight(rt, p->offset)) continue;
        char name[96];
        snprintf(name, sizeof name, "model.%s", p->name);
        st = lb_safetensors_writer_add_raw(ctx, w, name, LB_F32, p->ndim, p->shape,
                                           lb_model_params(m) + p->offset);
    }
    for (int i = 0; i < PTQ_N_ROLES * (rt->cfg.n_layer + 1) && st == LB_OK; i++)
        if (rt->lin[i].quantized) st = write_linear(ctx, w, m, &rt->lin[i]);
    for (int site = 0; site < PTQ_N_SITES && st == LB_OK; site++)
        for (int l = -1; l < rt->cfg.n_layer && st == LB_OK; l++) {
            const ptq_act *q = ptq_act_at(rt, site, l);
            if (!q->enabled || !q->have) continue;
            char key[96];
            snprintf(key, sizeof key, "act.%s.%d", site_name(site), l);
            const float v[4] = {q->scale, (float)q->zero, q->lo, q->hi};
            const int64_t four = 4;
            st = lb_safetensors_writer_add_raw(ctx, w, key, LB_F32, 1, &four, v);
        }
    if (st == LB_OK && copy_from) st = copy_extras(ctx, w, copy_from);
    if (st == LB_OK) st = lb_safetensors_writer_save(ctx, w, path);
    lb_safetensors_writer_free(w);
    return st;
}

/* ---------------------------------------------------------------- loading */

static lb_status bad(lb_ctx *ctx, const char *path, const char *what, const char *key)
{
    return lb_error(ctx, LB_ERR_FORMAT, "quantized model %s: %s '%s'", path, what, key);
}

static lb_status meta_int(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                          const char *key, long lo, long hi, long *out)
{
    const char *v = lb_safetensors_metadata(st, key);
    if (!v) return bad(ctx, path, "missing metadata", key);
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) return bad(ctx, path, "bad metadata", key);
    *out = x;
    return LB_OK;
}

static lb_status read_options(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                              lb_ptq_options *o)
{
    const char *m = lb_safetensors_metadata(st, "ptq.method");
    lb_ptq_method method;
    if (!m || lb_ptq_method_from_name(NULL, m, &method) != LB_OK)
        return bad(ctx, path, "bad or missing metadata", "ptq.method");
    lb_ptq_options_default(method, o);
    long v;
    TRY(meta_int(ctx, st, path, "ptq.wbits", 2, 8, &v));
    o->wbits = (int)v;
    TRY(meta_int(ctx, st, path, "ptq.abits", 0, 8, &v));
    o->abits = (int)v;
    TRY(meta_int(ctx, st, path, "ptq.calib_batches", 0, 1L << 40, &v));
    o->calib_batches = v;
    TRY(meta_int(ctx, st, path, "ptq.codebook", -1, 127, &v));
    o->codebook = (int)v;
    const char *g = lb_safetensors_metadata(st, "ptq.granularity");
    if (!g || (strcmp(g, "tensor") != 0 && strcmp(g, "channel") != 0))
        return bad(ctx, path, "bad or missing metadata", "ptq.granularity");
    o->granularity = strcmp(g, "tensor") == 0 ? LB_WQ_TENSOR : LB_WQ_CHANNEL;
    const char *s = lb_safetensors_metadata(st, "ptq.act_sites");
    int found = 0;
    for (int i = 0; i <= LB_PTQ_ACT_ALL && s; i++)
        if (strcmp(s, lb_ptq_act_sites_name((lb_ptq_act_sites)i)) == 0)
            o->act_sites = (lb_ptq_act_sites)i, found = 1;
    if (!found) return bad(ctx, path, "bad or missing metadata", "ptq.act_sites");
    const char *ar = lb_safetensors_metadata(st, "ptq.act_range");
    o->act_range = ar && strcmp(ar, "percentile") == 0 ? LB_RANGE_PERCENTILE : LB_RANGE_MINMAX;
    if (lb_ptq_options_check(ctx, o) != LB_OK) {
        char detail[300];
        snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
        return lb_error(ctx, LB_ERR_FORMAT, "quantized model %s: %s", path, detail);
    }
    return LB_OK;
}

/* Reads tensor `key` of exactly (ndim, shape) and dtype into dst. */
static lb_status get_exact(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                           const char *key, lb_dtype dt, int ndim, const int64_t *shape,
                           void *dst)
{
    lb_status s = lb_safetensors_get_into(ctx, st, key, dt, ndim, shape, dst);
    if (s == LB_ERR_NOT_FOUND) return bad(ctx, path, "missing tensor", key);
    if (s == LB_ERR_ARG || s == LB_ERR_UNSUPPORTED) return bad(ctx, path, "bad tensor", key);
    return s;
}

static lb_status read_linear(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                             lb_model *m, ptq_linear *L, const char *name)
{
    char key[160];
    const int64_t n = L->OC * L->K;
    long bits;
    snprintf(key, sizeof key, "q.%s.bits", name);
    TRY(meta_int(ctx, st, path, key, 2, 8, &bits));
    snprintf(key, sizeof key, "q.%s.grid", name);
    const char *grid = lb_safetensors_metadata(st, key);
    if (!grid || (strcmp(grid, "uniform") != 0 && strcmp(grid, "power") != 0))
        return bad(ctx, path, "bad or missing metadata", key);
    const lb_wq_grid g = strcmp(grid, "power") == 0 ? LB_WQ_GRID_POWER : LB_WQ_GRID_UNIFORM;
    int8_t *codes = lb_alloc((size_t)n);
    if (!codes) return lb_error(ctx, LB_ERR_NOMEM, "ptq load: out of memory");
    lb_status s = LB_OK;
    snprintf(key, sizeof key, "q.%s.codes", name);
    if (bits <= 4) {
        const int64_t nb = lb_s4_bytes(n);
        uint8_t *nib = lb_alloc((size_t)nb);
        s = nib ? get_exact(ctx, st, path, key, LB_U8, 1, &nb, nib)
                : lb_error(ctx, LB_ERR_NOMEM, "ptq load: out of memory");
        for (int64_t e = 0; s == LB_OK && e < n; e++) {
            const int v = (nib[e / 2] >> (4 * (e & 1))) & 0x0F;
            codes[e] = (int8_t)(v >= 8 ? v - 16 : v);
        }
        lb_free(nib);
    } else {
        const int64_t shape[2] = {L->OC, L->K};
        s = get_exact(ctx, st, path, key, LB_S8, 2, shape, codes);
    }
    const int N = (1 << (bits - 1)) - 1;
    for (int64_t e = 0; s == LB_OK && e < n; e++)
        if (codes[e] < -N || codes[e] > N) s = bad(ctx, path, "code out of range in", key);
    // scales: one or one per output channel
    snprintf(key, sizeof key, "q.%s.scale", name);
    int64_t shape[LB_MAX_DIMS];
    int ndim = 0;
    if (s == LB_OK && lb_safetensors_info(NULL, st, key, NULL, &ndim, shape) != LB_OK)
        s = bad(ctx, path, "missing tensor", key);
    const int64_t ns = s == LB_OK && ndim == 1 ? shape[0] : 0;
    if (s == LB_OK && ns != 1 && ns != L->OC) s = bad(ctx, path, "bad shape of", key);
    float *scale = s == LB_OK ? lb_alloc((size_t)ns * sizeof(float)) : NULL;
    if (s == LB_OK && !scale) s = lb_error(ctx, LB_ERR_NOMEM, "ptq load: out of memory");
    if (s == LB_OK) s = get_exact(ctx, st, path, key, LB_F32, 1, &ns, scale);
    for (int64_t i = 0; s == LB_OK && i < ns; i++)
        if (!isfinite(scale[i]) || scale[i] < 0) s = bad(ctx, path, "bad scale in", key);
    double a = 1.0;
    int32_t R = LB_PTQ_CODEBOOK_FLOAT;
    int8_t cb[128];
    const int64_t one = 1, nc = N + 1;
    if (s == LB_OK && g == LB_WQ_GRID_POWER) {
        snprintf(key, sizeof key, "q.%s.exponent", name);
        s = get_exact(ctx, st, path, key, LB_F64, 1, &one, &a);
        if (s == LB_OK && !(a >= LB_POWER_A_MIN && a <= LB_POWER_A_MAX))
            s = bad(ctx, path, "bad exponent", key);
        snprintf(key, sizeof key, "q.%s.codebook_r", name);
        if (s == LB_OK && lb_safetensors_info(NULL, st, key, NULL, NULL, NULL) == LB_OK) {
            s = get_exact(ctx, st, path, key, LB_S32, 1, &one, &R);
            if (s == LB_OK && (R < 1 || R > 127)) s = bad(ctx, path, "bad codebook R", key);
            snprintf(key, sizeof key, "q.%s.codebook", name);
            if (s == LB_OK) s = get_exact(ctx, st, path, key, LB_S8, 1, &nc, cb);
        }
    }
    if (s == LB_OK)
        s = ptq_linear_set(ctx, L, lb_model_params(m), (int)bits, g, a,
                           g == LB_WQ_GRID_POWER ? (int)R : 0, codes, ns, scale);
    // the codebook is a function of (bits, a, R): the stored one must be it
    if (s == LB_OK && g == LB_WQ_GRID_POWER && R > 0 && memcmp(cb, L->codebook, (size_t)nc) != 0)
        s = bad(ctx, path, "codebook differs from the one of its exponent for", name);
    snprintf(key, sizeof key, "q.%s.relerr", name);
    const char *re = lb_safetensors_metadata(st, key);
    if (s == LB_OK && re) L->relerr = strtod(re, NULL);
    lb_free(codes);
    lb_free(scale);
    return s;
}

lb_status ptq_load_quantized(lb_ctx *ctx, const char *path, const lb_backend *backend,
                             const lb_model_options *opts, lb_ptq_exec exec, lb_ptq_kernel kernel,
                             lb_ptq_model **out)
{
    if (!backend || !opts) return lb_error(ctx, LB_ERR_ARG, "ptq load: NULL argument");
    lb_safetensors *st = NULL;
    TRY(lb_safetensors_read(ctx, path, &st));
    lb_ptq_model *qm = lb_calloc(1, sizeof *qm);
    lb_train_config tc;
    lb_ptq_options o;
    lb_status s = qm ? LB_OK : lb_error(ctx, LB_ERR_NOMEM, "ptq load: out of memory");
    if (s == LB_OK) s = lb_checkpoint_read_config(ctx, st, path, QFORMAT, &tc);
    if (s == LB_OK) s = read_options(ctx, st, path, &o);
    if (s == LB_OK) s = ptq_runtime_create(ctx, &tc.model, &o, &qm->rt);
    lb_model_options mo = *opts;
    if (mo.max_batch <= 0) mo.max_batch = tc.batch_size;
    if (s == LB_OK) s = lb_model_create_ex(ctx, &tc.model, backend, &qm->rt->recipe, &mo, &qm->model);
    if (s == LB_OK) s = ptq_runtime_bind(ctx, qm->rt, qm->model);
    lb_model *m = s == LB_OK ? qm->model : NULL;
    for (size_t k = 0; s == LB_OK && k < lb_model_num_tensors(m); k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        char key[160];
        snprintf(key, sizeof key, "q.%s.codes", p->name);
        ptq_linear *L = NULL;
        for (int i = 0; i < PTQ_N_ROLES * (tc.model.n_layer + 1); i++)
            if (qm->rt->lin[i].w_offset == p->offset) L = &qm->rt->lin[i];
        if (L && lb_safetensors_info(NULL, st, key, NULL, NULL, NULL) == LB_OK) {
            s = read_linear(ctx, st, path, m, L, p->name);
        } else {
            snprintf(key, sizeof key, "model.%s", p->name);
            s = get_exact(ctx, st, path, key, LB_F32, p->ndim, p->shape,
                          lb_model_params(m) + p->offset);
        }
    }
    if (s == LB_OK) {
        ptq_enable_acts(qm->rt);
        for (int site = 0; site < PTQ_N_SITES && s == LB_OK; site++)
            for (int l = -1; l < tc.model.n_layer && s == LB_OK; l++) {
                ptq_act *q = ptq_act_at(qm->rt, site, l);
                if (!q->enabled) continue;
                char key[96];
                snprintf(key, sizeof key, "act.%s.%d", site_name(site), l);
                float v[4];
                const int64_t four = 4;
                if (lb_safetensors_info(NULL, st, key, NULL, NULL, NULL) != LB_OK) {
                    q->enabled = 0; // never calibrated (e.g. a site no data reached)
                    continue;
                }
                s = get_exact(ctx, st, path, key, LB_F32, 1, &four, v);
                const int32_t zmax = (1 << o.abits) - 1;
                if (s == LB_OK && (!(v[0] > 0) || !isfinite(v[0]) || v[1] != floorf(v[1]) ||
                                   v[1] < 0 || v[1] > (float)zmax))
                    s = bad(ctx, path, "bad activation quantizer", key);
                q->scale = v[0];
                q->zero = (int32_t)v[1];
                q->lo = v[2];
                q->hi = v[3];
                q->have = 1;
            }
        // a linear layer whose input quantizer is missing runs on float inputs
        for (int i = 0; i < PTQ_N_ROLES * (tc.model.n_layer + 1); i++)
            if (qm->rt->lin[i].in && !qm->rt->lin[i].in->enabled) qm->rt->lin[i].in = NULL;
    }
    if (s == LB_OK) {
        qm->info.train = tc;
        const char *step = lb_safetensors_metadata(st, "state.step");
        qm->info.step = step ? strtoll(step, NULL, 10) : 0;
        qm->info.has_optimizer = 0;
        qm->have_info = 1;
        lb_model_set_observer(m, ptq_observe, qm->rt);
        s = lb_ptq_model_set_exec(ctx, qm, exec, kernel);
    }
    lb_safetensors_free(st);
    if (s != LB_OK) {
        lb_ptq_model_free(qm);
        return s;
    }
    *out = qm;
    return LB_OK;
}

/* cli/ops_gptq.c — `lowbit op` entries of post-training weight quantization:
 * rtn-weight (round to nearest) and gptq (GPTQ/OPTQ, Frantar et al. 2023,
 * Algorithm 1). Pages: doc/algorithms/{rtn-weight,gptq}.md.
 *
 * W is (C_out, C_in) f32 or f64; calibration inputs X are one or more batches
 * (..., C_in) f32 or f64, each viewed as (numel / C_in, C_in) rows. Per-group
 * outputs have shape () per tensor, (C_out,) per channel and (C_out, G) per
 * group (G = ceil(C_in / group)). Codes are s8 for symmetric / power grids and
 * u8 for asymmetric ones. The relative error ERR is ||XW^T - XŴ^T||² /
 * ||XW^T||² summed over all batches, written as a 0-d f32. */
#include "config.h"
#include "op.h"
#include "lowbit/ref/weight_quant.h"
#include "lowbit/ref/gptq.h"

#include <math.h>
#include <string.h>

/* A float32 view of an f32 or f64 tensor (*owned set when a copy was made). */
static lb_status as_f32(lb_ctx *ctx, const lb_tensor *t, const char *what, lb_tensor **owned, const float **out)
{
    *owned = NULL;
    if (t->dtype == LB_F32) {
        *out = lb_tensor_f32(t);
        return LB_OK;
    }
    if (t->dtype != LB_F64)
        return lb_error(ctx, LB_ERR_ARG, "%s must be f32 or f64, got %s", what, lb_dtype_name(t->dtype));
    lb_status st = lb_tensor_create(ctx, LB_F32, t->ndim, t->shape, owned);
    if (st != LB_OK) return st;
    const double *d = lb_tensor_f64(t);
    float *f = lb_tensor_f32(*owned);
    for (size_t i = 0; i < t->numel; i++) f[i] = (float)d[i];
    *out = f;
    return LB_OK;
}

static void free_outputs(lb_tensor **out, int n)
{
    for (int i = 0; i < n; i++) {
        lb_tensor_free(out[i]);
        out[i] = NULL;
    }
}

static const char *const gran_choices[] = {"tensor", "channel", "group", NULL};
static const char *const range_choices[] = {"minmax", "mse", NULL};
static const char *const grid_choices[] = {"uniform", "power", NULL};

/* bits, granularity, group, sym, range, candidates, margin, grid, a. */
static lb_status read_weight_config(lb_ctx *ctx, op_params *p, lb_weight_quant_config *c)
{
    int64_t bits, group, sym, cand;
    int gran, range, grid;
    lb_status st;
    *c = lb_weight_quant_config_default();
    if ((st = op_param_int(ctx, p, "bits", 4, &bits)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "granularity", gran_choices, 1, &gran)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "group", 128, &group)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "sym", 1, &sym)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "range", range_choices, 0, &range)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "candidates", 100, &cand)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "margin", 0.0, &c->range.mse_margin)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "grid", grid_choices, 0, &grid)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "a", 1.0, &c->power_a)) != LB_OK) return st;
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "bits=%lld outside 2..8", (long long)bits);
    if (group < 1 || group > INT32_MAX) return lb_error(ctx, LB_ERR_ARG, "group=%lld must be >= 1", (long long)group);
    if (sym != 0 && sym != 1) return lb_error(ctx, LB_ERR_ARG, "sym=%lld must be 0 or 1", (long long)sym);
    if (cand < 1 || cand > 1000000) return lb_error(ctx, LB_ERR_ARG, "candidates=%lld outside 1..1e6", (long long)cand);
    if (!(c->range.mse_margin >= 0.0) || !isfinite(c->range.mse_margin))
        return lb_error(ctx, LB_ERR_ARG, "margin=%g must be finite and >= 0", c->range.mse_margin);
    c->bits = (int)bits;
    c->granularity = (lb_wq_granularity)gran;
    c->group_size = group;
    c->symmetric = (int)sym;
    c->range.method = range == 0 ? LB_RANGE_MINMAX : LB_RANGE_MSE;
    c->range.mse_candidates = (int)cand;
    c->grid = (lb_wq_grid)grid;
    return lb_weight_quant_check(ctx, c);
}

/* W must be 2-D (C_out, C_in). */
static lb_status check_weight(lb_ctx *ctx, const lb_tensor *w)
{
    if (w->ndim != 2)
        return lb_error(ctx, LB_ERR_ARG, "W must be 2-D (C_out, C_in), got %d dimensions", w->ndim);
    return LB_OK;
}

/* Rows of batch X: numel / C_in, X's last dimension must be C_in. */
static lb_status batch_rows(lb_ctx *ctx, const lb_tensor *x, int64_t C_in, int b, int64_t *n)
{
    if (x->ndim < 1 || x->shape[x->ndim - 1] != C_in)
        return lb_error(ctx, LB_ERR_ARG, "X batch %d: the last dimension must be C_in = %lld", b, (long long)C_in);
    *n = (int64_t)x->numel / C_in;
    return LB_OK;
}

/* The scale / zero-point tensors: () per tensor, (C_out,) per channel, (C_out, G) per group. */
static lb_status make_param_tensor(lb_ctx *ctx, lb_dtype dtype, const lb_weight_quant_config *c, int64_t rows,
                                   int64_t cols, lb_tensor **out)
{
    if (c->granularity == LB_WQ_TENSOR) return lb_tensor_create(ctx, dtype, 0, NULL, out);
    if (c->granularity == LB_WQ_CHANNEL) return lb_tensor_create(ctx, dtype, 1, &rows, out);
    const int64_t shape[2] = {rows, cols};
    return lb_tensor_create(ctx, dtype, 2, shape, out);
}

/* Q (s8 or u8), WHAT, S, Z from int32 codes: allocates out[0..3]. */
static lb_status make_weight_outputs(lb_ctx *ctx, const lb_weight_quant_config *c, const lb_tensor *w,
                                     int64_t rows, int64_t cols, lb_tensor **out)
{
    lb_status st;
    const lb_dtype cd = c->symmetric ? LB_S8 : LB_U8;
    if ((st = lb_tensor_create(ctx, cd, 2, w->shape, &out[0])) != LB_OK) return st;
    if ((st = lb_tensor_create(ctx, LB_F32, 2, w->shape, &out[1])) != LB_OK) return st;
    if ((st = make_param_tensor(ctx, LB_F32, c, rows, cols, &out[2])) != LB_OK) return st;
    return make_param_tensor(ctx, LB_S32, c, rows, cols, &out[3]);
}

static void store_codes(const lb_weight_quant_config *c, const int32_t *codes, lb_tensor *q)
{
    for (size_t i = 0; i < q->numel; i++) {
        if (c->symmetric) lb_tensor_s8(q)[i] = (int8_t)codes[i];
        else lb_tensor_u8(q)[i] = (uint8_t)codes[i];
    }
}

/* The relative error over every batch in[first..n_in). */
static lb_status batches_error(lb_ctx *ctx, lb_tensor *const *in, int first, int n_in, int64_t C_out, int64_t C_in,
                               const float *w, const float *what, double *rel)
{
    double e2 = 0.0, y2 = 0.0;
    for (int b = first; b < n_in; b++) {
        int64_t n = 0;
        const float *x;
        lb_tensor *own = NULL;
        double e, y;
        lb_status st = batch_rows(ctx, in[b], C_in, b - first, &n);
        if (st == LB_OK) st = as_f32(ctx, in[b], "X", &own, &x);
        if (st == LB_OK) st = lb_weight_recon_error_ref(ctx, n, C_out, C_in, x, w, what, &e, &y);
        lb_tensor_free(own);
        if (st != LB_OK) return st;
        e2 += e;
        y2 += y;
    }
    *rel = lb_weight_relative_error(e2, y2);
    return LB_OK;
}

static lb_status make_scalar(lb_ctx *ctx, double v, lb_tensor **out)
{
    lb_status st = lb_tensor_create(ctx, LB_F32, 0, NULL, out);
    if (st == LB_OK) lb_tensor_f32(*out)[0] = (float)v;
    return st;
}

/* ---- rtn-weight --------------------------------------------------------- */

static lb_status op_rtn_weight(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                               int *n_out)
{
    lb_weight_quant_config c;
    lb_tensor *wown = NULL, *codes = NULL;
    const float *w;
    int64_t rows, cols;
    lb_status st;
    if ((st = read_weight_config(ctx, p, &c)) != LB_OK) return st;
    if ((st = check_weight(ctx, in[0])) != LB_OK) return st;
    const int64_t C_out = in[0]->shape[0], C_in = in[0]->shape[1];
    if ((st = lb_weight_scale_shape(ctx, &c, C_out, C_in, &rows, &cols)) != LB_OK) return st;
    if ((st = as_f32(ctx, in[0], "W", &wown, &w)) != LB_OK) return st;
    if ((st = make_weight_outputs(ctx, &c, in[0], rows, cols, out)) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S32, 2, in[0]->shape, &codes)) != LB_OK) goto fail;
    if ((st = lb_weight_rtn_ref(ctx, &c, C_out, C_in, w, lb_tensor_s32(codes), lb_tensor_f32(out[2]),
                                lb_tensor_s32(out[3]), lb_tensor_f32(out[1]))) != LB_OK)
        goto fail;
    store_codes(&c, lb_tensor_s32(codes), out[0]);
    *n_out = 4;
    if (n_in > 1) {
        double rel;
        if ((st = batches_error(ctx, in, 1, n_in, C_out, C_in, w, lb_tensor_f32(out[1]), &rel)) != LB_OK) goto fail;
        if ((st = make_scalar(ctx, rel, &out[4])) != LB_OK) goto fail;
        *n_out = 5;
    }
    lb_tensor_free(codes);
    lb_tensor_free(wown);
    return LB_OK;
fail:
    free_outputs(out, 5);
    lb_tensor_free(codes);
    lb_tensor_free(wown);
    return st;
}

/* ---- gptq --------------------------------------------------------------- */

static lb_status op_gptq(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    lb_gptq_config c = lb_gptq_config_default();
    lb_tensor *wown = NULL, *codes = NULL, *H = NULL, *rtn = NULL;
    lb_gptq_hessian *acc = NULL;
    const float *w;
    int64_t rows, cols, block, act, stat;
    lb_status st;
    if ((st = read_weight_config(ctx, p, &c.quant)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "percdamp", 0.01, &c.percdamp)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "blocksize", 128, &block)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "act-order", 0, &act)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "static-groups", 0, &stat)) != LB_OK) return st;
    if (block < 1) return lb_error(ctx, LB_ERR_ARG, "blocksize=%lld must be >= 1", (long long)block);
    if (act != 0 && act != 1) return lb_error(ctx, LB_ERR_ARG, "act-order=%lld must be 0 or 1", (long long)act);
    if (stat != 0 && stat != 1) return lb_error(ctx, LB_ERR_ARG, "static-groups=%lld must be 0 or 1", (long long)stat);
    c.block_size = block;
    c.act_order = (int)act;
    c.static_groups = (int)stat;
    if ((st = check_weight(ctx, in[0])) != LB_OK) return st;
    const int64_t C_out = in[0]->shape[0], C_in = in[0]->shape[1];
    if (C_in < 1) return lb_error(ctx, LB_ERR_ARG, "gptq: W has no input columns");
    if ((st = lb_weight_scale_shape(ctx, &c.quant, C_out, C_in, &rows, &cols)) != LB_OK) return st;
    if ((st = as_f32(ctx, in[0], "W", &wown, &w)) != LB_OK) return st;

    /* H = 2 X^T X / n over every batch. */
    const int64_t hshape[2] = {C_in, C_in};
    if ((st = lb_gptq_hessian_create(ctx, C_in, &acc)) != LB_OK) goto fail;
    for (int b = 1; b < n_in; b++) {
        int64_t n = 0;
        const float *x;
        lb_tensor *own = NULL;
        st = batch_rows(ctx, in[b], C_in, b - 1, &n);
        if (st == LB_OK) st = as_f32(ctx, in[b], "X", &own, &x);
        if (st == LB_OK) st = lb_gptq_hessian_add_batch_ref(ctx, acc, n, x);
        lb_tensor_free(own);
        if (st != LB_OK) goto fail;
    }
    if ((st = lb_tensor_create(ctx, LB_F64, 2, hshape, &H)) != LB_OK) goto fail;
    if ((st = lb_gptq_hessian_get(ctx, acc, lb_tensor_f64(H))) != LB_OK) goto fail;

    if ((st = make_weight_outputs(ctx, &c.quant, in[0], rows, cols, out)) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S32, 1, &C_in, &out[6])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S32, 1, &C_in, &out[7])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S32, 2, in[0]->shape, &codes)) != LB_OK) goto fail;
    if ((st = lb_gptq_quantize_ref(ctx, &c, C_out, C_in, w, lb_tensor_f64(H), lb_tensor_s32(codes),
                                   lb_tensor_f32(out[2]), lb_tensor_s32(out[3]), lb_tensor_f32(out[1]),
                                   lb_tensor_s32(out[6]), lb_tensor_s32(out[7]), NULL)) != LB_OK)
        goto fail;
    store_codes(&c.quant, lb_tensor_s32(codes), out[0]);

    /* ERR, and ERR_RTN of the same quantizer by round to nearest. */
    double rel, rel_rtn;
    if ((st = batches_error(ctx, in, 1, n_in, C_out, C_in, w, lb_tensor_f32(out[1]), &rel)) != LB_OK) goto fail;
    if ((st = make_scalar(ctx, rel, &out[4])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, 2, in[0]->shape, &rtn)) != LB_OK) goto fail;
    {
        /* RTN's parameters go to scratch tensors: only its Ŵ is needed. */
        lb_tensor *s = NULL, *z = NULL;
        st = make_param_tensor(ctx, LB_F32, &c.quant, rows, cols, &s);
        if (st == LB_OK) st = make_param_tensor(ctx, LB_S32, &c.quant, rows, cols, &z);
        if (st == LB_OK)
            st = lb_weight_rtn_ref(ctx, &c.quant, C_out, C_in, w, lb_tensor_s32(codes), lb_tensor_f32(s),
                                   lb_tensor_s32(z), lb_tensor_f32(rtn));
        lb_tensor_free(s);
        lb_tensor_free(z);
        if (st != LB_OK) goto fail;
    }
    if ((st = batches_error(ctx, in, 1, n_in, C_out, C_in, w, lb_tensor_f32(rtn), &rel_rtn)) != LB_OK) goto fail;
    if ((st = make_scalar(ctx, rel_rtn, &out[5])) != LB_OK) goto fail;
    *n_out = 8;
    lb_tensor_free(rtn);
    lb_tensor_free(H);
    lb_tensor_free(codes);
    lb_tensor_free(wown);
    lb_gptq_hessian_free(acc);
    return LB_OK;
fail:
    free_outputs(out, 8);
    lb_tensor_free(rtn);
    lb_tensor_free(H);
    lb_tensor_free(codes);
    lb_tensor_free(wown);
    lb_gptq_hessian_free(acc);
    return st;
}

#define WEIGHT_PARAMS                                                                                        \
    "bits=4 (2..8); granularity=tensor|channel|group (default channel); group=128 (input columns per "      \
    "group); sym=1|0; range=minmax|mse (uniform grid); candidates=100, margin=0 (mse grid); "                \
    "grid=uniform|power; a=1 (power grid exponent, 0.01..8)"

const op_def ops_gptq[] = {
    {"rtn-weight",
     "round-to-nearest weight quantization of a linear layer (the GPTQ paper's RTN baseline): per-tensor, "
     "per-channel or per-group scales, uniform or power (NUPES) grid",
     "W (C_out, C_in) f32 [X (..., C_in) f32 calibration batches, for ERR]",
     "Q (C_out, C_in) s8 codes (u8 if sym=0), WHAT (C_out, C_in) f32, S f32 scales: () per tensor, (C_out) per "
     "channel, (C_out, G) per group (power grid: group max M), Z (same shape) s32 zero point, [ERR () f32 ||XW^T-XŴ^T||²/||XW^T||² when X is given]",
     WEIGHT_PARAMS, 1, OP_MAX_INPUTS, op_rtn_weight},
    {"gptq",
     "GPTQ/OPTQ (Frantar et al. 2023, Algorithm 1, the authors' fasterquant): H = 2X^TX/n, dampening, "
     "Cholesky of H^-1, lazy block updates, optional act-order; uniform or power grid",
     "W (C_out, C_in) f32, X (..., C_in) f32 [X2 ... more calibration batches]",
     "Q (C_out, C_in) s8 codes (u8 if sym=0), WHAT (C_out, C_in) f32, S f32 scales: () | (C_out) | (C_out, G) "
     "(power grid: group max M; groups in processing order), Z (same shape) s32, ERR () f32 ||XW^T-XŴ^T||²/||XW^T||², "
     "ERR_RTN () f32 the same for RTN, G_IDX (C_in) s32 group of each column, PERM (C_in) s32 processing order",
     WEIGHT_PARAMS "; percdamp=0.01; blocksize=128; act-order=0|1; static-groups=0|1",
     2, OP_MAX_INPUTS, op_gptq},
};
const size_t ops_gptq_count = sizeof ops_gptq / sizeof ops_gptq[0];

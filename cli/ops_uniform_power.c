/* cli/ops_uniform_power.c — `lowbit op` entries of the uniform / power
 * quantizer group: uniform, range, power-quant, power-search.
 * Pages: doc/algorithms/{uniform,range-estimators,power-quant}.md. Float
 * inputs may be f32 or f64 (converted to f32 first). Per-group outputs have
 * shape () for granularity=tensor and (G,) otherwise, G the number of groups
 * (channels along `axis`, or rows of the (numel/D, D) view for tokens). */
#include "config.h"
#include "op.h"
#include "lowbit/rng.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "lowbit/ref/range_estimators.h"
#include "lowbit/ref/power_quantizer.h"

#include <math.h>
#include <string.h>

/* A per-group output: () for one tensor-wide group, else (G,). */
static lb_status make_group_tensor(lb_ctx *ctx, lb_dtype dtype, lb_granularity gran, int64_t groups,
                                   lb_tensor **out)
{
    if (gran == LB_GRAN_TENSOR && groups == 1) return lb_tensor_create(ctx, dtype, 0, NULL, out);
    return lb_tensor_create(ctx, dtype, 1, &groups, out);
}

static void free_outputs(lb_tensor **out, int n)
{
    for (int i = 0; i < n; i++) {
        lb_tensor_free(out[i]);
        out[i] = NULL;
    }
}

static const char *const gran_choices[] = {"tensor", "channel", "token", NULL};
static const char *const mode_choices[] = {"symmetric", "asymmetric", NULL};
static const char *const range_choices[] = {"minmax", "percentile", "mse", NULL};
static const char *const rounding_choices[] = {"even", "away", "stochastic", NULL};

/* bits, mode, full-range, rounding (+ --seed) -> config. */
static lb_status read_quantizer(lb_ctx *ctx, op_params *p, int default_bits, lb_uniform_config *cfg)
{
    int64_t bits, full;
    int mode, rounding;
    lb_status st;
    *cfg = lb_uniform_config_default();
    if ((st = op_param_int(ctx, p, "bits", default_bits, &bits)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "mode", mode_choices, 0, &mode)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "full-range", 0, &full)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "rounding", rounding_choices, 0, &rounding)) != LB_OK) return st;
    if (bits < 2 || bits > 16) return lb_error(ctx, LB_ERR_ARG, "bits=%lld outside 2..16", (long long)bits);
    cfg->bits = (int)bits;
    cfg->symmetric = mode == 0;
    cfg->full_range = full != 0;
    cfg->rounding = rounding == 0 ? LB_ROUND_HALF_EVEN : rounding == 1 ? LB_ROUND_HALF_AWAY : LB_ROUND_STOCHASTIC;
    cfg->seed = p->seed;
    cfg->stream = lb_rng_stream("uniform-quant", 0);
    return LB_OK;
}

/* range, p, candidates, margin -> options. */
static lb_status read_range(lb_ctx *ctx, op_params *p, lb_range_options *o)
{
    int method;
    int64_t cand;
    lb_status st;
    *o = lb_range_options_default();
    if ((st = op_param_choice(ctx, p, "range", range_choices, 0, &method)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "p", 99.99, &o->percentile)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "candidates", 100, &cand)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "margin", 0.5, &o->mse_margin)) != LB_OK) return st;
    if (cand < 1 || cand > 1000000) return lb_error(ctx, LB_ERR_ARG, "candidates=%lld outside 1..1e6", (long long)cand);
    o->method = (lb_range_method)method;
    o->mse_candidates = (int)cand;
    return LB_OK;
}

/* granularity, axis -> groups of tensor t (and the axis, for further batches). */
static lb_status read_groups(lb_ctx *ctx, op_params *p, int default_gran, const lb_tensor *t,
                             lb_granularity *gran, int *axis_out, lb_qgroups *groups)
{
    int g;
    int64_t axis;
    lb_status st;
    if ((st = op_param_choice(ctx, p, "granularity", gran_choices, default_gran, &g)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "axis", 0, &axis)) != LB_OK) return st;
    if (axis < -4 || axis > 3) return lb_error(ctx, LB_ERR_ARG, "axis=%lld outside -4..3", (long long)axis);
    *gran = (lb_granularity)g;
    if (axis_out) *axis_out = (int)axis;
    return lb_qgroups_make(ctx, *gran, t->ndim, t->shape, (int)axis, groups);
}

/* The smallest of s8 / u8 / s32 holding the code range. */
static lb_dtype code_dtype(int32_t qmin, int32_t qmax)
{
    if (qmin >= -128 && qmax <= 127) return LB_S8;
    if (qmin >= 0 && qmax <= 255) return LB_U8;
    return LB_S32;
}

/* ---- uniform ------------------------------------------------------------ */

static lb_status op_uniform(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                            int *n_out)
{
    (void)n_in;
    lb_uniform_config cfg;
    lb_range_options ro;
    lb_granularity gran;
    lb_qgroups gr;
    lb_tensor *xown = NULL, *lo = NULL, *hi = NULL, *codes32 = NULL;
    const float *x;
    int32_t qmin, qmax;
    lb_status st;
    if ((st = read_quantizer(ctx, p, 8, &cfg)) != LB_OK) return st;
    if ((st = read_range(ctx, p, &ro)) != LB_OK) return st;
    if ((st = read_groups(ctx, p, 0, in[0], &gran, NULL, &gr)) != LB_OK) return st;
    if ((st = lb_uniform_code_range(ctx, &cfg, &qmin, &qmax)) != LB_OK) return st;
    if ((st = op_as_f32(ctx, in[0], "X", &xown, &x)) != LB_OK) return st;
    const lb_dtype cd = code_dtype(qmin, qmax);
    if ((st = lb_tensor_create(ctx, cd, in[0]->ndim, in[0]->shape, &out[0])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, in[0]->ndim, in[0]->shape, &out[1])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[2])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_S32, gran, gr.groups, &out[3])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &lo)) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &hi)) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S32, in[0]->ndim, in[0]->shape, &codes32)) != LB_OK) goto fail;
    if ((st = lb_range_estimate_ref(ctx, &ro, &cfg, &gr, x, lb_tensor_f32(lo), lb_tensor_f32(hi))) != LB_OK)
        goto fail;
    if ((st = lb_uniform_qparams_ref(ctx, &cfg, gr.groups, lb_tensor_f32(lo), lb_tensor_f32(hi),
                                     lb_tensor_f32(out[2]), lb_tensor_s32(out[3]))) != LB_OK)
        goto fail;
    if ((st = lb_uniform_quantize_ref(ctx, &cfg, &gr, x, lb_tensor_f32(out[2]), lb_tensor_s32(out[3]),
                                      lb_tensor_s32(codes32))) != LB_OK)
        goto fail;
    if ((st = lb_uniform_dequantize_ref(ctx, &cfg, &gr, lb_tensor_s32(codes32), lb_tensor_f32(out[2]),
                                        lb_tensor_s32(out[3]), lb_tensor_f32(out[1]))) != LB_OK)
        goto fail;
    for (size_t i = 0; i < in[0]->numel; i++) {
        int32_t q = lb_tensor_s32(codes32)[i];
        if (cd == LB_S8) lb_tensor_s8(out[0])[i] = (int8_t)q;
        else if (cd == LB_U8) lb_tensor_u8(out[0])[i] = (uint8_t)q;
        else lb_tensor_s32(out[0])[i] = q;
    }
    out[4] = lo;
    out[5] = hi;
    *n_out = 6;
    lb_tensor_free(codes32);
    lb_tensor_free(xown);
    return LB_OK;
fail:
    free_outputs(out, 4);
    lb_tensor_free(lo);
    lb_tensor_free(hi);
    lb_tensor_free(codes32);
    lb_tensor_free(xown);
    return st;
}

/* ---- range -------------------------------------------------------------- */

static lb_status op_range(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                          int *n_out)
{
    lb_uniform_config cfg;
    lb_range_options ro;
    lb_granularity gran;
    lb_qgroups gr;
    int axis;
    int64_t running;
    double momentum;
    lb_tensor *xown = NULL, *blo = NULL, *bhi = NULL;
    lb_status st;
    if ((st = read_quantizer(ctx, p, 8, &cfg)) != LB_OK) return st;
    if ((st = read_range(ctx, p, &ro)) != LB_OK) return st;
    if ((st = read_groups(ctx, p, 0, in[0], &gran, &axis, &gr)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "running", 0, &running)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "momentum", 0.9, &momentum)) != LB_OK) return st;
    if (!running && n_in > 1)
        return lb_error(ctx, LB_ERR_ARG, "range: %d inputs need running=1 (each input is one batch)", n_in);
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[0])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[1])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[2])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_S32, gran, gr.groups, &out[3])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &blo)) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &bhi)) != LB_OK) goto fail;
    lb_running_range state = {0, momentum};
    for (int b = 0; b < n_in; b++) {
        /* Each batch is grouped by its own shape; the group counts must agree. */
        const float *x;
        lb_qgroups gb;
        if ((st = lb_qgroups_make(ctx, gran, in[b]->ndim, in[b]->shape, axis, &gb)) != LB_OK) goto fail;
        if (gb.groups != gr.groups) {
            st = lb_error(ctx, LB_ERR_ARG, "range: batch %d has %lld groups, batch 0 has %lld", b,
                          (long long)gb.groups, (long long)gr.groups);
            goto fail;
        }
        lb_tensor_free(xown);
        if ((st = op_as_f32(ctx, in[b], "X", &xown, &x)) != LB_OK) goto fail;
        if ((st = lb_range_estimate_ref(ctx, &ro, &cfg, &gb, x, lb_tensor_f32(blo), lb_tensor_f32(bhi))) != LB_OK)
            goto fail;
        if ((st = lb_range_running_update_ref(ctx, &state, gr.groups, lb_tensor_f32(blo), lb_tensor_f32(bhi),
                                              lb_tensor_f32(out[0]), lb_tensor_f32(out[1]))) != LB_OK)
            goto fail;
    }
    if ((st = lb_uniform_qparams_ref(ctx, &cfg, gr.groups, lb_tensor_f32(out[0]), lb_tensor_f32(out[1]),
                                     lb_tensor_f32(out[2]), lb_tensor_s32(out[3]))) != LB_OK)
        goto fail;
    *n_out = 4;
    lb_tensor_free(blo);
    lb_tensor_free(bhi);
    lb_tensor_free(xown);
    return LB_OK;
fail:
    free_outputs(out, 4);
    lb_tensor_free(blo);
    lb_tensor_free(bhi);
    lb_tensor_free(xown);
    return st;
}

/* ---- power-quant and power-search ---------------------------------------- */

static lb_status read_search(lb_ctx *ctx, op_params *p, lb_power_search_options *o)
{
    int64_t grid, refine;
    lb_status st;
    *o = lb_power_search_options_default();
    if ((st = op_param_double(ctx, p, "a-lo", o->a_lo, &o->a_lo)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "a-hi", o->a_hi, &o->a_hi)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "grid", o->grid_points, &grid)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "refine", o->refine_iters, &refine)) != LB_OK) return st;
    if (grid < 2 || grid > 100000 || refine < 0 || refine > 200)
        return lb_error(ctx, LB_ERR_ARG, "grid=%lld (2..1e5) or refine=%lld (0..200) out of range", (long long)grid,
                        (long long)refine);
    o->grid_points = (int)grid;
    o->refine_iters = (int)refine;
    return LB_OK;
}

static lb_status op_power_quant(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                                int *n_out)
{
    (void)n_in;
    int64_t bits, search, R_req;
    double a;
    lb_power_search_options so;
    lb_granularity gran;
    lb_qgroups gr;
    lb_tensor *wown = NULL;
    const float *w;
    lb_status st;
    if ((st = op_param_int(ctx, p, "bits", 4, &bits)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "a", 0.5, &a)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "search", 0, &search)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "codebook-r", 0, &R_req)) != LB_OK) return st;
    if ((st = read_search(ctx, p, &so)) != LB_OK) return st;
    if ((st = read_groups(ctx, p, 1, in[0], &gran, NULL, &gr)) != LB_OK) return st;
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "bits=%lld outside 2..8", (long long)bits);
    if (R_req < 0 || R_req > 127) return lb_error(ctx, LB_ERR_ARG, "codebook-r=%lld outside 0..127", (long long)R_req);
    if ((st = op_as_f32(ctx, in[0], "W", &wown, &w)) != LB_OK) return st;
    if (search) {
        lb_power_layer layer = {w, gr};
        lb_power_search_result res;
        so.bits = (int)bits;
        if ((st = lb_power_search_ref(ctx, &so, 1, &layer, &res)) != LB_OK) goto fail;
        a = res.a;
    }
    /* The exponent in use is the float32 value written to the A output. */
    a = (double)(float)a;
    const int64_t nlev = (1 << (bits - 1)) - 1 + 1;
    if ((st = lb_tensor_create(ctx, LB_S8, in[0]->ndim, in[0]->shape, &out[0])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, in[0]->ndim, in[0]->shape, &out[1])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[2])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, 0, NULL, &out[3])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_S8, 1, &nlev, &out[4])) != LB_OK) goto fail;
    if ((st = make_group_tensor(ctx, LB_F32, gran, gr.groups, &out[5])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, in[0]->ndim, in[0]->shape, &out[6])) != LB_OK) goto fail;
    if ((st = lb_power_quantize_ref(ctx, (int)bits, a, &gr, w, lb_tensor_f32(out[2]), lb_tensor_s8(out[0]),
                                    lb_tensor_f32(out[1]))) != LB_OK)
        goto fail;
    lb_tensor_f32(out[3])[0] = (float)a;
    int R = 0, exact = 0;
    if ((st = lb_power_codebook_ref(ctx, (int)bits, a, (int)R_req, lb_tensor_s8(out[4]), &R, &exact)) != LB_OK)
        goto fail;
    if ((st = lb_power_codebook_scales_ref(ctx, R, gr.groups, lb_tensor_f32(out[2]), lb_tensor_f32(out[5]))) != LB_OK)
        goto fail;
    if ((st = lb_power_codebook_dequantize_ref(ctx, (int)bits, R, lb_tensor_s8(out[4]), &gr, lb_tensor_s8(out[0]),
                                               lb_tensor_f32(out[2]), lb_tensor_f32(out[6]))) != LB_OK)
        goto fail;
    lb_log(ctx, LB_LOG_INFO, "power-quant: a = %.9g, codebook R = %d (%s)", a, R, exact ? "exact" : "rounded");
    *n_out = 7;
    lb_tensor_free(wown);
    return LB_OK;
fail:
    free_outputs(out, 7);
    lb_tensor_free(wown);
    return st;
}

static lb_status op_power_search(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                                 int *n_out)
{
    int64_t bits, shared, axis;
    int g;
    lb_power_search_options so;
    lb_tensor *own[OP_MAX_INPUTS] = {0};
    lb_power_layer layers[OP_MAX_INPUTS];
    lb_status st;
    if ((st = op_param_int(ctx, p, "bits", 4, &bits)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "shared", 1, &shared)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "granularity", gran_choices, 1, &g)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "axis", 0, &axis)) != LB_OK) return st;
    if ((st = read_search(ctx, p, &so)) != LB_OK) return st;
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "bits=%lld outside 2..8", (long long)bits);
    if (axis < -4 || axis > 3) return lb_error(ctx, LB_ERR_ARG, "axis=%lld outside -4..3", (long long)axis);
    so.bits = (int)bits;
    for (int l = 0; l < n_in; l++) {
        const float *w;
        if ((st = op_as_f32(ctx, in[l], "W", &own[l], &w)) != LB_OK) goto done;
        layers[l].w = w;
        if ((st = lb_qgroups_make(ctx, (lb_granularity)g, in[l]->ndim, in[l]->shape, (int)axis, &layers[l].groups)) !=
            LB_OK)
            goto done;
    }
    const int64_t n_res = shared ? 1 : n_in;
    for (int o = 0; o < 4; o++) {
        st = shared ? lb_tensor_create(ctx, LB_F32, 0, NULL, &out[o]) : lb_tensor_create(ctx, LB_F32, 1, &n_res, &out[o]);
        if (st != LB_OK) goto done;
    }
    for (int64_t r = 0; r < n_res; r++) {
        lb_power_search_result res;
        const int nl = shared ? n_in : 1;
        const lb_power_layer *ls = shared ? layers : &layers[r];
        if ((st = lb_power_search_ref(ctx, &so, nl, ls, &res)) != LB_OK) goto done;
        /* Report the error at the float32 exponent that is written out. */
        double a32 = (double)(float)res.a, e;
        if ((st = lb_power_error_ref(ctx, so.bits, a32, nl, ls, &e)) != LB_OK) goto done;
        lb_tensor_f32(out[0])[r] = (float)a32;
        lb_tensor_f32(out[1])[r] = res.error_a1 > 0.0 ? (float)(e / res.error_a1) : 1.0f;
        lb_tensor_f32(out[2])[r] = (float)e;
        lb_tensor_f32(out[3])[r] = (float)res.error_a1;
    }
    *n_out = 4;
done:
    if (st != LB_OK) free_outputs(out, 4);
    for (int l = 0; l < n_in; l++) lb_tensor_free(own[l]);
    return st;
}

const op_def ops_uniform_power[] = {
    {"uniform",
     "uniform quantizer (Quantizable Transformers eq. 1 / authors' code): range estimate, scale, zero point, "
     "codes, x̂ = Δ(q - z)",
     "X (...) f32",
     "Q (...) codes (s8 if the code range fits, else u8, else s32), XHAT (...) f32, S (G|) f32 scale, "
     "Z (G|) s32 zero point, LO (G|) f32, HI (G|) f32 range",
     "bits=8 (2..16); mode=symmetric|asymmetric; full-range=0|1 (symmetric qmin -2^(b-1)); "
     "granularity=tensor|channel|token; axis=0 (channel); range=minmax|percentile|mse; p=99.99 (percentile, "
     "50..100); candidates=100, margin=0.5 (mse grid); rounding=even|away|stochastic (--seed; stream "
     "\"uniform-quant\" 0, index = flat element index)",
     1, 1, op_uniform},
    {"range",
     "range estimators (authors' code of Quantizable Transformers): min-max, percentile (NumPy linear), MSE grid, "
     "running EMA over batches; with the scale and zero point they give",
     "X (...) f32 [X2 ... batches when running=1]",
     "LO (G|) f32, HI (G|) f32, S (G|) f32 scale, Z (G|) s32 zero point",
     "range=minmax|percentile|mse; p=99.99; candidates=100; margin=0.5; running=0|1; momentum=0.9; "
     "granularity=tensor|channel|token; axis=0; bits=8; mode=symmetric|asymmetric; full-range=0|1; "
     "rounding=even|away|stochastic (used by mse as ties rule)",
     1, OP_MAX_INPUTS, op_range},
    {"power-quant",
     "power quantizer (PowerQuant/NUPES, nupes.md §1, §4): q = round(N sign(w)(|w|/M)^a), "
     "ŵ = sign(q) M (|q|/N)^(1/a), and the int8 codebook of the integer path",
     "W (...) f32",
     "Q (...) s8 codes, WHAT (...) f32, M (G|) f32 group max, A () f32 exponent used, CB (N+1) s8 codebook, "
     "CS (G|) f32 codebook scale M/R, WCB (...) f32 codebook dequantization CS*r_q",
     "bits=4 (2..8); a=0.5; search=0|1 (data-free search replaces a); a-lo=0.2, a-hi=1, grid=81, refine=20; "
     "codebook-r=0 (auto) or 1..127; granularity=channel|tensor|token; axis=0",
     1, 1, op_power_quant},
    {"power-search",
     "data-free exponent search (PowerQuant, nupes.md §2): minimise E(a) = sum ||W - Ŵ(a)||² over a grid + "
     "golden-section refinement",
     "W1 (...) f32 [W2 ... more layers]",
     "A (L|) f32 exponent(s), RATIO (L|) f32 E(a)/E(1), E (L|) f32, E1 (L|) f32",
     "bits=4; shared=1 (one a for all layers) | 0 (one per layer); granularity=channel|tensor|token; axis=0; "
     "a-lo=0.2; a-hi=1; grid=81; refine=20",
     1, OP_MAX_INPUTS, op_power_search},
};
const size_t ops_uniform_power_count = sizeof ops_uniform_power / sizeof ops_uniform_power[0];

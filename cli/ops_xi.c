/* cli/ops_xi.c — `lowbit op` entries of the Xi et al. 2023 group (HQ + BS +
 * LSS): hadamard, hq, lsq, bit-split, lss-probs, lss-sample,
 * qlinear-hq-forward, qlinear-hq-backward. Pages: doc/algorithms/{hadamard,
 * lsq,hq,bit-split,lss,qlinear-hq}.md. Float inputs may be f32 or f64
 * (converted to f32 first; LSS scores are used in double); codes are s8,
 * integer results s32, masks u8, floats f32. */
#include "config.h"
#include "op.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/alloc.h"

#include <string.h>

/* ---- tensor helpers ------------------------------------------------------ */

static lb_status require_2d(lb_ctx *ctx, const lb_tensor *t, const char *what)
{
    if (t->ndim != 2) return lb_error(ctx, LB_ERR_ARG, "%s must be 2-D, got %d dimensions", what, t->ndim);
    return LB_OK;
}

static void free_outputs(lb_tensor **out, int n)
{
    for (int i = 0; i < n; i++) {
        lb_tensor_free(out[i]);
        out[i] = NULL;
    }
}

/* ---- shared parameters --------------------------------------------------- */

static const char *const range_choices[] = {"paper", "code", NULL};
static const char *const rounding_choices[] = {"even", "away", NULL};
static const char *const bs_choices[] = {"clean", "code", NULL};
static const char *const lss_choices[] = {"bernoulli", "nonzero", "all", NULL};
static const char *const preset_choices[] = {"paper", "code", NULL};
static const char *const stream_choices[] = {"weight", "input", NULL};

static lb_status read_range_rounding(lb_ctx *ctx, op_params *p, int code_defaults, lb_lsq_range *range,
                                     lb_rounding *rounding)
{
    int r, t;
    lb_status st = op_param_choice(ctx, p, "range", range_choices, code_defaults, &r);
    if (st == LB_OK) st = op_param_choice(ctx, p, "rounding", rounding_choices, code_defaults, &t);
    if (st != LB_OK) return st;
    *range = r ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
    *rounding = t ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
    return LB_OK;
}

static lb_status read_layer_step(lb_ctx *ctx, op_params *p, uint64_t *layer, uint64_t *step)
{
    int64_t l, s;
    lb_status st = op_param_int(ctx, p, "layer", 0, &l);
    if (st == LB_OK) st = op_param_int(ctx, p, "step", 0, &s);
    if (st != LB_OK) return st;
    if (l < 0 || l > 0xffffffffLL || s < 0 || s > 0xffffffffLL)
        return lb_error(ctx, LB_ERR_ARG, "layer and step must be in [0, 2^32)");
    *layer = (uint64_t)l;
    *step = (uint64_t)s;
    return LB_OK;
}

/* Every layer key, with defaults from preset=paper|code. */
static lb_status read_layer_config(lb_ctx *ctx, op_params *p, int backward, lb_hq_config *cfg, float *scale_x,
                                   float *scale_w)
{
    int preset, bs = 0, lss = 0;
    int64_t block, max_block;
    double budget, sx, sw;
    lb_status st = op_param_choice(ctx, p, "preset", preset_choices, 0, &preset);
    if (st != LB_OK) return st;
    if (preset) lb_hq_config_code(cfg);
    else lb_hq_config_default(cfg);
    if ((st = read_range_rounding(ctx, p, preset, &cfg->range, &cfg->rounding)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "block", 0, &block)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "max_block", LB_HQ_MAX_BLOCK, &max_block)) != LB_OK) return st;
    budget = 0.0;
    if (backward) {
        if ((st = op_param_choice(ctx, p, "bs", bs_choices, preset, &bs)) != LB_OK) return st;
        if ((st = op_param_choice(ctx, p, "lss", lss_choices, preset, &lss)) != LB_OK) return st;
        if ((st = op_param_double(ctx, p, "budget", 0.0, &budget)) != LB_OK) return st;
    } else {
        bs = preset, lss = preset;
    }
    if ((st = op_param_double(ctx, p, "scale_x", 0.0, &sx)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "scale_w", 0.0, &sw)) != LB_OK) return st;
    int64_t layer;
    if ((st = op_param_int(ctx, p, "layer", 0, &layer)) != LB_OK) return st;
    if (layer < 0 || layer > 0xffffffffLL) return lb_error(ctx, LB_ERR_ARG, "layer must be in [0, 2^32)");
    cfg->layer = (uint64_t)layer;
    if (block < 0) return lb_error(ctx, LB_ERR_ARG, "block=%lld must be >= 0", (long long)block);
    if ((sx > 0.0) != (sw > 0.0))
        return lb_error(ctx, LB_ERR_ARG, "give both scale_x and scale_w, or neither (LSQ init rule)");
    cfg->block = block;
    cfg->max_block = max_block;
    cfg->bit_split = bs ? LB_BS_CODE : LB_BS_CLEAN;
    cfg->sampling = lss == 0 ? LB_LSS_BERNOULLI : (lss == 1 ? LB_LSS_NONZERO : LB_LSS_ALL);
    cfg->lss_budget = budget;
    cfg->seed = p->seed;
    *scale_x = (float)sx;
    *scale_w = (float)sw;
    return LB_OK;
}

/* ---- hadamard ------------------------------------------------------------ */

static lb_status run_hadamard(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    (void)n_in;
    int64_t block, rows = 0, D = 0;
    lb_tensor *owned = NULL;
    const float *x;
    lb_status st = op_param_int(ctx, p, "block", 32, &block);
    if (st == LB_OK) st = op_matrix_shape(ctx, in[0], "X", &rows, &D);
    if (st == LB_OK) st = op_as_f32(ctx, in[0], "X", &owned, &x);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &out[0]);
    if (st == LB_OK) st = lb_hadamard_ref(ctx, rows, D, block, x, lb_tensor_f32(out[0]));
    lb_tensor_free(owned);
    if (st != LB_OK) return free_outputs(out, 1), st;
    *n_out = 1;
    return LB_OK;
}

/* ---- hq ------------------------------------------------------------------ */

static lb_status run_hq(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    lb_lsq_range range;
    lb_rounding rounding;
    int64_t block = 0, max_block = 0, rx = 0, D = 0, rw = 0, Dw = 0;
    double scale, scale_w;
    lb_tensor *ox = NULL, *ow = NULL;
    const float *x = NULL, *w = NULL;
    double errors[LB_HQ_NUM_BLOCKS];
    int n = 0;
    lb_status st = read_range_rounding(ctx, p, 0, &range, &rounding);
    if (st == LB_OK) st = op_param_int(ctx, p, "block", 0, &block);
    if (st == LB_OK) st = op_param_int(ctx, p, "max_block", LB_HQ_MAX_BLOCK, &max_block);
    if (st == LB_OK) st = op_param_double(ctx, p, "scale", 0.0, &scale);
    if (st == LB_OK) st = op_param_double(ctx, p, "scale_w", 0.0, &scale_w);
    if (st == LB_OK) st = op_matrix_shape(ctx, in[0], "X", &rx, &D);
    if (st == LB_OK) st = op_as_f32(ctx, in[0], "X", &ox, &x);
    if (st == LB_OK && n_in > 1) {
        st = op_matrix_shape(ctx, in[1], "W", &rw, &Dw);
        if (st == LB_OK && Dw != D) st = lb_error(ctx, LB_ERR_ARG, "W has %lld columns, X %lld", (long long)Dw, (long long)D);
        if (st == LB_OK) st = op_as_f32(ctx, in[1], "W", &ow, &w);
    }
    for (int k = 0; k < LB_HQ_NUM_BLOCKS; k++) errors[k] = -1.0;
    if (st == LB_OK && block < 0) st = lb_error(ctx, LB_ERR_ARG, "block must be >= 0");
    if (st == LB_OK && block == 0)
        st = lb_hq_search_block_ref(ctx, range, rounding, D, rx, x, rw, w, max_block, &block, errors);
    /* X: codes, scale, block, errors */
    float sx = (float)scale;
    if (st == LB_OK && !(sx > 0.0f)) st = lb_hq_init_step_ref(ctx, rx, D, block, x, &sx);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_S8, &out[n++]);
    if (st == LB_OK) st = lb_hq_quantize_ref(ctx, range, rounding, rx, D, block, x, sx, lb_tensor_s8(out[0]), NULL, NULL);
    if (st == LB_OK) st = op_make_scalar_f32(ctx, sx, &out[n++]);
    if (st == LB_OK) st = op_make_scalar_s32(ctx, (int32_t)block, &out[n++]);
    if (st == LB_OK) st = op_make_1d(ctx, LB_F32, LB_HQ_NUM_BLOCKS, &out[n++]);
    if (st == LB_OK)
        for (int k = 0; k < LB_HQ_NUM_BLOCKS; k++) lb_tensor_f32(out[3])[k] = (float)errors[k];
    /* W: codes, scale */
    if (st == LB_OK && w) {
        float sw = (float)scale_w;
        if (!(sw > 0.0f)) st = lb_hq_init_step_ref(ctx, rw, D, block, w, &sw);
        if (st == LB_OK) st = op_make_like(ctx, in[1], LB_S8, &out[n++]);
        if (st == LB_OK) st = lb_hq_quantize_ref(ctx, range, rounding, rw, D, block, w, sw, lb_tensor_s8(out[4]), NULL, NULL);
        if (st == LB_OK) st = op_make_scalar_f32(ctx, sw, &out[n++]);
    }
    lb_tensor_free(ox);
    lb_tensor_free(ow);
    if (st != LB_OK) return free_outputs(out, n), st;
    *n_out = n;
    return LB_OK;
}

/* ---- lsq ----------------------------------------------------------------- */

static lb_status run_lsq(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    lb_lsq_range range;
    lb_rounding rounding;
    double scale;
    lb_tensor *ox = NULL, *og = NULL, *quot = NULL;
    const float *x = NULL, *g = NULL;
    int n = 0;
    const int64_t numel = (int64_t)in[0]->numel;
    lb_status st = read_range_rounding(ctx, p, 0, &range, &rounding);
    if (st == LB_OK) st = op_param_double(ctx, p, "scale", 0.0, &scale);
    if (st == LB_OK) st = op_as_f32(ctx, in[0], "X", &ox, &x);
    if (st == LB_OK && n_in > 1) {
        if (in[1]->numel != in[0]->numel) st = lb_error(ctx, LB_ERR_ARG, "G must have as many elements as X");
        if (st == LB_OK) st = op_as_f32(ctx, in[1], "G", &og, &g);
    }
    float s = (float)scale;
    if (st == LB_OK && !(s > 0.0f)) st = lb_lsq_init_step_ref(ctx, numel, x, &s);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &quot);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_S8, &out[n++]);
    if (st == LB_OK)
        st = lb_lsq_quantize_ref(ctx, range, rounding, numel, x, s, lb_tensor_s8(out[0]), lb_tensor_f32(quot));
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &out[n++]);
    if (st == LB_OK)
        for (int64_t i = 0; i < numel; i++) lb_tensor_f32(out[1])[i] = s * (float)lb_tensor_s8(out[0])[i];
    if (st == LB_OK) st = op_make_scalar_f32(ctx, s, &out[n++]);
    if (st == LB_OK && g) {
        float gs = 0.0f;
        st = op_make_like(ctx, in[0], LB_F32, &out[n++]);
        if (st == LB_OK)
            st = lb_lsq_backward_ref(ctx, range, rounding, numel, lb_tensor_f32(quot), g, lb_tensor_f32(out[3]), &gs);
        if (st == LB_OK) st = op_make_scalar_f32(ctx, gs, &out[n++]);
    }
    lb_tensor_free(ox);
    lb_tensor_free(og);
    lb_tensor_free(quot);
    if (st != LB_OK) return free_outputs(out, n), st;
    *n_out = n;
    return LB_OK;
}

/* ---- bit-split ----------------------------------------------------------- */

static lb_status run_bit_split(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    int mode;
    lb_rounding rounding = LB_ROUND_HALF_EVEN;
    uint64_t layer, step;
    lb_tensor *og = NULL, *ou = NULL;
    const float *g = NULL, *u = NULL;
    int n = 0;
    const int64_t numel = (int64_t)in[0]->numel;
    lb_status st = op_param_choice(ctx, p, "mode", bs_choices, 0, &mode);
    if (st == LB_OK) {
        int t;
        st = op_param_choice(ctx, p, "rounding", rounding_choices, 0, &t);
        rounding = t ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
    }
    if (st == LB_OK) st = read_layer_step(ctx, p, &layer, &step);
    if (st == LB_OK) st = op_as_f32(ctx, in[0], "G", &og, &g);
    if (st == LB_OK && n_in > 1) {
        if (in[1]->numel != in[0]->numel) st = lb_error(ctx, LB_ERR_ARG, "U must have as many elements as G");
        if (st == LB_OK) st = op_as_f32(ctx, in[1], "U", &ou, &u);
    }
    float fine = 0.0f;
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_S8, &out[n++]);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_S8, &out[n++]);
    if (st == LB_OK)
        st = lb_bit_split_ref(ctx, mode ? LB_BS_CODE : LB_BS_CLEAN, rounding, numel, g, u, p->seed,
                              lb_hq_backward_streams(layer, step).bit_split, lb_tensor_s8(out[0]),
                              lb_tensor_s8(out[1]), &fine);
    if (st == LB_OK) st = op_make_scalar_f32(ctx, fine, &out[n++]);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &out[n++]);
    if (st == LB_OK)
        st = lb_bit_split_dequantize_ref(ctx, numel, lb_tensor_s8(out[0]), lb_tensor_s8(out[1]), fine,
                                         lb_tensor_f32(out[3]));
    lb_tensor_free(og);
    lb_tensor_free(ou);
    if (st != LB_OK) return free_outputs(out, n), st;
    *n_out = n;
    return LB_OK;
}

/* ---- lss-probs / lss-sample ---------------------------------------------- */

/* Scores (L) as doubles (caller frees), mode and budget (<= 0: L/2). */
static lb_status read_scores(lb_ctx *ctx, op_params *p, const lb_tensor *t, double **scores, lb_lss_mode *mode,
                             double *budget)
{
    int m;
    lb_status st = op_param_choice(ctx, p, "mode", lss_choices, 0, &m);
    if (st == LB_OK) st = op_param_double(ctx, p, "budget", 0.0, budget);
    if (st != LB_OK) return st;
    *mode = m == 0 ? LB_LSS_BERNOULLI : (m == 1 ? LB_LSS_NONZERO : LB_LSS_ALL);
    if (!(*budget > 0.0)) *budget = (double)t->numel / 2.0;
    if (t->dtype != LB_F32 && t->dtype != LB_F64)
        return lb_error(ctx, LB_ERR_ARG, "scores must be f32 or f64, got %s", lb_dtype_name(t->dtype));
    *scores = lb_alloc((t->numel ? t->numel : 1) * sizeof **scores);
    if (!*scores) return lb_error(ctx, LB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->numel; i++)
        (*scores)[i] = t->dtype == LB_F32 ? (double)lb_tensor_f32(t)[i] : lb_tensor_f64(t)[i];
    return LB_OK;
}

static lb_status run_lss_probs(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    (void)n_in;
    double *scores = NULL, *prob = NULL, budget;
    lb_lss_mode mode;
    const int64_t L = (int64_t)in[0]->numel;
    lb_status st = read_scores(ctx, p, in[0], &scores, &mode, &budget);
    if (st == LB_OK && !(prob = lb_alloc((size_t)(L ? L : 1) * sizeof *prob))) st = lb_error(ctx, LB_ERR_NOMEM, "out of memory");
    if (st == LB_OK) st = lb_lss_probabilities_ref(ctx, mode, L, scores, budget, prob, NULL);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &out[0]);
    if (st == LB_OK)
        for (int64_t i = 0; i < L; i++) lb_tensor_f32(out[0])[i] = (float)prob[i];
    lb_free(scores);
    lb_free(prob);
    if (st != LB_OK) return free_outputs(out, 1), st;
    *n_out = 1;
    return LB_OK;
}

static lb_status run_lss_sample(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out, int *n_out)
{
    double *scores = NULL, *prob = NULL, *weight = NULL, budget;
    lb_lss_mode mode;
    uint64_t layer, step;
    int which, n = 0;
    lb_tensor *orows = NULL;
    const float *rows = NULL;
    const int64_t L = (int64_t)in[0]->numel;
    int64_t R = 0, K = 0;
    lb_status st = read_scores(ctx, p, in[0], &scores, &mode, &budget);
    if (st == LB_OK) st = op_param_choice(ctx, p, "stream", stream_choices, 0, &which);
    if (st == LB_OK) st = read_layer_step(ctx, p, &layer, &step);
    if (st == LB_OK && n_in > 1) {
        st = op_matrix_shape(ctx, in[1], "R", &R, &K);
        if (st == LB_OK && R != L) st = lb_error(ctx, LB_ERR_ARG, "R must have one row per score (%lld), got %lld", (long long)L, (long long)R);
        if (st == LB_OK) st = op_as_f32(ctx, in[1], "R", &orows, &rows);
    }
    if (st == LB_OK && (!(prob = lb_alloc((size_t)(L ? L : 1) * sizeof *prob)) ||
                        !(weight = lb_alloc((size_t)(L ? L : 1) * sizeof *weight))))
        st = lb_error(ctx, LB_ERR_NOMEM, "out of memory");
    if (st == LB_OK) st = lb_lss_probabilities_ref(ctx, mode, L, scores, budget, prob, NULL);
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_U8, &out[n++]);
    if (st == LB_OK) {
        lb_hq_streams s = lb_hq_backward_streams(layer, step);
        st = lb_lss_sample_ref(ctx, L, prob, p->seed, which ? s.lss_input : s.lss_weight, lb_tensor_u8(out[0]), weight);
    }
    if (st == LB_OK) st = op_make_like(ctx, in[0], LB_F32, &out[n++]);
    if (st == LB_OK)
        for (int64_t i = 0; i < L; i++) lb_tensor_f32(out[1])[i] = (float)prob[i];
    if (st == LB_OK && rows) {
        st = op_make_like(ctx, in[1], LB_F32, &out[n++]);
        /* (float)((double)r · m/p): the unbiased row estimate */
        if (st == LB_OK)
            for (int64_t i = 0; i < L; i++)
                for (int64_t k = 0; k < K; k++)
                    lb_tensor_f32(out[2])[i * K + k] = (float)((double)rows[i * K + k] * weight[i]);
    }
    lb_free(scores);
    lb_free(prob);
    lb_free(weight);
    lb_tensor_free(orows);
    if (st != LB_OK) return free_outputs(out, n), st;
    *n_out = n;
    return LB_OK;
}

/* ---- qlinear-hq-forward / backward --------------------------------------- */

typedef struct layer_inputs {
    lb_tensor *ox, *ow, *ob;
    const float *x, *w, *b;
    int64_t N, D, C;
} layer_inputs;

static lb_status read_layer_inputs(lb_ctx *ctx, lb_tensor *const *in, int with_bias, layer_inputs *li)
{
    memset(li, 0, sizeof *li);
    lb_status st = require_2d(ctx, in[0], "X");
    if (st == LB_OK) st = require_2d(ctx, in[1], "W");
    if (st != LB_OK) return st;
    li->N = in[0]->shape[0], li->D = in[0]->shape[1], li->C = in[1]->shape[0];
    if (in[1]->shape[1] != li->D)
        return lb_error(ctx, LB_ERR_ARG, "W is (%lld, %lld) but X has D=%lld", (long long)in[1]->shape[0],
                        (long long)in[1]->shape[1], (long long)li->D);
    st = op_as_f32(ctx, in[0], "X", &li->ox, &li->x);
    if (st == LB_OK) st = op_as_f32(ctx, in[1], "W", &li->ow, &li->w);
    if (st == LB_OK && with_bias) {
        if ((int64_t)in[2]->numel != li->C) return lb_error(ctx, LB_ERR_ARG, "b must have C=%lld values", (long long)li->C);
        st = op_as_f32(ctx, in[2], "b", &li->ob, &li->b);
    }
    return st;
}

static void free_layer_inputs(layer_inputs *li)
{
    lb_tensor_free(li->ox);
    lb_tensor_free(li->ow);
    lb_tensor_free(li->ob);
}

/* Runs the forward into a fresh state, with fixed steps when given. */
static lb_status layer_forward(lb_ctx *ctx, const lb_hq_config *cfg, const layer_inputs *li, float sx, float sw,
                               lb_hq_state *state, float *y, int32_t *z)
{
    if (sx > 0.0f) {
        state->initialized = 1;
        state->step_x = sx;
        state->step_w = sw;
    }
    return lb_qlinear_hq_forward_ref(ctx, cfg, state, li->N, li->D, li->C, li->x, li->w, li->b, y, z);
}

static lb_status run_qlinear_forward(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                                     int *n_out)
{
    lb_hq_config cfg;
    layer_inputs li;
    lb_hq_state *state = NULL;
    float sx, sw;
    int n = 0;
    lb_status st = read_layer_config(ctx, p, 0, &cfg, &sx, &sw);
    if (st == LB_OK) st = read_layer_inputs(ctx, in, n_in > 2, &li);
    if (st == LB_OK) st = lb_hq_state_create(ctx, &state);
    if (st == LB_OK) st = op_make_2d(ctx, LB_F32, li.N, li.C, &out[n++]);
    if (st == LB_OK) st = op_make_2d(ctx, LB_S32, li.N, li.C, &out[n++]);
    if (st == LB_OK) st = layer_forward(ctx, &cfg, &li, sx, sw, state, lb_tensor_f32(out[0]), lb_tensor_s32(out[1]));
    if (st == LB_OK) st = op_make_2d(ctx, LB_S8, li.N, li.D, &out[n++]);
    if (st == LB_OK) memcpy(lb_tensor_s8(out[2]), state->x_codes, (size_t)(li.N * li.D));
    if (st == LB_OK) st = op_make_2d(ctx, LB_S8, li.C, li.D, &out[n++]);
    if (st == LB_OK) memcpy(lb_tensor_s8(out[3]), state->w_codes, (size_t)(li.C * li.D));
    if (st == LB_OK) st = op_make_scalar_f32(ctx, state->used_step_x, &out[n++]);
    if (st == LB_OK) st = op_make_scalar_f32(ctx, state->used_step_w, &out[n++]);
    if (st == LB_OK) st = op_make_scalar_s32(ctx, (int32_t)state->block, &out[n++]);
    free_layer_inputs(&li);
    lb_hq_state_free(state);
    if (st != LB_OK) return free_outputs(out, n), st;
    *n_out = n;
    return LB_OK;
}

static lb_status run_qlinear_backward(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                                      int *n_out)
{
    (void)n_in;
    lb_hq_config cfg;
    layer_inputs li;
    lb_hq_state *state = NULL;
    lb_tensor *ody = NULL;
    const float *dy = NULL;
    float sx, sw, *y = NULL;
    int64_t step;
    int n = 0;
    lb_status st = read_layer_config(ctx, p, 1, &cfg, &sx, &sw);
    if (st == LB_OK) st = op_param_int(ctx, p, "step", 0, &step);
    if (st == LB_OK && (step < 0 || step > 0xffffffffLL)) st = lb_error(ctx, LB_ERR_ARG, "step must be in [0, 2^32)");
    if (st == LB_OK) st = read_layer_inputs(ctx, in, 0, &li);
    if (st == LB_OK && (in[2]->ndim != 2 || in[2]->shape[0] != li.N || in[2]->shape[1] != li.C))
        st = lb_error(ctx, LB_ERR_ARG, "dY must be (N, C) = (%lld, %lld)", (long long)li.N, (long long)li.C);
    if (st == LB_OK) st = op_as_f32(ctx, in[2], "dY", &ody, &dy);
    if (st == LB_OK) st = lb_hq_state_create(ctx, &state);
    if (st == LB_OK && !(y = lb_alloc((size_t)(li.N * li.C > 0 ? li.N * li.C : 1) * sizeof *y)))
        st = lb_error(ctx, LB_ERR_NOMEM, "out of memory");
    if (st == LB_OK) st = layer_forward(ctx, &cfg, &li, sx, sw, state, y, NULL);
    if (st == LB_OK) st = op_make_2d(ctx, LB_F32, li.N, li.D, &out[n++]);
    if (st == LB_OK) st = op_make_2d(ctx, LB_F32, li.C, li.D, &out[n++]);
    if (st == LB_OK) st = op_make_1d(ctx, LB_F32, li.C, &out[n++]);
    if (st == LB_OK) st = op_make_2d(ctx, LB_S8, li.N, li.C, &out[n + 2]);
    if (st == LB_OK) st = op_make_2d(ctx, LB_S8, li.N, li.C, &out[n + 3]);
    lb_hq_backward_trace trace;
    memset(&trace, 0, sizeof trace);
    float gsx = 0.0f, gsw = 0.0f;
    if (st == LB_OK) {
        trace.hi = lb_tensor_s8(out[n + 2]);
        trace.lo = lb_tensor_s8(out[n + 3]);
        st = lb_qlinear_hq_backward_ref(ctx, &cfg, state, (uint64_t)step, dy, lb_tensor_f32(out[0]), lb_tensor_f32(out[1]),
                                        lb_tensor_f32(out[2]), &gsx, &gsw, &trace);
    }
    if (st == LB_OK) st = op_make_scalar_f32(ctx, gsx, &out[n++]);
    if (st == LB_OK) st = op_make_scalar_f32(ctx, gsw, &out[n++]);
    if (st == LB_OK) n += 2; /* hi, lo */
    if (st == LB_OK) st = op_make_scalar_f32(ctx, trace.fine_scale, &out[n++]);
    free_layer_inputs(&li);
    lb_tensor_free(ody);
    lb_hq_state_free(state);
    lb_free(y);
    if (st != LB_OK) return free_outputs(out, OP_MAX_OUTPUTS), st;
    *n_out = n;
    return LB_OK;
}

/* ---- the table ----------------------------------------------------------- */

#define LAYER_PARAMS                                                                                    \
    "preset=paper|code (defaults of the keys below: paper [-7,7]/even/clean/bernoulli, code "          \
    "[-8,7]/away/code/nonzero); block=0 (0 = search 1..max_block) max_block=1024; range=paper|code; " \
    "rounding=even|away; scale_x=0 scale_w=0 (0 = LSQ init rule 2 mean|XH|/sqrt 7 + 1e-10); "         \
    "layer=0 (RNG stream sub-id)"

const op_def ops_xi[] = {
    {"hadamard", "block Walsh-Hadamard transform Y = X BlockDiag(H_b), Sylvester order (Xi et al. 2023 §3.3; spec 1.3)",
     "X (..., D) f32", "Y (..., D) f32", "block=32 (power of two dividing D)", 1, 1, run_hadamard},
    {"hq",
     "Hadamard quantizer: LSQ int4 codes of X H_b, block searched by min |X~-X||W~-W| (Xi et al. 2023 §3.3, A.5; spec A.2)",
     "X (rows, D) f32 [, W (rows_w, D) f32: search on the pair]",
     "codes_X (rows, D) s8, scale_X () f32, block () s32, errors (11) f32 (-1 = not a candidate) "
     "[, codes_W s8, scale_W () f32]",
     "block=0 (0 = search) max_block=1024 range=paper|code rounding=even|away scale=0 scale_w=0 "
     "(0 = LSQ init rule)",
     1, 2, run_hq},
    {"lsq", "LSQ int4 quantizer and its straight-through/step-size gradient (Esser et al. 2020; Xi et al. A.3; spec 1.2)",
     "X (...) f32 [, G (...) f32 = dL/dQ]",
     "codes (...) s8, Q (...) f32 = scale*codes, scale () f32 [, grad_X (...) f32, grad_scale () f32]",
     "scale=0 (0 = init rule 2 mean|X|/sqrt 7 + 1e-10) range=paper|code rounding=even|away", 1, 2, run_lsq},
    {"bit-split",
     "bit splitting dY ~ s_fine (14 hi + lo), hi/lo int4, lo stochastic (Xi et al. 2023 Eq. 5; spec A.4)",
     "G (...) f32 [, U (...) f32 uniforms in [0,1) replacing the RNG]",
     "hi (...) s8, lo (...) s8, fine_scale () f32, dequantized (...) f32",
     "mode=clean|code rounding=even|away (high nibble tie rule) layer=0 step=0 (stream "
     "lb_rng_stream(\"xi.bs\", layer*2^32+step), f32 uniform of flat index i; key --seed)",
     1, 2, run_bit_split},
    {"lss-probs", "leverage score sampling probabilities with budget sum p = B (Xi et al. 2023 A.2; spec A.5)",
     "scores (L) f32|f64", "p (L) f32", "mode=bernoulli|nonzero|all budget=0 (0 = L/2)", 1, 1, run_lss_probs},
    {"lss-sample", "LSS Bernoulli row masks m = [u < p] and unbiased rows R*m/p (Xi et al. 2023 Eq. 6-8; spec A.5)",
     "scores (L) f32|f64 [, R (L, K) f32 rows to rescale]", "mask (L) u8, p (L) f32 [, R*m/p (L, K) f32]",
     "mode=bernoulli|nonzero|all budget=0 (0 = L/2) stream=weight|input layer=0 step=0 (stream "
     "lb_rng_stream(\"xi.lss.<stream>\", layer*2^32+step), f64 uniform of row i; key --seed)",
     1, 2, run_lss_sample},
    {"qlinear-hq-forward",
     "HQ linear forward Y = s_X s_W (Xq Wq^T) + b, int4 codes, int32 GEMM (Xi et al. 2023 Eq. 3; spec A.2, A.6)",
     "X (N, D) f32, W (C, D) f32 [, b (C) f32]",
     "Y (N, C) f32, Z (N, C) s32, codes_X (N, D) s8, codes_W (C, D) s8, scale_X () f32, scale_W () f32, "
     "block () s32",
     LAYER_PARAMS, 2, 3, run_qlinear_forward},
    {"qlinear-hq-backward",
     "HQ linear backward: BS + LSS int4 GEMMs, LSQ masks, inverse Hadamard (Xi et al. 2023 §4, A.3; spec A.3-A.6)",
     "X (N, D) f32, W (C, D) f32, dY (N, C) f32 (the forward is recomputed)",
     "dX (N, D) f32, dW (C, D) f32, db (C) f32, grad_scale_X () f32, grad_scale_W () f32, hi (N, C) s8, "
     "lo (N, C) s8, fine_scale () f32",
     LAYER_PARAMS "; bs=clean|code; lss=bernoulli|nonzero|all; budget=0 (0 = N); step=0; key --seed", 3, 3,
     run_qlinear_backward},
};
const size_t ops_xi_count = sizeof ops_xi / sizeof ops_xi[0];

/* cli/ops_luq.c — `lowbit op` entries of the LUQ group (Chmiel et al., ICLR
 * 2023): sawb, luq, luq-smp, qlinear-luq-forward, qlinear-luq-backward.
 * Pages: doc/algorithms/{sawb,luq,smp,qlinear-luq}.md. Float inputs may be
 * f32 or f64 (converted to f32 first); codes are s8, integer sums s32. */
#include "config.h"
#include "op.h"
#include "lowbit/ref/sawb.h"
#include "lowbit/ref/luq.h"
#include "lowbit/ref/qlinear_luq.h"

#include <string.h>

static void free_outputs(lb_tensor **out, int n)
{
    for (int i = 0; i < n; i++) {
        lb_tensor_free(out[i]);
        out[i] = NULL;
    }
}

/* ---- parameters shared by the LUQ ops ---------------------------------- */

static const char *const underflow_choices[] = {"stochastic", "nearest", "flush", "on", "off", NULL};
static const char *const rounding_choices[] = {"stochastic", "nearest", "rtn", NULL};
static const char *const grid_choices[] = {"int4", "code", NULL};

static lb_status read_luq_params(lb_ctx *ctx, op_params *p, lb_luq_params *luq)
{
    int64_t levels, sample;
    int uf, rd;
    lb_status st;
    *luq = lb_luq_default_params();
    if ((st = op_param_int(ctx, p, "levels", LB_LUQ_LEVELS_DEFAULT, &levels)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "sample", 0, &sample)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "underflow", underflow_choices, 0, &uf)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "rounding", rounding_choices, 0, &rd)) != LB_OK) return st;
    if (levels < 1 || levels > LB_LUQ_MAX_LEVELS)
        return lb_error(ctx, LB_ERR_ARG, "levels=%lld outside [1, %d]", (long long)levels, LB_LUQ_MAX_LEVELS);
    if (sample < 0) return lb_error(ctx, LB_ERR_ARG, "sample=%lld must be >= 0", (long long)sample);
    static const lb_luq_underflow uf_map[] = {LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_UNDERFLOW_NEAREST,
                                              LB_LUQ_UNDERFLOW_FLUSH, LB_LUQ_UNDERFLOW_STOCHASTIC,
                                              LB_LUQ_UNDERFLOW_NEAREST};
    luq->levels = (int)levels;
    luq->sample = (uint64_t)sample;
    luq->underflow = uf_map[uf];
    luq->rounding = rd == 0 ? LB_LUQ_ROUND_STOCHASTIC : LB_LUQ_ROUND_NEAREST;
    luq->seed = p->seed;
    return LB_OK;
}

static lb_status read_samples(lb_ctx *ctx, op_params *p, int *samples)
{
    int64_t s;
    lb_status st = op_param_int(ctx, p, "samples", 1, &s);
    if (st != LB_OK) return st;
    if (s < 1 || s > LB_LUQ_MAX_SAMPLES)
        return lb_error(ctx, LB_ERR_ARG, "samples=%lld outside [1, %d]", (long long)s, LB_LUQ_MAX_SAMPLES);
    *samples = (int)s;
    return LB_OK;
}

static lb_status read_forward_config(lb_ctx *ctx, op_params *p, lb_qlinear_luq_config *cfg)
{
    int grid;
    lb_status st;
    if ((st = op_param_choice(ctx, p, "grid", grid_choices, 0, &grid)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "c1", LB_SAWB_C1, &cfg->c1)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "c2", LB_SAWB_C2, &cfg->c2)) != LB_OK) return st;
    cfg->grid = grid == 0 ? LB_SAWB_GRID_INT4 : LB_SAWB_GRID_CODE;
    return LB_OK;
}

/* ---- sawb --------------------------------------------------------------- */

static lb_status run_sawb(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                          int *n_out)
{
    (void)n_in;
    lb_sawb_params sp = lb_sawb_default_params();
    int64_t qn, qp;
    lb_status st;
    if ((st = op_param_int(ctx, p, "qn", -7, &qn)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "qp", 7, &qp)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "c1", LB_SAWB_C1, &sp.c1)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "c2", LB_SAWB_C2, &sp.c2)) != LB_OK) return st;
    if (qn < -128 || qn > 0 || qp < 1 || qp > 127)
        return lb_error(ctx, LB_ERR_ARG, "need -128 <= qn <= 0 < qp <= 127, got qn=%lld qp=%lld",
                        (long long)qn, (long long)qp);
    sp.qn = (int)qn;
    sp.qp = (int)qp;
    lb_tensor *tmp;
    const float *x;
    if ((st = op_as_f32(ctx, in[0], "X", &tmp, &x)) != LB_OK) return st;
    float scale = 0.0f;
    if ((st = op_make_like(ctx, in[0], LB_S8, &out[0])) != LB_OK) goto fail;
    if ((st = op_make_like(ctx, in[0], LB_F32, &out[2])) != LB_OK) goto fail;
    st = lb_sawb_quantize_ref(ctx, &sp, x, in[0]->numel, lb_tensor_s8(out[0]), &scale,
                              lb_tensor_f32(out[2]));
    if (st != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, scale, &out[1])) != LB_OK) goto fail;
    *n_out = 3;
    lb_tensor_free(tmp);
    return LB_OK;
fail:
    free_outputs(out, 3);
    lb_tensor_free(tmp);
    return st;
}

/* ---- luq ---------------------------------------------------------------- */

static lb_status run_luq(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                         int *n_out)
{
    (void)n_in;
    lb_luq_params lp;
    lb_status st = read_luq_params(ctx, p, &lp);
    if (st != LB_OK) return st;
    lb_tensor *tmp;
    const float *x;
    if ((st = op_as_f32(ctx, in[0], "G", &tmp, &x)) != LB_OK) return st;
    float alpha = 0.0f;
    if ((st = op_make_like(ctx, in[0], LB_F32, &out[0])) != LB_OK) goto fail;
    if ((st = op_make_like(ctx, in[0], LB_S8, &out[1])) != LB_OK) goto fail;
    st = lb_luq_quantize_ref(ctx, &lp, x, in[0]->numel, lb_tensor_s8(out[1]), lb_tensor_f32(out[0]), &alpha);
    if (st != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, alpha, &out[2])) != LB_OK) goto fail;
    *n_out = 3;
    lb_tensor_free(tmp);
    return LB_OK;
fail:
    free_outputs(out, 3);
    lb_tensor_free(tmp);
    return st;
}

static lb_status run_luq_smp(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in, lb_tensor **out,
                             int *n_out)
{
    (void)n_in;
    lb_luq_params lp;
    int samples;
    lb_status st = read_luq_params(ctx, p, &lp);
    if (st != LB_OK) return st;
    if ((st = read_samples(ctx, p, &samples)) != LB_OK) return st;
    lb_tensor *tmp;
    const float *x;
    if ((st = op_as_f32(ctx, in[0], "G", &tmp, &x)) != LB_OK) return st;
    float alpha = 0.0f;
    if ((st = op_make_like(ctx, in[0], LB_F32, &out[0])) != LB_OK) goto fail;
    if ((st = op_make_like(ctx, in[0], LB_S32, &out[1])) != LB_OK) goto fail;
    st = lb_luq_smp_ref(ctx, &lp, samples, x, in[0]->numel, lb_tensor_f32(out[0]), lb_tensor_s32(out[1]),
                        &alpha);
    if (st != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, alpha, &out[2])) != LB_OK) goto fail;
    *n_out = 3;
    lb_tensor_free(tmp);
    return LB_OK;
fail:
    free_outputs(out, 3);
    lb_tensor_free(tmp);
    return st;
}

/* ---- qlinear-luq-forward / backward -------------------------------------- */

static lb_status check_2d(lb_ctx *ctx, const lb_tensor *t, const char *what)
{
    if (t->ndim != 2) return lb_error(ctx, LB_ERR_ARG, "%s must be 2-D, got %d dimensions", what, t->ndim);
    return LB_OK;
}

static lb_status run_qlinear_forward(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                                     lb_tensor **out, int *n_out)
{
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    lb_status st = read_forward_config(ctx, p, &cfg);
    if (st != LB_OK) return st;
    if ((st = check_2d(ctx, in[0], "X")) != LB_OK || (st = check_2d(ctx, in[1], "W")) != LB_OK) return st;
    const int64_t N = in[0]->shape[0], D = in[0]->shape[1], C = in[1]->shape[0];
    if (in[1]->shape[1] != D)
        return lb_error(ctx, LB_ERR_ARG, "W has %lld columns, X has %lld", (long long)in[1]->shape[1],
                        (long long)D);
    if (n_in == 3 && (in[2]->numel != (size_t)C))
        return lb_error(ctx, LB_ERR_ARG, "b must hold C=%lld values, got %zu", (long long)C, in[2]->numel);
    lb_tensor *tx = NULL, *tw = NULL, *tb = NULL;
    const float *x, *w, *b = NULL;
    float sx = 0.0f, sw = 0.0f;
    if ((st = op_as_f32(ctx, in[0], "X", &tx, &x)) != LB_OK) goto fail;
    if ((st = op_as_f32(ctx, in[1], "W", &tw, &w)) != LB_OK) goto fail;
    if (n_in == 3 && (st = op_as_f32(ctx, in[2], "b", &tb, &b)) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_F32, N, C, &out[0])) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_S8, N, D, &out[1])) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_S8, C, D, &out[3])) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_S32, N, C, &out[5])) != LB_OK) goto fail;
    st = lb_qlinear_luq_forward_ref(ctx, &cfg, N, D, C, x, w, b, NULL, lb_tensor_s8(out[1]), &sx,
                                    lb_tensor_s8(out[3]), &sw, lb_tensor_s32(out[5]), lb_tensor_f32(out[0]));
    if (st != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, sx, &out[2])) != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, sw, &out[4])) != LB_OK) goto fail;
    *n_out = 6;
    lb_tensor_free(tx);
    lb_tensor_free(tw);
    lb_tensor_free(tb);
    return LB_OK;
fail:
    free_outputs(out, 6);
    lb_tensor_free(tx);
    lb_tensor_free(tw);
    lb_tensor_free(tb);
    return st;
}

static lb_status run_qlinear_backward(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                                      lb_tensor **out, int *n_out)
{
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    lb_status st = read_forward_config(ctx, p, &cfg);
    if (st != LB_OK) return st;
    if ((st = read_luq_params(ctx, p, &cfg.luq)) != LB_OK) return st;
    if ((st = read_samples(ctx, p, &cfg.samples)) != LB_OK) return st;
    if (n_in != 3 && n_in != 5)
        return lb_error(ctx, LB_ERR_ARG, "qlinear-luq-backward takes dY, X, W (f32) or dY, Xq, sx, Wq, sw");
    const lb_tensor *tX = in[1], *tW = in[n_in == 3 ? 2 : 3];
    if ((st = check_2d(ctx, in[0], "dY")) != LB_OK || (st = check_2d(ctx, tX, "X")) != LB_OK ||
        (st = check_2d(ctx, tW, "W")) != LB_OK)
        return st;
    const int64_t N = in[0]->shape[0], C = in[0]->shape[1], D = tX->shape[1];
    if (tX->shape[0] != N || tW->shape[0] != C || tW->shape[1] != D)
        return lb_error(ctx, LB_ERR_ARG, "shapes do not match: dY (N, C), X (N, D), W (C, D)");
    lb_tensor *tdy = NULL, *txf = NULL, *twf = NULL, *xq = NULL, *wq = NULL;
    const float *dy;
    float sx = 0.0f, sw = 0.0f, alpha = 0.0f;
    const int8_t *xc, *wc;
    if ((st = op_as_f32(ctx, in[0], "dY", &tdy, &dy)) != LB_OK) goto fail;
    if (n_in == 3) {
        /* Float X, W: quantize them as the forward would (same grids). */
        const float *x, *w;
        if ((st = op_as_f32(ctx, tX, "X", &txf, &x)) != LB_OK) goto fail;
        if ((st = op_as_f32(ctx, tW, "W", &twf, &w)) != LB_OK) goto fail;
        if ((st = op_make_2d(ctx, LB_S8, N, D, &xq)) != LB_OK) goto fail;
        if ((st = op_make_2d(ctx, LB_S8, C, D, &wq)) != LB_OK) goto fail;
        if ((st = op_make_2d(ctx, LB_F32, N, C, &out[0])) != LB_OK) goto fail; /* scratch Y */
        st = lb_qlinear_luq_forward_ref(ctx, &cfg, N, D, C, x, w, NULL, NULL, lb_tensor_s8(xq), &sx,
                                        lb_tensor_s8(wq), &sw, NULL, lb_tensor_f32(out[0]));
        lb_tensor_free(out[0]);
        out[0] = NULL;
        if (st != LB_OK) goto fail;
        xc = lb_tensor_s8(xq);
        wc = lb_tensor_s8(wq);
    } else {
        if (in[1]->dtype != LB_S8 || in[3]->dtype != LB_S8) {
            st = lb_error(ctx, LB_ERR_ARG, "Xq and Wq must be s8 codes");
            goto fail;
        }
        if ((st = op_scalar_f32(ctx, in[2], "sx", &sx)) != LB_OK) goto fail;
        if ((st = op_scalar_f32(ctx, in[4], "sw", &sw)) != LB_OK) goto fail;
        xc = lb_tensor_s8(in[1]);
        wc = lb_tensor_s8(in[3]);
    }
    if ((st = op_make_2d(ctx, LB_F32, N, D, &out[0])) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_F32, C, D, &out[1])) != LB_OK) goto fail;
    if ((st = lb_tensor_create(ctx, LB_F32, 1, &C, &out[2])) != LB_OK) goto fail;
    if ((st = op_make_2d(ctx, LB_S8, N, C, &out[4])) != LB_OK) goto fail;
    st = lb_qlinear_luq_backward_ref(ctx, &cfg, N, D, C, dy, xc, sx, wc, sw, lb_tensor_f32(out[0]),
                                     lb_tensor_f32(out[1]), lb_tensor_f32(out[2]), &alpha);
    if (st != LB_OK) goto fail;
    if ((st = op_make_scalar_f32(ctx, alpha, &out[3])) != LB_OK) goto fail;
    /* The codes of the first sample, for checking another implementation. */
    st = lb_luq_quantize_ref(ctx, &cfg.luq, dy, (size_t)(N * C), lb_tensor_s8(out[4]), NULL, NULL);
    if (st != LB_OK) goto fail;
    *n_out = 5;
    goto done;
fail:
    free_outputs(out, 5);
done:
    lb_tensor_free(tdy);
    lb_tensor_free(txf);
    lb_tensor_free(twf);
    lb_tensor_free(xq);
    lb_tensor_free(wq);
    return st;
}

#define LUQ_PARAMS                                                                                  \
    "levels=8 magnitudes L (alpha = max|G|/2^(L-1); 7 = strict 4-bit, 5 = paper Eq. 11); "          \
    "underflow=stochastic|nearest|flush (on = stochastic, off = nearest); "                         \
    "rounding=stochastic|nearest (rtn = nearest); sample=0 SMP sample index s (streams "            \
    "luq.underflow/luq.round, sub s); --seed keys the RNG"

const op_def ops_luq[] = {
    {"sawb", "SAWB INT4 forward quantizer, RTN ties-to-even (Chmiel et al. 2023 §6; spec B.2)",
     "X (any shape) f32", "Q (same shape) s8 codes, S () f32 scale, Xhat (same shape) f32 = S*Q",
     "qn=-7 qp=7 integer range; c1=12.1 c2=12.2 clip = c1*rms(X) - c2*mean|X|", 1, 1, run_sawb},
    {"luq", "LUQ log-unbiased gradient quantizer (Chmiel et al. 2023 Eqs. 10-12; spec B.3)",
     "G (any shape) f32", "V (same shape) f32 dequantized, codes (same shape) s8 = sign*(k+1) for alpha*2^k, "
     "alpha () f32", LUQ_PARAMS, 1, 1, run_luq},
    {"luq-smp", "SMP: mean of S independent LUQ samples (Chmiel et al. 2023 §5.1; spec B.4)",
     "G (any shape) f32", "mean (same shape) f32, sum (same shape) s32 = sum over samples of +-2^k, "
     "alpha () f32", "samples=1 S; " LUQ_PARAMS " (sample j uses sub sample+j)", 1, 1, run_luq_smp},
    {"qlinear-luq-forward", "LUQ linear layer forward Y = Xq Wq^T*sx*sw (+ b), int GEMM (spec B.7)",
     "X (N, D) f32, W (C, D) f32, [b (C) f32]",
     "Y (N, C) f32, Xq (N, D) s8, sx () f32, Wq (C, D) s8, sw () f32, Z (N, C) s32 = Xq Wq^T",
     "grid=int4|code (int4: W [-7,7], X [0,15] if X >= 0 else [-7,7]; code: W [-8,8], X [0,15] or "
     "[-8,15]); c1=12.1 c2=12.2",
     2, 3, run_qlinear_forward},
    {"qlinear-luq-backward",
     "LUQ linear layer backward: dX = LUQ(dY) Wq, dW = LUQ(dY)^T Xq, exact int GEMMs, SMP (spec B.7)",
     "dY (N, C) f32, then X (N, D) f32, W (C, D) f32 (quantized as the forward does) or "
     "Xq (N, D) s8, sx () f32, Wq (C, D) s8, sw () f32",
     "dX (N, D) f32, dW (C, D) f32, db (C) f32, alpha () f32, codes (N, C) s8 of sample `sample`",
     "samples=1 S; " LUQ_PARAMS "; grid=int4|code c1=12.1 c2=12.2 (used with float X, W)", 3, 5,
     run_qlinear_backward},
};
const size_t ops_luq_count = sizeof ops_luq / sizeof ops_luq[0];

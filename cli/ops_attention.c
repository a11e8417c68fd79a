/* cli/ops_attention.c — `lowbit op` entries for outlier-free attention
 * (Bondarenko et al. 2023): softmax, clipped softmax and its backward, the
 * attention gate and its backward, inf norm and kurtosis.
 *
 * Every op converts its float inputs (f32 or f64) to double and runs the
 * double reference; outputs are f64 when every float input is f64, else f32
 * (for f32 inputs this equals calling the float entry points, which round the
 * same double result once). See doc/algorithms/{clipped-softmax,
 * gated-attention,outlier-metrics}.md.
 */
#include "config.h"
#include "op.h"
#include "lowbit/alloc.h"
#include "lowbit/ref/clipped_softmax.h"
#include "lowbit/ref/gated_attention.h"
#include "lowbit/ref/outlier_metrics.h"

#include <math.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static int is_float(const lb_tensor *t) { return t->dtype == LB_F32 || t->dtype == LB_F64; }

/* Output dtype: f64 when every input is f64, else f32. */
static lb_dtype out_dtype(lb_tensor *const *in, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (in[i]->dtype != LB_F64) return LB_F32;
    return LB_F64;
}

/* A double copy of a float tensor (*buf freed with lb_free). */
static lb_status to_f64(lb_ctx *ctx, const lb_tensor *t, const char *name, double **buf)
{
    *buf = NULL;
    if (!is_float(t))
        return lb_error(ctx, LB_ERR_ARG, "input %s must be f32 or f64, got %s", name,
                        lb_dtype_name(t->dtype));
    double *b = lb_alloc((t->numel ? t->numel : 1) * sizeof(double));
    if (!b) return lb_error(ctx, LB_ERR_NOMEM, "out of memory converting %s", name);
    for (size_t i = 0; i < t->numel; i++)
        b[i] = t->dtype == LB_F64 ? lb_tensor_f64(t)[i] : (double)lb_tensor_f32(t)[i];
    *buf = b;
    return LB_OK;
}

/* Creates a tensor of `dtype` and `shape` holding vals (numel values). */
static lb_status make_out(lb_ctx *ctx, lb_dtype dtype, int ndim, const int64_t *shape,
                          const double *vals, lb_tensor **out)
{
    lb_status st = lb_tensor_create(ctx, dtype, ndim, shape, out);
    if (st != LB_OK) return st;
    for (size_t i = 0; i < (*out)->numel; i++) {
        if (dtype == LB_F64)
            lb_tensor_f64(*out)[i] = vals[i];
        else
            lb_tensor_f32(*out)[i] = (float)vals[i];
    }
    return LB_OK;
}

static int same_shape(const lb_tensor *a, const lb_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* rows x cols view over the last axis. */
static lb_status last_axis_rows(lb_ctx *ctx, const lb_tensor *x, int64_t *rows, int64_t *cols)
{
    if (x->ndim < 1) return lb_error(ctx, LB_ERR_ARG, "X must have at least one dimension");
    *cols = x->shape[x->ndim - 1];
    *rows = *cols > 0 ? (int64_t)x->numel / *cols : 0;
    return LB_OK;
}

/* gamma and zeta from gamma=, zeta= or alpha= with T= (spec §1.2). */
static lb_status softmax_params(lb_ctx *ctx, op_params *p, double *gamma, double *zeta)
{
    double g, z, alpha, T;
    lb_status st;
    if ((st = op_param_double(ctx, p, "gamma", NAN, &g)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "zeta", NAN, &z)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "alpha", NAN, &alpha)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "T", NAN, &T)) != LB_OK) return st;
    if (!isnan(alpha) || !isnan(T)) {
        if (isnan(alpha) || isnan(T))
            return lb_error(ctx, LB_ERR_ARG, "alpha= and T= go together (gamma = -alpha/T)");
        if (!isnan(g))
            return lb_error(ctx, LB_ERR_ARG, "give gamma= or alpha= with T=, not both");
        if ((st = lb_clipped_softmax_gamma_from_alpha(ctx, alpha, T, &g)) != LB_OK) return st;
    }
    *gamma = isnan(g) ? 0.0 : g;
    *zeta = isnan(z) ? 1.0 : z;
    return lb_clipped_softmax_check(ctx, *gamma, *zeta);
}

/* ---- softmax / clipped softmax ------------------------------------------ */

static lb_status run_softmax_common(lb_ctx *ctx, double gamma, double zeta, lb_tensor *const *in,
                                    int n_in, lb_tensor **out, int *n_out)
{
    int64_t rows = 0, cols = 0;
    lb_status st = last_axis_rows(ctx, in[0], &rows, &cols);
    if (st != LB_OK) return st;
    double *x = NULL;
    if ((st = to_f64(ctx, in[0], "X", &x)) != LB_OK) return st;
    st = lb_clipped_softmax_ref_f64(ctx, rows, cols, gamma, zeta, x, x);
    if (st == LB_OK) st = make_out(ctx, out_dtype(in, n_in), in[0]->ndim, in[0]->shape, x, &out[0]);
    if (st == LB_OK) *n_out = 1;
    lb_free(x);
    return st;
}

static lb_status run_softmax(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                             lb_tensor **out, int *n_out)
{
    (void)p;
    return run_softmax_common(ctx, 0.0, 1.0, in, n_in, out, n_out);
}

static lb_status run_clipped_softmax(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                                     lb_tensor **out, int *n_out)
{
    double gamma, zeta;
    lb_status st = softmax_params(ctx, p, &gamma, &zeta);
    if (st != LB_OK) return st;
    return run_softmax_common(ctx, gamma, zeta, in, n_in, out, n_out);
}

static lb_status run_clipped_softmax_backward(lb_ctx *ctx, op_params *p, lb_tensor *const *in,
                                              int n_in, lb_tensor **out, int *n_out)
{
    double gamma, zeta;
    lb_status st = softmax_params(ctx, p, &gamma, &zeta);
    if (st != LB_OK) return st;
    if (!same_shape(in[0], in[1])) return lb_error(ctx, LB_ERR_ARG, "X and dY differ in shape");
    int64_t rows = 0, cols = 0;
    if ((st = last_axis_rows(ctx, in[0], &rows, &cols)) != LB_OK) return st;
    double *x = NULL, *dy = NULL;
    if ((st = to_f64(ctx, in[0], "X", &x)) == LB_OK && (st = to_f64(ctx, in[1], "dY", &dy)) == LB_OK)
        st = lb_clipped_softmax_backward_ref_f64(ctx, rows, cols, gamma, zeta, x, dy, dy);
    if (st == LB_OK)
        st = make_out(ctx, out_dtype(in, n_in), in[0]->ndim, in[0]->shape, dy, &out[0]);
    if (st == LB_OK) *n_out = 1;
    lb_free(x);
    lb_free(dy);
    return st;
}

/* ---- gate --------------------------------------------------------------- */

static const char *const gate_variants[] = {"linear", "mlp", "all-heads", "unconditional", NULL};
static const char *const gate_pools[] = {"token", "sequence", NULL};
/* parameter inputs per variant, in command-line order after X */
static const int gate_n_params[] = {2, 4, 2, 1};

/* Builds the config from the parameters and the shapes of X and the weight
 * inputs in[1..]; *n_w = number of weight inputs; *tokens, *d_model. */
static lb_status gate_setup(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                            int extra_inputs, lb_gate_config *cfg, int *n_w, int64_t *tokens)
{
    int variant, pool;
    double scale;
    int64_t seq_len;
    lb_status st;
    if ((st = op_param_choice(ctx, p, "variant", gate_variants, 0, &variant)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "pool", gate_pools, 0, &pool)) != LB_OK) return st;
    if ((st = op_param_double(ctx, p, "scale", 1.0, &scale)) != LB_OK) return st;
    if ((st = op_param_int(ctx, p, "seq-len", 0, &seq_len)) != LB_OK) return st;
    const lb_gate_kind kind = (lb_gate_kind)variant;
    *n_w = gate_n_params[variant];
    if (n_in != 1 + *n_w + extra_inputs)
        return lb_error(ctx, LB_ERR_ARG, "variant=%s takes %d inputs (X, %s%s), got %d",
                        gate_variants[variant], 1 + *n_w + extra_inputs,
                        kind == LB_GATE_MLP             ? "W1, b1, W2, b2"
                        : kind == LB_GATE_UNCONDITIONAL ? "b"
                                                        : "W, b",
                        extra_inputs ? ", dG" : "", n_in);
    const lb_tensor *x = in[0];
    if (x->ndim < 1 || x->shape[x->ndim - 1] < 1)
        return lb_error(ctx, LB_ERR_ARG, "X must be (..., d_model) with d_model >= 1");
    const int64_t D = x->shape[x->ndim - 1];
    *tokens = (int64_t)x->numel / D;
    const lb_tensor *w = in[1];
    int64_t H, dh, n = 1;
    switch (kind) {
    case LB_GATE_LINEAR:
        if (w->ndim != 2) return lb_error(ctx, LB_ERR_ARG, "linear gate: W must be (H, d_head)");
        H = w->shape[0], dh = w->shape[1];
        break;
    case LB_GATE_MLP:
        if (w->ndim != 3) return lb_error(ctx, LB_ERR_ARG, "mlp gate: W1 must be (H, n_hid, d_head)");
        H = w->shape[0], n = w->shape[1], dh = w->shape[2];
        break;
    case LB_GATE_ALL_HEADS:
        if (w->ndim != 2 || w->shape[1] != D)
            return lb_error(ctx, LB_ERR_ARG, "all-heads gate: W must be (H, d_model=%lld)",
                            (long long)D);
        H = w->shape[0], dh = H > 0 ? D / H : 0;
        break;
    case LB_GATE_UNCONDITIONAL:
    default:
        if (w->ndim != 1) return lb_error(ctx, LB_ERR_ARG, "unconditional gate: b must be (H)");
        H = w->shape[0], dh = H > 0 ? D / H : 0;
        break;
    }
    if (H < 1 || dh < 1 || H * dh != D)
        return lb_error(ctx, LB_ERR_ARG, "X has d_model=%lld, which is not n_heads=%lld x d_head=%lld",
                        (long long)D, (long long)H, (long long)dh);
    *cfg = lb_gate_config_default(kind, H, dh);
    cfg->n_hidden = n;
    cfg->pool = (lb_gate_pool)pool;
    cfg->scale = scale;
    if (cfg->pool == LB_GATE_PER_SEQUENCE) {
        if (seq_len == 0 && x->ndim >= 3) seq_len = x->shape[x->ndim - 2];
        if (seq_len < 1)
            return lb_error(ctx, LB_ERR_ARG, "pool=sequence needs seq-len= (or X as (B, T, d_model))");
        cfg->seq_len = seq_len;
    }
    if ((st = lb_gate_config_check(ctx, cfg)) != LB_OK) return st;
    /* every weight input must have its documented shape (element count and
     * leading dimension H) */
    int64_t counts[4];
    if ((st = lb_gate_param_counts(ctx, cfg, counts)) != LB_OK) return st;
    static const char *const names[4] = {"W/W1", "b/b1", "W2", "b2"};
    int k = 1;
    for (int i = 0; i < 4; i++) {
        if (counts[i] == 0) continue;
        const lb_tensor *t = in[k++];
        if ((int64_t)t->numel != counts[i] || t->ndim < 1 || t->shape[0] != H)
            return lb_error(ctx, LB_ERR_ARG, "%s gate: %s must have %lld elements with first dim %lld",
                            gate_variants[variant], names[i], (long long)counts[i], (long long)H);
    }
    return LB_OK;
}

/* Double copies of the weight inputs in[1..n_w] in weight, bias, weight2,
 * bias2 order (unused members NULL); bufs[] to be freed. */
static lb_status gate_weights(lb_ctx *ctx, const lb_gate_config *cfg, lb_tensor *const *in,
                              lb_gate_weights_f64 *w, double *bufs[4])
{
    int64_t counts[4];
    lb_status st = lb_gate_param_counts(ctx, cfg, counts);
    if (st != LB_OK) return st;
    const double *ptr[4] = {NULL, NULL, NULL, NULL};
    int k = 1;
    for (int i = 0; i < 4; i++) {
        bufs[i] = NULL;
        if (counts[i] == 0) continue;
        if ((st = to_f64(ctx, in[k++], "gate parameter", &bufs[i])) != LB_OK) return st;
        ptr[i] = bufs[i];
    }
    w->weight = ptr[0], w->bias = ptr[1], w->weight2 = ptr[2], w->bias2 = ptr[3];
    return LB_OK;
}

static lb_status run_gate(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                          lb_tensor **out, int *n_out)
{
    lb_gate_config cfg;
    int n_w;
    int64_t tokens;
    lb_status st = gate_setup(ctx, p, in, n_in, 0, &cfg, &n_w, &tokens);
    if (st != LB_OK) return st;
    double *bufs[4] = {NULL, NULL, NULL, NULL}, *x = NULL, *g = NULL;
    lb_gate_weights_f64 w;
    if ((st = gate_weights(ctx, &cfg, in, &w, bufs)) != LB_OK) goto done;
    if ((st = to_f64(ctx, in[0], "X", &x)) != LB_OK) goto done;
    g = lb_alloc((size_t)(tokens * cfg.n_heads + 1) * sizeof(double));
    if (!g) {
        st = lb_error(ctx, LB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = lb_gate_forward_ref_f64(ctx, &cfg, tokens, x, &w, g)) != LB_OK) goto done;
    int64_t shape[LB_MAX_DIMS];
    memcpy(shape, in[0]->shape, sizeof shape);
    shape[in[0]->ndim - 1] = cfg.n_heads;
    if ((st = make_out(ctx, out_dtype(in, n_in), in[0]->ndim, shape, g, &out[0])) == LB_OK) *n_out = 1;
done:
    for (int i = 0; i < 4; i++) lb_free(bufs[i]);
    lb_free(x);
    lb_free(g);
    return st;
}

static lb_status run_gate_backward(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                                   lb_tensor **out, int *n_out)
{
    lb_gate_config cfg;
    int n_w;
    int64_t tokens;
    lb_status st = gate_setup(ctx, p, in, n_in, 1, &cfg, &n_w, &tokens);
    if (st != LB_OK) return st;
    const lb_tensor *dg_t = in[n_in - 1];
    if ((int64_t)dg_t->numel != tokens * cfg.n_heads || dg_t->ndim != in[0]->ndim ||
        dg_t->shape[dg_t->ndim - 1] != cfg.n_heads)
        return lb_error(ctx, LB_ERR_ARG, "dG must have X's shape with the last dim n_heads=%lld",
                        (long long)cfg.n_heads);
    double *bufs[4] = {NULL, NULL, NULL, NULL}, *x = NULL, *dg = NULL, *dx = NULL;
    double *grad[4] = {NULL, NULL, NULL, NULL};
    int64_t counts[4];
    lb_gate_weights_f64 w;
    if ((st = gate_weights(ctx, &cfg, in, &w, bufs)) != LB_OK) goto done;
    if ((st = to_f64(ctx, in[0], "X", &x)) != LB_OK) goto done;
    if ((st = to_f64(ctx, dg_t, "dG", &dg)) != LB_OK) goto done;
    if ((st = lb_gate_param_counts(ctx, &cfg, counts)) != LB_OK) goto done;
    dx = lb_calloc(in[0]->numel + 1, sizeof(double));
    int ok = dx != NULL;
    for (int i = 0; i < 4; i++)
        if (counts[i] > 0) ok = ok && (grad[i] = lb_calloc((size_t)counts[i], sizeof(double)));
    if (!ok) {
        st = lb_error(ctx, LB_ERR_NOMEM, "out of memory");
        goto done;
    }
    lb_gate_grads_f64 gr = {grad[0], grad[1], grad[2], grad[3]};
    if ((st = lb_gate_backward_ref_f64(ctx, &cfg, tokens, x, &w, dg, dx, &gr)) != LB_OK) goto done;
    const lb_dtype dt = out_dtype(in, n_in);
    if ((st = make_out(ctx, dt, in[0]->ndim, in[0]->shape, dx, &out[0])) != LB_OK) goto done;
    int k = 1;
    for (int i = 0; i < 4; i++) {
        if (counts[i] == 0) continue;
        if ((st = make_out(ctx, dt, in[k]->ndim, in[k]->shape, grad[i], &out[k])) != LB_OK) goto done;
        k++;
    }
    *n_out = k;
done:
    for (int i = 0; i < 4; i++) lb_free(bufs[i]), lb_free(grad[i]);
    lb_free(x);
    lb_free(dg);
    lb_free(dx);
    return st;
}

/* ---- inf norm / kurtosis ------------------------------------------------ */

static const char *const metric_axes[] = {"first", "last", "all", NULL};
static const char *const metric_reduce[] = {"none", "mean", NULL};
static const char *const kurtosis_modes[] = {"code", "pearson", "fisher", NULL};

/* rows x cols and the output shape for axis = first | last | all. */
static void metric_rows(const lb_tensor *x, int axis, int64_t *rows, int64_t *cols, int *ndim,
                        int64_t shape[LB_MAX_DIMS])
{
    const int64_t N = (int64_t)x->numel;
    if (axis == 2 || x->ndim <= 1) { /* all, or a 1-D input (one sequence) */
        *rows = 1, *cols = N, *ndim = 0;
        if (axis == 0 && x->ndim == 1) *ndim = 1, shape[0] = 1;
        return;
    }
    if (axis == 0) {
        *rows = x->shape[0], *cols = *rows > 0 ? N / *rows : 0, *ndim = 1, shape[0] = *rows;
        return;
    }
    *cols = x->shape[x->ndim - 1], *rows = *cols > 0 ? N / *cols : 0, *ndim = x->ndim - 1;
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
}

static lb_status run_metric(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                            lb_tensor **out, int *n_out, int is_kurtosis)
{
    int axis, reduce, mode = 0;
    double eps = LB_KURTOSIS_EPS;
    lb_status st;
    if ((st = op_param_choice(ctx, p, "axis", metric_axes, 0, &axis)) != LB_OK) return st;
    if ((st = op_param_choice(ctx, p, "reduce", metric_reduce, 0, &reduce)) != LB_OK) return st;
    if (is_kurtosis) {
        if ((st = op_param_choice(ctx, p, "mode", kurtosis_modes, 0, &mode)) != LB_OK) return st;
        if ((st = op_param_double(ctx, p, "eps", LB_KURTOSIS_EPS, &eps)) != LB_OK) return st;
    }
    int64_t rows, cols, shape[LB_MAX_DIMS] = {1, 1, 1, 1};
    int ndim;
    metric_rows(in[0], axis, &rows, &cols, &ndim, shape);
    double *x = NULL, *v = NULL;
    if ((st = to_f64(ctx, in[0], "X", &x)) != LB_OK) return st;
    v = lb_alloc((size_t)(rows + 1) * sizeof(double));
    if (!v) {
        lb_free(x);
        return lb_error(ctx, LB_ERR_NOMEM, "out of memory");
    }
    st = is_kurtosis ? lb_kurtosis_ref_f64(ctx, rows, cols, (lb_kurtosis_mode)mode, eps, x, v)
                     : lb_inf_norm_ref_f64(ctx, rows, cols, x, v);
    if (st == LB_OK && reduce == 1) {
        /* mean over rows in increasing order (the code's average over
         * sequences) */
        if (rows < 1) {
            st = lb_error(ctx, LB_ERR_ARG, "reduce=mean of zero rows");
        } else {
            double sum = 0.0;
            for (int64_t r = 0; r < rows; r++) sum += v[r];
            v[0] = sum / (double)rows;
            ndim = 0;
        }
    }
    if (st == LB_OK && (st = make_out(ctx, out_dtype(in, n_in), ndim, shape, v, &out[0])) == LB_OK)
        *n_out = 1;
    lb_free(x);
    lb_free(v);
    return st;
}

static lb_status run_inf_norm(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                              lb_tensor **out, int *n_out)
{
    return run_metric(ctx, p, in, n_in, out, n_out, 0);
}

static lb_status run_kurtosis(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                              lb_tensor **out, int *n_out)
{
    return run_metric(ctx, p, in, n_in, out, n_out, 1);
}

/* ---- table -------------------------------------------------------------- */

#define SOFTMAX_PARAMS                                                                             \
    "gamma=0 (<= 0); zeta=1 (>= 1); or alpha=A T=LEN for gamma = -A/LEN, zeta = 1 "              \
    "(T = configured max sequence length)"

#define GATE_PARAMS                                                                                \
    "variant=linear|mlp|all-heads|unconditional; pool=token|sequence (code-only mean of the "    \
    "logits over each sequence); seq-len=T (pool=sequence; default X.shape[-2] for 3-D X); "      \
    "scale=1 (gate = scale*sigmoid; 1/pi_init for fine-tuning)"

#define METRIC_AXIS                                                                                \
    "axis=first|last|all (first: one value per index of dim 0 over all other elements, the "     \
    "code's per-sequence reading; last: per row of the last dim; all: the whole tensor; a 1-D "   \
    "X is one row); reduce=none|mean (mean over rows)"

const op_def ops_attention[] = {
    {"softmax", "row-wise softmax over the last axis, max-subtracted (Bondarenko et al. 2023 eq. 4 "
                "with gamma=0, zeta=1)",
     "X (..., T) f32|f64 logits", "Y (..., T)", "", 1, 1, run_softmax},
    {"clipped-softmax",
     "clipped softmax y = clip((zeta-gamma)*softmax(x)+gamma, 0, 1) over the last axis "
     "(Bondarenko et al. 2023 eq. 4)",
     "X (..., T) f32|f64 logits", "Y (..., T)", SOFTMAX_PARAMS, 1, 1, run_clipped_softmax},
    {"clipped-softmax-backward",
     "dL/dx of the clipped softmax from logits and dL/dy (spec §1.3; clamp backward passes at "
     "the bounds)",
     "X (..., T) logits, dY (..., T)", "dX (..., T)", SOFTMAX_PARAMS, 2, 2,
     run_clipped_softmax_backward},
    {"gate",
     "attention gate g = scale*sigmoid(G(x)) per token and head (Bondarenko et al. 2023 eq. 5-7)",
     "X (..., d_model); linear: W (H, d_head), b (H); mlp: W1 (H, n_hid, d_head), b1 (H, n_hid), "
     "W2 (H, n_hid), b2 (H); all-heads: W (H, d_model), b (H); unconditional: b (H)",
     "G (..., H)", GATE_PARAMS, 2, 5, run_gate},
    {"gate-backward",
     "gradients of the attention gate: dL/dx (gate term only) and parameter gradients (spec §2.4)",
     "X, the variant's parameters (as for gate), dG (..., H)",
     "dX (..., d_model), then one gradient per parameter input, same shapes", GATE_PARAMS, 3, 6,
     run_gate_backward},
    {"inf-norm", "max |x| per row (Bondarenko et al. 2023 outlier metric; spec §3.2)",
     "X f32|f64", "N (rows) or () with axis=all / reduce=mean", METRIC_AXIS, 1, 1, run_inf_norm},
    {"kurtosis",
     "kurtosis per row; mode=code is the authors' mu4/(s^4+eps) with s the N-1 std (spec §3.2)",
     "X f32|f64", "K (rows) or () with axis=all / reduce=mean",
     METRIC_AXIS "; mode=code|pearson|fisher (pearson: m4/m2^2, fisher: minus 3); eps=1e-6 "
                 "(code only)",
     1, 1, run_kurtosis},
};
const size_t ops_attention_count = sizeof ops_attention / sizeof ops_attention[0];

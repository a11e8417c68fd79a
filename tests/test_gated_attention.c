/* tests/test_gated_attention.c — the attention gate (ref/gated_attention.c):
 * PyTorch fixtures for every variant, finite-difference gradients of inputs
 * and parameters, the exact properties of spec outlier_free_attention_and_w8a8.md
 * §7 (gated attention) and argument checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/npy.h"
#include "lowbit/ref/gated_attention.h"
#include "test_fixture.h"

/* The fixtures' sizes (tests/gen/attention_fixtures.py). */
enum { B = 2, T = 3, H = 3, DH = 4, NH = 2, D = H * DH, TOK = B * T };

static void fill(double *x, size_t n, uint64_t sub, double lo, double hi)
{
    uint64_t stream = lb_rng_stream("test_gated_attention", sub);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lb_rng_uniform_f64(3, stream, i);
}

static lb_tensor *load(const char *name, size_t numel)
{
    lb_tensor *t = lb_test_fixture("attention", name, numel);
    if (t->dtype != LB_F64) fail_msg("fixture %s is not f64", name);
    return t;
}

static void assert_close(const double *a, const double *b, size_t n, double atol, double rtol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= atol + rtol * fabs(b[i])))
            fail_msg("%s: element %zu: got %.17g, want %.17g", what, i, a[i], b[i]);
}

/* One variant under test: its config and parameter storage (double). */
typedef struct variant {
    const char *fixture; /* fixture prefix, e.g. "linear_seq" */
    const char *pnames[4];
    lb_gate_config cfg;
    int64_t counts[4];
    double *param[4]; /* weight, bias, weight2, bias2 (NULL if unused) */
} variant;

static void variant_init(variant *v, const char *fixture, lb_gate_kind kind, lb_gate_pool pool)
{
    memset(v, 0, sizeof *v);
    v->fixture = fixture;
    v->cfg = lb_gate_config_default(kind, H, DH);
    v->cfg.n_hidden = NH;
    v->cfg.pool = pool;
    v->cfg.seq_len = T;
    assert_int_equal(lb_gate_param_counts(NULL, &v->cfg, v->counts), LB_OK);
    static const char *const per_kind[4][4] = {
        {"W", "b", NULL, NULL}, {"W1", "b1", "W2", "b2"}, {"W", "b", NULL, NULL}, {NULL, "b", NULL, NULL}};
    for (int i = 0; i < 4; i++) {
        v->pnames[i] = per_kind[kind][i];
        v->param[i] = v->counts[i] ? calloc((size_t)v->counts[i], sizeof(double)) : NULL;
    }
}

static void variant_free(variant *v)
{
    for (int i = 0; i < 4; i++) free(v->param[i]);
}

static lb_gate_weights_f64 weights_of(const variant *v)
{
    lb_gate_weights_f64 w = {v->param[0], v->param[1], v->param[2], v->param[3]};
    return w;
}

/* All variants of the fixtures. */
#define N_VARIANTS 6
static void all_variants(variant v[N_VARIANTS])
{
    variant_init(&v[0], "linear", LB_GATE_LINEAR, LB_GATE_PER_TOKEN);
    variant_init(&v[1], "linear_seq", LB_GATE_LINEAR, LB_GATE_PER_SEQUENCE);
    variant_init(&v[2], "mlp", LB_GATE_MLP, LB_GATE_PER_TOKEN);
    variant_init(&v[3], "mlp_seq", LB_GATE_MLP, LB_GATE_PER_SEQUENCE);
    variant_init(&v[4], "allheads", LB_GATE_ALL_HEADS, LB_GATE_PER_TOKEN);
    variant_init(&v[5], "uncond", LB_GATE_UNCONDITIONAL, LB_GATE_PER_TOKEN);
}

/* Forward and backward of every variant against PyTorch autograd (float64,
 * the authors' module structure). */
static void test_torch_fixtures(void **state)
{
    (void)state;
    variant v[N_VARIANTS];
    all_variants(v);
    lb_tensor *x = load("gate_x", TOK * D), *dg = load("gate_dg", TOK * H);
    for (int k = 0; k < N_VARIANTS; k++) {
        char name[64];
        for (int i = 0; i < 4; i++) {
            if (!v[k].param[i]) continue;
            snprintf(name, sizeof name, "gate_%s_%s", v[k].fixture, v[k].pnames[i]);
            lb_tensor *t = load(name, (size_t)v[k].counts[i]);
            memcpy(v[k].param[i], t->data, t->nbytes);
            lb_tensor_free(t);
        }
        lb_gate_weights_f64 w = weights_of(&v[k]);
        double g[TOK * H], dx[TOK * D];
        double *grad[4];
        for (int i = 0; i < 4; i++)
            grad[i] = v[k].counts[i] ? calloc((size_t)v[k].counts[i], sizeof(double)) : NULL;
        lb_gate_grads_f64 gr = {grad[0], grad[1], grad[2], grad[3]};
        memset(dx, 0, sizeof dx);
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &v[k].cfg, TOK, lb_tensor_f64(x), &w, g), LB_OK);
        assert_int_equal(lb_gate_backward_ref_f64(NULL, &v[k].cfg, TOK, lb_tensor_f64(x), &w,
                                                  lb_tensor_f64(dg), dx, &gr),
                         LB_OK);
        snprintf(name, sizeof name, "gate_%s_G", v[k].fixture);
        lb_tensor *eg = load(name, TOK * H);
        assert_close(g, lb_tensor_f64(eg), TOK * H, 1e-15, 1e-13, name);
        snprintf(name, sizeof name, "gate_%s_dX", v[k].fixture);
        lb_tensor *edx = load(name, TOK * D);
        assert_close(dx, lb_tensor_f64(edx), TOK * D, 1e-15, 1e-12, name);
        for (int i = 0; i < 4; i++) {
            if (!grad[i]) continue;
            snprintf(name, sizeof name, "gate_%s_d%s", v[k].fixture, v[k].pnames[i]);
            lb_tensor *e = load(name, (size_t)v[k].counts[i]);
            assert_close(grad[i], lb_tensor_f64(e), e->numel, 1e-15, 1e-12, name);
            lb_tensor_free(e);
            free(grad[i]);
        }
        lb_tensor_free(eg);
        lb_tensor_free(edx);
        variant_free(&v[k]);
    }
    lb_tensor_free(x);
    lb_tensor_free(dg);
}

/* L = sum dg * gate for the finite differences. */
static double loss(const lb_gate_config *cfg, const double *x, const lb_gate_weights_f64 *w,
                   const double *dg)
{
    double g[TOK * H], l = 0.0;
    assert_int_equal(lb_gate_forward_ref_f64(NULL, cfg, TOK, x, w, g), LB_OK);
    for (int i = 0; i < TOK * H; i++) l += dg[i] * g[i];
    return l;
}

/* Central differences (double) of every input and parameter, every variant,
 * with a non-unit scale as well. */
static void test_fd_gradients(void **state)
{
    (void)state;
    variant v[N_VARIANTS];
    all_variants(v);
    double x[TOK * D], dg[TOK * H];
    fill(x, TOK * D, 0, -1.5, 1.5);
    fill(dg, TOK * H, 1, -1, 1);
    const double h = 1e-6, tol = 1e-8; /* O(h^2) truncation and O(eps/h) rounding, both << tol */
    for (int k = 0; k < N_VARIANTS; k++) {
        for (int i = 0; i < 4; i++)
            if (v[k].param[i]) fill(v[k].param[i], (size_t)v[k].counts[i], 10 + (uint64_t)(k * 4 + i), -0.8, 0.8);
        for (int sc = 0; sc < 2; sc++) {
            v[k].cfg.scale = sc ? 2.0 : 1.0;
            lb_gate_weights_f64 w = weights_of(&v[k]);
            double dx[TOK * D] = {0}, *grad[4];
            for (int i = 0; i < 4; i++)
                grad[i] = v[k].counts[i] ? calloc((size_t)v[k].counts[i], sizeof(double)) : NULL;
            lb_gate_grads_f64 gr = {grad[0], grad[1], grad[2], grad[3]};
            assert_int_equal(lb_gate_backward_ref_f64(NULL, &v[k].cfg, TOK, x, &w, dg, dx, &gr), LB_OK);
            for (int j = 0; j < TOK * D; j++) {
                double s = x[j];
                x[j] = s + h;
                double lp = loss(&v[k].cfg, x, &w, dg);
                x[j] = s - h;
                double lm = loss(&v[k].cfg, x, &w, dg);
                x[j] = s;
                double fd = (lp - lm) / (2 * h);
                if (fabs(fd - dx[j]) > tol)
                    fail_msg("%s scale %g: dx[%d] fd %.12g analytic %.12g", v[k].fixture,
                             v[k].cfg.scale, j, fd, dx[j]);
            }
            for (int i = 0; i < 4; i++) {
                for (int64_t j = 0; grad[i] && j < v[k].counts[i]; j++) {
                    double *p = &v[k].param[i][j], s = *p;
                    *p = s + h;
                    double lp = loss(&v[k].cfg, x, &w, dg);
                    *p = s - h;
                    double lm = loss(&v[k].cfg, x, &w, dg);
                    *p = s;
                    double fd = (lp - lm) / (2 * h);
                    if (fabs(fd - grad[i][j]) > tol)
                        fail_msg("%s scale %g: d%s[%lld] fd %.12g analytic %.12g", v[k].fixture,
                                 v[k].cfg.scale, v[k].pnames[i], (long long)j, fd, grad[i][j]);
                }
                free(grad[i]);
            }
        }
        variant_free(&v[k]);
    }
}

/* Spec §7 gated attention 1-2: zero weights and bias logit(pi) give exactly
 * pi times the context; gate in (0, 1), 0.5 at b = 0; bias init values. */
static void test_zero_weights_and_bias(void **state)
{
    (void)state;
    const struct {
        double pi, b;
    } inits[] = {{0.1, -2.1972246}, {0.25, -1.0986123}, {0.5, 0.0}, {0.75, 1.0986123}, {0.9, 2.1972246}};
    for (int i = 0; i < 5; i++) {
        const double b = lb_gate_bias_init(inits[i].pi);
        assert_true(fabs(b - inits[i].b) < 1e-7);
        /* logit(sigmoid(b)) round trip through the gate */
        lb_gate_config cfg = lb_gate_config_default(LB_GATE_LINEAR, 1, 2);
        double w[2] = {0, 0}, x[2] = {3.0, -7.0}, g;
        lb_gate_weights_f64 wt = {w, &b, NULL, NULL};
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &cfg, 1, x, &wt, &g), LB_OK);
        assert_true(fabs(g - inits[i].pi) < 1e-15);
        assert_true(fabs(lb_gate_bias_init(g) - b) < 1e-12);
    }
    assert_true(lb_gate_bias_init(0.5) == 0.0);
    assert_true(fabs(lb_gate_bias_init(0.0) - log(1e-16)) < 1e-9); /* clipped */
    assert_true(isnan(lb_gate_bias_init(NAN)));

    /* zero weights: out == pi * context exactly for every variant */
    double x[TOK * D], c[TOK * D], out[TOK * D], g[TOK * H];
    fill(x, TOK * D, 2, -3, 3);
    fill(c, TOK * D, 3, -3, 3);
    variant v[N_VARIANTS];
    all_variants(v);
    const double pi = 0.25, b = lb_gate_bias_init(pi);
    for (int k = 0; k < N_VARIANTS; k++) {
        /* the logit bias is bias (H) or, for the MLP, bias2 (H) */
        double *logit_bias = v[k].cfg.kind == LB_GATE_MLP ? v[k].param[3] : v[k].param[1];
        for (int hh = 0; hh < H; hh++) logit_bias[hh] = b;
        lb_gate_weights_f64 w = weights_of(&v[k]);
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &v[k].cfg, TOK, x, &w, g), LB_OK);
        /* per token the logit is exactly b (b < 0: the exp(z)/(1+exp(z))
         * branch); pooled it is (b+b+b)/3, within an ulp of b */
        const double expect = exp(b) / (1.0 + exp(b));
        for (int i = 0; i < TOK * H; i++) {
            if (v[k].cfg.pool == LB_GATE_PER_TOKEN) assert_true(g[i] == expect);
            assert_true(g[i] == g[0]);
            assert_true(fabs(g[i] - pi) < 1e-15);
        }
        assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c, out), LB_OK);
        for (int i = 0; i < TOK * D; i++) assert_true(out[i] == g[0] * c[i]);
        variant_free(&v[k]);
    }
    /* sigmoid saturates to exact 0 and 1, never NaN */
    lb_gate_config cfg = lb_gate_config_default(LB_GATE_UNCONDITIONAL, 3, 1);
    double ub[3] = {-800, 800, 0}, ug[3];
    lb_gate_weights_f64 uw = {NULL, ub, NULL, NULL};
    assert_int_equal(lb_gate_forward_ref_f64(NULL, &cfg, 1, NULL, &uw, ug), LB_OK);
    assert_true(ug[0] == 0.0 && ug[1] == 1.0 && ug[2] == 0.5);
    double ugrad[3] = {0, 0, 0}, udg[3] = {1, 1, 1};
    lb_gate_grads_f64 ugr = {NULL, ugrad, NULL, NULL};
    assert_int_equal(lb_gate_backward_ref_f64(NULL, &cfg, 1, NULL, &uw, udg, NULL, &ugr), LB_OK);
    assert_true(ugrad[0] == 0.0 && ugrad[1] == 0.0 && ugrad[2] == 0.25);
}

/* Spec §7 gated attention 3: token t's gate depends only on x_t (per token);
 * head h's gate only on head h's slice (per-head kinds). */
static void test_locality(void **state)
{
    (void)state;
    variant v[N_VARIANTS];
    all_variants(v);
    double x[TOK * D], x2[TOK * D], g[TOK * H], g2[TOK * H];
    fill(x, TOK * D, 4, -1, 1);
    for (int k = 0; k < 5; k++) { /* conditional variants */
        for (int i = 0; i < 4; i++)
            if (v[k].param[i]) fill(v[k].param[i], (size_t)v[k].counts[i], 40 + (uint64_t)(k * 4 + i), -1, 1);
        /* MLP: hidden biases large enough that every ReLU is active, so a
         * change of the input must reach the gate */
        if (v[k].cfg.kind == LB_GATE_MLP)
            for (int64_t j = 0; j < v[k].counts[1]; j++) v[k].param[1][j] = 10.0;
        lb_gate_weights_f64 w = weights_of(&v[k]);
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &v[k].cfg, TOK, x, &w, g), LB_OK);
        /* change head 1's slice of token 4 (sequence 1) */
        memcpy(x2, x, sizeof x);
        for (int j = 1 * DH; j < 2 * DH; j++) x2[4 * D + j] += 0.5;
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &v[k].cfg, TOK, x2, &w, g2), LB_OK);
        const int per_seq = v[k].cfg.pool == LB_GATE_PER_SEQUENCE;
        const int all_heads = v[k].cfg.kind == LB_GATE_ALL_HEADS;
        for (int t = 0; t < TOK; t++)
            for (int hh = 0; hh < H; hh++) {
                const int affected_token = per_seq ? (t / T == 1) : (t == 4);
                const int affected_head = all_heads || hh == 1;
                const int same = g[t * H + hh] == g2[t * H + hh];
                if (affected_token && affected_head)
                    assert_false(same);
                else
                    assert_true(same);
            }
        variant_free(&v[k]);
    }
    variant_free(&v[5]);
}

/* Spec §7 gated attention 5: all-heads with a block-diagonal weight equals the
 * per-head linear gate (values and gradients). */
static void test_all_heads_block_diagonal(void **state)
{
    (void)state;
    double wl[H * DH], bl[H], wa[H * D] = {0};
    fill(wl, H * DH, 5, -1, 1);
    fill(bl, H, 6, -1, 1);
    for (int hh = 0; hh < H; hh++)
        for (int k = 0; k < DH; k++) wa[hh * D + hh * DH + k] = wl[hh * DH + k];
    double x[TOK * D], dg[TOK * H], gl[TOK * H], ga[TOK * H];
    fill(x, TOK * D, 7, -2, 2);
    fill(dg, TOK * H, 8, -1, 1);
    lb_gate_config cl = lb_gate_config_default(LB_GATE_LINEAR, H, DH);
    lb_gate_config ca = lb_gate_config_default(LB_GATE_ALL_HEADS, H, DH);
    lb_gate_weights_f64 w_l = {wl, bl, NULL, NULL}, w_a = {wa, bl, NULL, NULL};
    assert_int_equal(lb_gate_forward_ref_f64(NULL, &cl, TOK, x, &w_l, gl), LB_OK);
    assert_int_equal(lb_gate_forward_ref_f64(NULL, &ca, TOK, x, &w_a, ga), LB_OK);
    for (int i = 0; i < TOK * H; i++) assert_true(gl[i] == ga[i]);
    double dxl[TOK * D] = {0}, dxa[TOK * D] = {0}, dwl[H * DH] = {0}, dwa[H * D] = {0};
    double dbl[H] = {0}, dba[H] = {0};
    lb_gate_grads_f64 grl = {dwl, dbl, NULL, NULL}, gra = {dwa, dba, NULL, NULL};
    assert_int_equal(lb_gate_backward_ref_f64(NULL, &cl, TOK, x, &w_l, dg, dxl, &grl), LB_OK);
    assert_int_equal(lb_gate_backward_ref_f64(NULL, &ca, TOK, x, &w_a, dg, dxa, &gra), LB_OK);
    assert_memory_equal(dbl, dba, sizeof dbl);
    for (int i = 0; i < TOK * D; i++) assert_true(dxl[i] == dxa[i]);
    for (int hh = 0; hh < H; hh++)
        for (int k = 0; k < DH; k++) assert_true(dwl[hh * DH + k] == dwa[hh * D + hh * DH + k]);
}

/* apply and its backward: finite differences, in place, NULL outputs. */
static void test_apply(void **state)
{
    (void)state;
    double g[TOK * H], c[TOK * D], dout[TOK * D], out[TOK * D], dc[TOK * D], dgate[TOK * H];
    fill(g, TOK * H, 9, 0, 1);
    fill(c, TOK * D, 10, -2, 2);
    fill(dout, TOK * D, 11, -1, 1);
    assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c, out), LB_OK);
    for (int t = 0; t < TOK; t++)
        for (int i = 0; i < D; i++) assert_true(out[t * D + i] == g[t * H + i / DH] * c[t * D + i]);
    assert_int_equal(lb_gate_apply_backward_ref_f64(NULL, TOK, H, DH, g, c, dout, dc, dgate), LB_OK);
    /* L = <dout, out>: dL/dgate by central differences (L is linear in the gate) */
    const double h = 1e-6;
    for (int j = 0; j < TOK * H; j++) {
        double s = g[j], lp = 0, lm = 0;
        g[j] = s + h;
        assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c, out), LB_OK);
        for (int i = 0; i < TOK * D; i++) lp += dout[i] * out[i];
        g[j] = s - h;
        assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c, out), LB_OK);
        for (int i = 0; i < TOK * D; i++) lm += dout[i] * out[i];
        g[j] = s;
        assert_true(fabs((lp - lm) / (2 * h) - dgate[j]) < 1e-8);
    }
    for (int t = 0; t < TOK; t++)
        for (int i = 0; i < D; i++) assert_true(dc[t * D + i] == g[t * H + i / DH] * dout[t * D + i]);
    /* in place: out over context, dcontext over dout (dgate still right) */
    double c2[TOK * D], d2[TOK * D], dgate2[TOK * H];
    memcpy(c2, c, sizeof c);
    memcpy(d2, dout, sizeof dout);
    assert_int_equal(lb_gate_apply_backward_ref_f64(NULL, TOK, H, DH, g, c, d2, d2, dgate2), LB_OK);
    assert_memory_equal(d2, dc, sizeof dc);
    assert_memory_equal(dgate2, dgate, sizeof dgate);
    assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c2, c2), LB_OK);
    assert_int_equal(lb_gate_apply_ref_f64(NULL, TOK, H, DH, g, c, out), LB_OK);
    assert_memory_equal(c2, out, sizeof out);
    assert_int_equal(lb_gate_apply_backward_ref_f64(NULL, TOK, H, DH, g, c, dout, NULL, NULL), LB_OK);
}

/* The float entry points round the double results once; the backward adds
 * into the caller's gradients. */
static void test_f32_and_accumulation(void **state)
{
    (void)state;
    variant v[N_VARIANTS];
    all_variants(v);
    double x[TOK * D], dg[TOK * H];
    float xf[TOK * D], dgf[TOK * H];
    fill(x, TOK * D, 12, -2, 2);
    fill(dg, TOK * H, 13, -1, 1);
    for (int i = 0; i < TOK * D; i++) xf[i] = (float)x[i], x[i] = xf[i];
    for (int i = 0; i < TOK * H; i++) dgf[i] = (float)dg[i], dg[i] = dgf[i];
    for (int k = 0; k < N_VARIANTS; k++) {
        float *pf[4] = {NULL, NULL, NULL, NULL}, *gf[4] = {NULL, NULL, NULL, NULL};
        double *gd[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < 4; i++) {
            if (!v[k].param[i]) continue;
            const size_t n = (size_t)v[k].counts[i];
            fill(v[k].param[i], n, 60 + (uint64_t)(k * 4 + i), -1, 1);
            pf[i] = calloc(n, sizeof(float));
            gf[i] = calloc(n, sizeof(float));
            gd[i] = calloc(n, sizeof(double));
            for (size_t j = 0; j < n; j++) pf[i][j] = (float)v[k].param[i][j], v[k].param[i][j] = pf[i][j];
        }
        lb_gate_weights_f64 wd = weights_of(&v[k]);
        lb_gate_weights wf = {pf[0], pf[1], pf[2], pf[3]};
        double g[TOK * H], dx[TOK * D] = {0};
        float g32[TOK * H], dx32[TOK * D] = {0};
        assert_int_equal(lb_gate_forward_ref_f64(NULL, &v[k].cfg, TOK, x, &wd, g), LB_OK);
        assert_int_equal(lb_gate_forward_ref(NULL, &v[k].cfg, TOK, xf, &wf, g32), LB_OK);
        for (int i = 0; i < TOK * H; i++) assert_true(g32[i] == (float)g[i]);
        lb_gate_grads_f64 grd = {gd[0], gd[1], gd[2], gd[3]};
        lb_gate_grads grf = {gf[0], gf[1], gf[2], gf[3]};
        assert_int_equal(lb_gate_backward_ref_f64(NULL, &v[k].cfg, TOK, x, &wd, dg, dx, &grd), LB_OK);
        assert_int_equal(lb_gate_backward_ref(NULL, &v[k].cfg, TOK, xf, &wf, dgf, dx32, &grf), LB_OK);
        for (int i = 0; i < TOK * D; i++) assert_true(dx32[i] == (float)dx[i]);
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; gd[i] && j < v[k].counts[i]; j++) assert_true(gf[i][j] == (float)gd[i][j]);
        /* a second call adds: the gradients double (exactly, in double) */
        double *once[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < 4; i++)
            if (gd[i]) {
                once[i] = malloc((size_t)v[k].counts[i] * sizeof(double));
                memcpy(once[i], gd[i], (size_t)v[k].counts[i] * sizeof(double));
            }
        double dx1[TOK * D];
        memcpy(dx1, dx, sizeof dx);
        assert_int_equal(lb_gate_backward_ref_f64(NULL, &v[k].cfg, TOK, x, &wd, dg, dx, &grd), LB_OK);
        for (int i = 0; i < TOK * D; i++) assert_true(dx[i] == 2 * dx1[i]);
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; gd[i] && j < v[k].counts[i]; j++) assert_true(gd[i][j] == 2 * once[i][j]);
        /* NULL dx and NULL grads are allowed */
        assert_int_equal(lb_gate_backward_ref_f64(NULL, &v[k].cfg, TOK, x, &wd, dg, NULL, NULL), LB_OK);
        for (int i = 0; i < 4; i++) free(pf[i]), free(gf[i]), free(gd[i]), free(once[i]);
        variant_free(&v[k]);
    }
}

/* NaN propagates to the gate of that token (and, pooled, its sequence). */
static void test_nan_propagates(void **state)
{
    (void)state;
    variant v;
    variant_init(&v, "linear", LB_GATE_LINEAR, LB_GATE_PER_TOKEN);
    fill(v.param[0], (size_t)v.counts[0], 70, -1, 1);
    double x[TOK * D], g[TOK * H];
    fill(x, TOK * D, 71, -1, 1);
    x[2 * D + 0] = NAN; /* token 2, head 0 */
    lb_gate_weights_f64 w = weights_of(&v);
    assert_int_equal(lb_gate_forward_ref_f64(NULL, &v.cfg, TOK, x, &w, g), LB_OK);
    for (int t = 0; t < TOK; t++)
        for (int hh = 0; hh < H; hh++) assert_true(isnan(g[t * H + hh]) == (t == 2 && hh == 0));
    variant_free(&v);
}

static void test_arguments(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_gate_config zero;
    memset(&zero, 0, sizeof zero);
    zero.n_heads = 2, zero.d_head = 2;
    assert_int_equal(lb_gate_config_check(ctx, &zero), LB_ERR_ARG); /* scale 0 */
    assert_true(strstr(lb_ctx_error(ctx), "scale") != NULL);
    lb_gate_config c = lb_gate_config_default(LB_GATE_MLP, 2, 8);
    assert_int_equal(c.n_hidden, 2);
    assert_true(c.scale == 1.0);
    assert_int_equal(lb_gate_config_check(ctx, &c), LB_OK);
    c.n_hidden = 0;
    assert_int_equal(lb_gate_config_check(ctx, &c), LB_ERR_ARG);
    c = lb_gate_config_default(LB_GATE_LINEAR, 2, 2);
    c.pool = LB_GATE_PER_SEQUENCE;
    assert_int_equal(lb_gate_config_check(ctx, &c), LB_ERR_ARG); /* seq_len 0 */
    c.seq_len = 3;
    double x[8 * 4] = {0}, w[4] = {0}, b[2] = {0}, g[16];
    lb_gate_weights_f64 wt = {w, b, NULL, NULL}, nob = {w, NULL, NULL, NULL};
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 8, x, &wt, g), LB_ERR_ARG); /* 8 % 3 */
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 6, x, &wt, g), LB_OK);
    c.pool = LB_GATE_PER_TOKEN;
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 8, x, &nob, g), LB_ERR_ARG);
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 8, NULL, &wt, g), LB_ERR_ARG);
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, -1, x, &wt, g), LB_ERR_ARG);
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 0, NULL, &wt, NULL), LB_OK);
    assert_int_equal(lb_gate_forward_ref_f64(ctx, &c, 8, x, NULL, g), LB_ERR_ARG);
    c.kind = (lb_gate_kind)9;
    assert_int_equal(lb_gate_config_check(ctx, &c), LB_ERR_ARG);
    assert_null(lb_gate_kind_name((lb_gate_kind)9));
    assert_string_equal(lb_gate_kind_name(LB_GATE_ALL_HEADS), "all-heads");
    int64_t counts[4];
    c = lb_gate_config_default(LB_GATE_MLP, 12, 64);
    assert_int_equal(lb_gate_param_counts(ctx, &c, counts), LB_OK);
    /* BERT-base MLP gate with n_hid = 16: 12 (16 (64 + 2) + 1) parameters */
    assert_int_equal(counts[0] + counts[1] + counts[2] + counts[3], 12 * (16 * (64 + 2) + 1));
    c = lb_gate_config_default(LB_GATE_LINEAR, 12, 64);
    assert_int_equal(lb_gate_param_counts(ctx, &c, counts), LB_OK);
    assert_int_equal(counts[0] + counts[1], 780); /* spec §2.2 */
    assert_int_equal(lb_gate_apply_ref_f64(ctx, 1, 0, 2, g, x, x), LB_ERR_ARG);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_fd_gradients),
        cmocka_unit_test(test_zero_weights_and_bias),
        cmocka_unit_test(test_locality),
        cmocka_unit_test(test_all_heads_block_diagonal),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_f32_and_accumulation),
        cmocka_unit_test(test_nan_propagates),
        cmocka_unit_test(test_arguments),
    };
    return LB_RUN_TESTS(tests);
}

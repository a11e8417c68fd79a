/* tests/test_qlinear_luq.c — the LUQ linear layer (ref/qlinear_luq.c):
 * forward Z exact against float math on the same codes, the exponent-split
 * LUQ GEMM exact for every L, the backward against a double reference built
 * from the same LUQ codes (stochastic and deterministic modes), SMP,
 * finite-difference checks of the STE gradients, PyTorch fixtures
 * (tests/gen/luq_fixtures.py), degenerate and non-finite inputs.
 * Spec int4_training.md §B.1, §B.6, §B.7, §4.7. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <float.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/npy.h"
#include "lowbit/rng.h"
#include "lowbit/ref/qlinear_luq.h"
#include "test_fixture.h"

static void fill_normal(float *x, size_t n, uint64_t seed, float sigma)
{
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - lb_rng_uniform_f64(seed, 0, 2 * i), u2 = lb_rng_uniform_f64(seed, 0, 2 * i + 1);
        x[i] = (float)(sigma * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

/* Gradients of many magnitudes (log-uniform), random sign. */
static void fill_grad(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        double u = lb_rng_uniform_f64(seed, 1, i), s = lb_rng_uniform_f64(seed, 2, i);
        x[i] = (float)((s < 0.5 ? -1 : 1) * 0.01 * exp2(-10.0 * u));
    }
}

typedef struct layer {
    int64_t N, D, C;
    float *X, *W, *b, *Y, *dY, *dX, *dW, *db;
    int8_t *Xq, *Wq;
    int32_t *Z;
    float sx, sw;
} layer;

static layer *layer_new(int64_t N, int64_t D, int64_t C, uint64_t seed)
{
    layer *l = calloc(1, sizeof *l);
    l->N = N;
    l->D = D;
    l->C = C;
    size_t nd = (size_t)(N * D), cd = (size_t)(C * D), nc = (size_t)(N * C);
    l->X = malloc(nd * 4 + 4);
    l->W = malloc(cd * 4 + 4);
    l->b = malloc((size_t)C * 4 + 4);
    l->Y = malloc(nc * 4 + 4);
    l->dY = malloc(nc * 4 + 4);
    l->dX = malloc(nd * 4 + 4);
    l->dW = malloc(cd * 4 + 4);
    l->db = malloc((size_t)C * 4 + 4);
    l->Xq = malloc(nd + 1);
    l->Wq = malloc(cd + 1);
    l->Z = malloc(nc * 4 + 4);
    fill_normal(l->X, nd, seed, 1.0f);
    fill_normal(l->W, cd, seed + 1, 0.1f);
    fill_normal(l->b, (size_t)C, seed + 2, 0.5f);
    fill_grad(l->dY, nc, seed + 3);
    return l;
}

static void layer_free(layer *l)
{
    free(l->X);
    free(l->W);
    free(l->b);
    free(l->Y);
    free(l->dY);
    free(l->dX);
    free(l->dW);
    free(l->db);
    free(l->Xq);
    free(l->Wq);
    free(l->Z);
    free(l);
}

static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 1}, {3, 7, 5}, {8, 15, 16}, {17, 33, 9}, {5, 65, 31}};

/* Forward: codes are SAWB on the documented grids; Z equals float math on the
 * same codes exactly; Y follows the documented float32 formula bit for bit. */
static void test_forward_exact(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int g = 0; g < 2; g++) {
            for (int relu = 0; relu < 2; relu++) {
                layer *l = layer_new(shapes[s][0], shapes[s][1], shapes[s][2], 10 * s);
                const int64_t N = l->N, D = l->D, C = l->C;
                if (relu)
                    for (int64_t i = 0; i < N * D; i++) l->X[i] = fmaxf(l->X[i], 0.0f);
                lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
                cfg.grid = g ? LB_SAWB_GRID_CODE : LB_SAWB_GRID_INT4;
                int sticky = 0;
                assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, N, D, C, l->X, l->W, l->b, &sticky, l->Xq,
                                                            &l->sx, l->Wq, &l->sw, l->Z, l->Y),
                                 LB_OK);
                int has_neg = 0;
                for (int64_t i = 0; i < N * D; i++) has_neg |= l->X[i] < 0;
                assert_int_equal(sticky, has_neg);
                /* codes: SAWB with the grid's ranges */
                lb_sawb_params pw = {12.1, 12.2, 0, 1}, px = pw;
                lb_sawb_weight_range(cfg.grid, &pw.qn, &pw.qp);
                lb_sawb_activation_range(cfg.grid, has_neg, &px.qn, &px.qp);
                int8_t *q = malloc((size_t)(N * D + C * D));
                float sc;
                assert_int_equal(lb_sawb_quantize_ref(NULL, &pw, l->W, (size_t)(C * D), q, &sc, NULL), LB_OK);
                assert_true(sc == l->sw);
                assert_memory_equal(q, l->Wq, (size_t)(C * D));
                assert_int_equal(lb_sawb_quantize_ref(NULL, &px, l->X, (size_t)(N * D), q, &sc, NULL), LB_OK);
                assert_true(sc == l->sx);
                assert_memory_equal(q, l->Xq, (size_t)(N * D));
                free(q);
                if (!has_neg)
                    for (int64_t i = 0; i < N * D; i++) assert_true(l->Xq[i] >= 0 && l->Xq[i] <= 15);
                for (int64_t n = 0; n < N; n++) {
                    for (int64_t c = 0; c < C; c++) {
                        double z = 0;
                        for (int64_t d = 0; d < D; d++) z += (double)l->Xq[n * D + d] * (double)l->Wq[c * D + d];
                        assert_true((double)l->Z[n * C + c] == z);
                        float y = (l->sx * l->sw) * (float)l->Z[n * C + c] + l->b[c];
                        assert_true(l->Y[n * C + c] == y);
                    }
                }
                layer_free(l);
            }
        }
    }
}

/* Sticky activation sign (the authors' rule), and bias NULL. */
static void test_forward_sticky(void **state)
{
    (void)state;
    layer *l = layer_new(4, 8, 3, 77);
    for (int i = 0; i < 32; i++) l->X[i] = fabsf(l->X[i]);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    int sticky = 1; /* a negative input was seen before */
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, 4, 8, 3, l->X, l->W, NULL, &sticky, l->Xq, &l->sx,
                                                l->Wq, &l->sw, NULL, l->Y),
                     LB_OK);
    assert_int_equal(sticky, 1);
    for (int i = 0; i < 32; i++) assert_true(l->Xq[i] <= 7); /* signed grid [-7, 7] */
    float sx0 = l->sx;
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, 4, 8, 3, l->X, l->W, NULL, NULL, l->Xq, &l->sx, l->Wq,
                                                &l->sw, NULL, l->Y),
                     LB_OK);
    assert_true(l->sx < sx0); /* unsigned grid: scale 2·clip/15 instead of 2·clip/14 */
    layer_free(l);
}

/* The exponent-split GEMM is exact for every L and layout. */
static void test_luq_gemm_exact(void **state)
{
    (void)state;
    const int64_t M = 7, N = 5, K = 33;
    int8_t A[7 * 33], B[33 * 5];
    int64_t Cm[35];
    for (int L = 1; L <= LB_LUQ_MAX_LEVELS; L++) {
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                for (int i = 0; i < M * K; i++)
                    A[i] = (int8_t)((int)(lb_rng_u32(L, 3, (uint64_t)i) % (uint32_t)(2 * L + 1)) - L);
                for (int i = 0; i < K * N; i++) B[i] = (int8_t)((int)(lb_rng_u32(L, 4, (uint64_t)i) % 255u) - 127);
                A[0] = (int8_t)L; /* the largest code */
                A[1] = (int8_t)-L;
                for (int i = 0; i < M * N; i++) Cm[i] = 1000; /* accumulates into C */
                assert_int_equal(lb_luq_gemm_ref(NULL, ta, tb, M, N, K, L, A, B, Cm), LB_OK);
                for (int64_t m = 0; m < M; m++) {
                    for (int64_t n = 0; n < N; n++) {
                        int64_t want = 1000;
                        for (int64_t k = 0; k < K; k++) {
                            int8_t a = ta ? A[k * M + m] : A[m * K + k];
                            int8_t b = tb ? B[n * K + k] : B[k * N + n];
                            want += (int64_t)lb_luq_code_to_int(a) * b;
                        }
                        assert_true(Cm[m * N + n] == want);
                    }
                }
            }
        }
    }
    assert_int_equal(lb_luq_gemm_ref(NULL, 0, 0, 2, 2, 2, 0, A, B, Cm), LB_ERR_ARG);
    assert_int_equal(lb_luq_gemm_ref(NULL, 0, 0, -1, 2, 2, 8, A, B, Cm), LB_ERR_ARG);
}

/* The double reference of the backward from the same codes: for each sample
 * s, δ_s = α·(±2^k) from lb_luq_quantize_ref; dX = mean_s δ_s (sw·Wq),
 * dW = mean_s δ_s^T (sx·Xq), db = mean_s Σ_n δ_s. The integer products are
 * exact, so the C result must be the documented float32 scaling of the exact
 * Z, bit for bit, and within 4 roundings of the double reference. */
static void check_backward(layer *l, const lb_qlinear_luq_config *cfg)
{
    const int64_t N = l->N, D = l->D, C = l->C;
    float alpha;
    assert_int_equal(lb_qlinear_luq_backward_ref(NULL, cfg, N, D, C, l->dY, l->Xq, l->sx, l->Wq, l->sw, l->dX,
                                                 l->dW, l->db, &alpha),
                     LB_OK);
    double *zx = calloc((size_t)(N * D), sizeof *zx), *zw = calloc((size_t)(C * D), sizeof *zw);
    double *zb = calloc((size_t)C, sizeof *zb);
    int8_t *codes = malloc((size_t)(N * C));
    float a2;
    for (int s = 0; s < cfg->samples; s++) {
        lb_luq_params p = cfg->luq;
        p.sample = cfg->luq.sample + (uint64_t)s;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, l->dY, (size_t)(N * C), codes, NULL, &a2), LB_OK);
        assert_true(a2 == alpha);
        for (int64_t n = 0; n < N; n++) {
            for (int64_t c = 0; c < C; c++) {
                double dq = lb_luq_code_to_int(codes[n * C + c]);
                zb[c] += dq;
                for (int64_t d = 0; d < D; d++) {
                    zx[n * D + d] += dq * l->Wq[c * D + d];
                    zw[c * D + d] += dq * l->Xq[n * D + d];
                }
            }
        }
    }
    const float S = (float)cfg->samples;
    const float cx = (alpha * l->sw) / S, cw = (alpha * l->sx) / S, cb = alpha / S;
    const double tol = 4.5 * FLT_EPSILON / 2;
    for (int64_t e = 0; e < N * D; e++) {
        assert_true(l->dX[e] == cx * (float)zx[e]);
        double ref = (double)alpha * l->sw * zx[e] / cfg->samples;
        assert_true(fabs(l->dX[e] - ref) <= tol * fabs(ref));
    }
    for (int64_t e = 0; e < C * D; e++) {
        assert_true(l->dW[e] == cw * (float)zw[e]);
        double ref = (double)alpha * l->sx * zw[e] / cfg->samples;
        assert_true(fabs(l->dW[e] - ref) <= tol * fabs(ref));
    }
    for (int64_t c = 0; c < C; c++) assert_true(l->db[c] == cb * (float)zb[c]);
    free(zx);
    free(zw);
    free(zb);
    free(codes);
}

static void test_backward_vs_double(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        layer *l = layer_new(shapes[s][0], shapes[s][1], shapes[s][2], 100 + s);
        lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
        assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, l->N, l->D, l->C, l->X, l->W, l->b, NULL, l->Xq,
                                                    &l->sx, l->Wq, &l->sw, l->Z, l->Y),
                         LB_OK);
        const int Ls[] = {8, 7, 5, 12};
        for (int li = 0; li < 4; li++) {
            for (int mode = 0; mode < 3; mode++) {
                cfg.luq.levels = Ls[li];
                cfg.luq.seed = 42 + s;
                cfg.luq.sample = 3;
                cfg.samples = mode == 2 ? 3 : 1;
                /* mode 1: no stochasticity at all (fixed rounding) */
                cfg.luq.underflow = mode == 1 ? LB_LUQ_UNDERFLOW_NEAREST : LB_LUQ_UNDERFLOW_STOCHASTIC;
                cfg.luq.rounding = mode == 1 ? LB_LUQ_ROUND_NEAREST : LB_LUQ_ROUND_STOCHASTIC;
                check_backward(l, &cfg);
            }
        }
        layer_free(l);
    }
}

/* SMP: averaging the GEMM outputs of S single-sample backwards (samples
 * base + j) equals the S-sample backward up to the final float rounding. */
static void test_smp_average(void **state)
{
    (void)state;
    layer *l = layer_new(9, 12, 6, 5);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, 9, 12, 6, l->X, l->W, NULL, NULL, l->Xq, &l->sx, l->Wq,
                                                &l->sw, NULL, l->Y),
                     LB_OK);
    cfg.samples = 4;
    cfg.luq.seed = 3;
    check_backward(l, &cfg);
    float dX4[108], dW4[72];
    memcpy(dX4, l->dX, sizeof dX4);
    memcpy(dW4, l->dW, sizeof dW4);
    double ax[108] = {0}, aw[72] = {0}, mx = 0;
    for (int j = 0; j < 4; j++) {
        lb_qlinear_luq_config c1 = cfg;
        c1.samples = 1;
        c1.luq.sample = (uint64_t)j;
        assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &c1, 9, 12, 6, l->dY, l->Xq, l->sx, l->Wq, l->sw, l->dX,
                                                     l->dW, NULL, NULL),
                         LB_OK);
        for (int e = 0; e < 108; e++) ax[e] += l->dX[e] / 4.0;
        for (int e = 0; e < 72; e++) aw[e] += l->dW[e] / 4.0;
    }
    for (int e = 0; e < 108; e++) mx = fmax(mx, fabs(ax[e]));
    for (int e = 0; e < 108; e++) assert_true(fabs(dX4[e] - ax[e]) <= 4 * FLT_EPSILON * mx);
    mx = 0;
    for (int e = 0; e < 72; e++) mx = fmax(mx, fabs(aw[e]));
    for (int e = 0; e < 72; e++) assert_true(fabs(dW4[e] - aw[e]) <= 4 * FLT_EPSILON * mx);
    layer_free(l);
}

/* f(X, b) = Σ G ⊙ (X (sw·Wq)^T + 1 b^T) and g(W) = Σ G ⊙ ((sx·Xq) W^T), in double. */
static double surrogate_x(const layer *l, const float *G, const double *Xd, const double *bd)
{
    double f = 0;
    for (int64_t n = 0; n < l->N; n++)
        for (int64_t c = 0; c < l->C; c++) {
            double y = bd[c];
            for (int64_t d = 0; d < l->D; d++) y += Xd[n * l->D + d] * ((double)l->sw * l->Wq[c * l->D + d]);
            f += G[n * l->C + c] * y;
        }
    return f;
}

static double surrogate_w(const layer *l, const float *G, const double *Wd)
{
    double f = 0;
    for (int64_t n = 0; n < l->N; n++)
        for (int64_t c = 0; c < l->C; c++) {
            double y = 0;
            for (int64_t d = 0; d < l->D; d++) y += ((double)l->sx * l->Xq[n * l->D + d]) * Wd[c * l->D + d];
            f += G[n * l->C + c] * y;
        }
    return f;
}

/* Finite differences (double, central) of the straight-through surrogate
 * f(X, W, b) = Σ G ⊙ (X (sw·Wq)^T + 1 b^T) for ∇X, and
 * g(W) = Σ G ⊙ ((sx·Xq) W^T) for ∇W, with G the dequantized LUQ(∇Y) of the
 * same sample: the layer's gradients must be these derivatives. */
static void test_finite_differences(void **state)
{
    (void)state;
    const int64_t N = 4, D = 6, C = 3;
    layer *l = layer_new(N, D, C, 900);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    cfg.luq.seed = 11;
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, N, D, C, l->X, l->W, l->b, NULL, l->Xq, &l->sx, l->Wq,
                                                &l->sw, NULL, l->Y),
                     LB_OK);
    assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &cfg, N, D, C, l->dY, l->Xq, l->sx, l->Wq, l->sw, l->dX,
                                                 l->dW, l->db, NULL),
                     LB_OK);
    float G[12];
    assert_int_equal(lb_luq_quantize_ref(NULL, &cfg.luq, l->dY, 12, NULL, G, NULL), LB_OK);
    double Xd[24], Wd[18], bd[3];
    for (int i = 0; i < 24; i++) Xd[i] = l->X[i];
    for (int i = 0; i < 18; i++) Wd[i] = l->W[i];
    for (int i = 0; i < 3; i++) bd[i] = l->b[i];
    const double h = 1e-3;
    double scale = 0;
    for (int i = 0; i < 24; i++) scale = fmax(scale, fabs(l->dX[i]));
    for (int i = 0; i < 24; i++) {
        double keep = Xd[i];
        Xd[i] = keep + h;
        double fp = surrogate_x(l, G, Xd, bd);
        Xd[i] = keep - h;
        double fm = surrogate_x(l, G, Xd, bd);
        Xd[i] = keep;
        assert_true(fabs((fp - fm) / (2 * h) - l->dX[i]) <= 1e-6 * scale + 1e-12);
    }
    scale = 0;
    for (int i = 0; i < 18; i++) scale = fmax(scale, fabs(l->dW[i]));
    for (int i = 0; i < 18; i++) {
        double keep = Wd[i];
        Wd[i] = keep + h;
        double fp = surrogate_w(l, G, Wd);
        Wd[i] = keep - h;
        double fm = surrogate_w(l, G, Wd);
        Wd[i] = keep;
        assert_true(fabs((fp - fm) / (2 * h) - l->dW[i]) <= 1e-6 * scale + 1e-12);
    }
    for (int c = 0; c < 3; c++) {
        double keep = bd[c];
        bd[c] = keep + h;
        double fp = surrogate_x(l, G, Xd, bd);
        bd[c] = keep - h;
        double fm = surrogate_x(l, G, Xd, bd);
        bd[c] = keep;
        assert_true(fabs((fp - fm) / (2 * h) - l->db[c]) <= 1e-6 * fabs(l->db[c]) + 1e-9);
    }
    layer_free(l);
}

static lb_tensor *load(const char *name) { return lb_test_fixture("luq", name, 0); }

static void assert_close(const float *got, const lb_tensor *want, double rtol)
{
    assert_int_equal(want->dtype, LB_F64);
    double mx = 0;
    for (size_t i = 0; i < want->numel; i++) mx = fmax(mx, fabs(lb_tensor_f64(want)[i]));
    for (size_t i = 0; i < want->numel; i++) {
        double w = lb_tensor_f64(want)[i];
        if (fabs(got[i] - w) > rtol * fabs(w) + 1e-7 * mx)
            print_message("index %zu: got %.9g want %.9g\n", i, (double)got[i], w);
        assert_true(fabs(got[i] - w) <= rtol * fabs(w) + 1e-7 * mx);
    }
}

/* PyTorch model (luq_ref.py): forward on INT4 grids; backward with S = 2
 * seeded LUQ samples (lowbit's Philox streams reproduced in Python) and with
 * the deterministic nearest modes, in float64. Our float32 scaling differs
 * by at most a few roundings: rtol 1e-6. */
static void test_torch_fixtures(void **state)
{
    (void)state;
    lb_tensor *X = load("qlin_x"), *W = load("qlin_w"), *b = load("qlin_b");
    lb_tensor *dY = load("qlin_dy");
    const int64_t N = X->shape[0], D = X->shape[1], C = W->shape[0];
    layer *l = layer_new(N, D, C, 0);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, N, D, C, lb_tensor_f32(X), lb_tensor_f32(W),
                                                lb_tensor_f32(b), NULL, l->Xq, &l->sx, l->Wq, &l->sw, l->Z, l->Y),
                     LB_OK);
    lb_tensor *t = load("qlin_xq");
    assert_memory_equal(l->Xq, lb_tensor_s8(t), (size_t)(N * D));
    lb_tensor_free(t);
    t = load("qlin_wq");
    assert_memory_equal(l->Wq, lb_tensor_s8(t), (size_t)(C * D));
    lb_tensor_free(t);
    t = load("qlin_sx");
    assert_true(l->sx == lb_tensor_f32(t)[0]);
    lb_tensor_free(t);
    t = load("qlin_sw");
    assert_true(l->sw == lb_tensor_f32(t)[0]);
    lb_tensor_free(t);
    t = load("qlin_z");
    assert_memory_equal(l->Z, lb_tensor_s32(t), (size_t)(N * C) * 4);
    lb_tensor_free(t);
    t = load("qlin_y");
    assert_close(l->Y, t, 1e-6);
    lb_tensor_free(t);
    const char *names[] = {"s2", "nearest"};
    char name[128];
    for (int k = 0; k < 2; k++) {
        cfg.luq = lb_luq_default_params();
        cfg.samples = k == 0 ? 2 : 1;
        cfg.luq.seed = k == 0 ? 99 : 0;
        if (k == 1) {
            cfg.luq.underflow = LB_LUQ_UNDERFLOW_NEAREST;
            cfg.luq.rounding = LB_LUQ_ROUND_NEAREST;
        }
        assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &cfg, N, D, C, lb_tensor_f32(dY), l->Xq, l->sx, l->Wq,
                                                     l->sw, l->dX, l->dW, l->db, NULL),
                         LB_OK);
        int8_t codes[64];
        assert_true(N * C <= 64);
        assert_int_equal(lb_luq_quantize_ref(NULL, &cfg.luq, lb_tensor_f32(dY), (size_t)(N * C), codes, NULL, NULL),
                         LB_OK);
        snprintf(name, sizeof name, "qlin_%s_codes0", names[k]);
        t = load(name);
        assert_memory_equal(codes, lb_tensor_s8(t), (size_t)(N * C));
        lb_tensor_free(t);
        snprintf(name, sizeof name, "qlin_%s_dx", names[k]);
        t = load(name);
        assert_close(l->dX, t, 1e-6);
        lb_tensor_free(t);
        snprintf(name, sizeof name, "qlin_%s_dw", names[k]);
        t = load(name);
        assert_close(l->dW, t, 1e-6);
        lb_tensor_free(t);
        snprintf(name, sizeof name, "qlin_%s_db", names[k]);
        t = load(name);
        assert_close(l->db, t, 1e-6);
        lb_tensor_free(t);
    }
    layer_free(l);
    lb_tensor_free(X);
    lb_tensor_free(W);
    lb_tensor_free(b);
    lb_tensor_free(dY);
}

/* Zero gradient → zero results (α = 0); zero input → scale 0, Y = b. */
static void test_degenerate(void **state)
{
    (void)state;
    layer *l = layer_new(3, 4, 2, 1);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    memset(l->X, 0, 12 * sizeof(float));
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, 3, 4, 2, l->X, l->W, l->b, NULL, l->Xq, &l->sx, l->Wq,
                                                &l->sw, l->Z, l->Y),
                     LB_OK);
    assert_true(l->sx == 0.0f);
    for (int i = 0; i < 6; i++) assert_true(l->Y[i] == l->b[i % 2]);
    memset(l->dY, 0, 6 * sizeof(float));
    float alpha = -1;
    assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &cfg, 3, 4, 2, l->dY, l->Xq, l->sx, l->Wq, l->sw, l->dX,
                                                 l->dW, l->db, &alpha),
                     LB_OK);
    assert_true(alpha == 0.0f);
    for (int i = 0; i < 12; i++) assert_true(l->dX[i] == 0.0f);
    for (int i = 0; i < 8; i++) assert_true(l->dW[i] == 0.0f);
    for (int i = 0; i < 2; i++) assert_true(l->db[i] == 0.0f);
    /* empty batch */
    assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &cfg, 0, 4, 2, l->dY, l->Xq, l->sx, l->Wq, l->sw, l->dX,
                                                 l->dW, l->db, &alpha),
                     LB_OK);
    for (int i = 0; i < 8; i++) assert_true(l->dW[i] == 0.0f);
    layer_free(l);
}

static void test_errors(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    layer *l = layer_new(3, 4, 2, 1);
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    const float bad[] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        float keep = l->X[5];
        l->X[5] = bad[k];
        assert_int_equal(lb_qlinear_luq_forward_ref(ctx, &cfg, 3, 4, 2, l->X, l->W, l->b, NULL, l->Xq, &l->sx,
                                                    l->Wq, &l->sw, NULL, l->Y),
                         LB_ERR_NUMERIC);
        l->X[5] = keep;
        keep = l->W[1];
        l->W[1] = bad[k];
        assert_int_equal(lb_qlinear_luq_forward_ref(ctx, &cfg, 3, 4, 2, l->X, l->W, l->b, NULL, l->Xq, &l->sx,
                                                    l->Wq, &l->sw, NULL, l->Y),
                         LB_ERR_NUMERIC);
        l->W[1] = keep;
        keep = l->b[1];
        l->b[1] = bad[k];
        assert_int_equal(lb_qlinear_luq_forward_ref(ctx, &cfg, 3, 4, 2, l->X, l->W, l->b, NULL, l->Xq, &l->sx,
                                                    l->Wq, &l->sw, NULL, l->Y),
                         LB_ERR_NUMERIC);
        l->b[1] = keep;
        keep = l->dY[3];
        l->dY[3] = -bad[k];
        assert_int_equal(lb_qlinear_luq_backward_ref(ctx, &cfg, 3, 4, 2, l->dY, l->Xq, 0.1f, l->Wq, 0.1f, l->dX,
                                                     l->dW, l->db, NULL),
                         LB_ERR_NUMERIC);
        l->dY[3] = keep;
    }
    assert_int_equal(lb_qlinear_luq_forward_ref(ctx, &cfg, -1, 4, 2, l->X, l->W, l->b, NULL, l->Xq, &l->sx, l->Wq,
                                                &l->sw, NULL, l->Y),
                     LB_ERR_ARG);
    cfg.samples = 0;
    assert_int_equal(lb_qlinear_luq_backward_ref(ctx, &cfg, 3, 4, 2, l->dY, l->Xq, 0.1f, l->Wq, 0.1f, l->dX, l->dW,
                                                 l->db, NULL),
                     LB_ERR_ARG);
    cfg.samples = 1;
    assert_int_equal(lb_qlinear_luq_backward_ref(ctx, &cfg, 3, 4, 2, l->dY, l->Xq, NAN, l->Wq, 0.1f, l->dX, l->dW,
                                                 l->db, NULL),
                     LB_ERR_ARG);
    cfg.luq.levels = 17;
    assert_int_equal(lb_qlinear_luq_backward_ref(ctx, &cfg, 3, 4, 2, l->dY, l->Xq, 0.1f, l->Wq, 0.1f, l->dX, l->dW,
                                                 l->db, NULL),
                     LB_ERR_ARG);
    layer_free(l);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_exact),
        cmocka_unit_test(test_forward_sticky),
        cmocka_unit_test(test_luq_gemm_exact),
        cmocka_unit_test(test_backward_vs_double),
        cmocka_unit_test(test_smp_average),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

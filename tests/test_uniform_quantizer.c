/* tests/test_uniform_quantizer.c — the uniform quantizers of
 * ref/uniform_quantizer.c: PyTorch fixtures (authors' formula and
 * torch.fake_quantize_*), the spec's worked examples, ties, idempotence,
 * code ranges, zero handling, granularity equivalence, the error bound,
 * stochastic rounding (unbiasedness, RNG index mapping) and edge cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/npy.h"
#include "lowbit/rng.h"
#include "lowbit/tensor.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "lowbit/ref/range_estimators.h"
#include "test_fixture.h"

/* Loads tests/data/uniform_power/<name>.npy (fails the test if missing). */
static lb_tensor *load(const char *name) { return lb_test_fixture("uniform_power", name, 0); }

static lb_uniform_config cfg_of(int bits, int symmetric)
{
    lb_uniform_config c = lb_uniform_config_default();
    c.bits = bits;
    c.symmetric = symmetric;
    return c;
}

/* Min-max range -> qparams -> codes and xhat of a whole tensor. */
static void quantize_minmax(const lb_uniform_config *cfg, const lb_qgroups *gr, const float *x, float *scale,
                            int32_t *zp, int32_t *codes, float *xhat)
{
    float lo[64], hi[64];
    assert_true(gr->groups <= 64);
    assert_int_equal(lb_range_minmax_ref(NULL, gr, x, lo, hi), LB_OK);
    assert_int_equal(lb_uniform_qparams_ref(NULL, cfg, gr->groups, lo, hi, scale, zp), LB_OK);
    assert_int_equal(lb_uniform_quantize_ref(NULL, cfg, gr, x, scale, zp, codes), LB_OK);
    assert_int_equal(lb_uniform_dequantize_ref(NULL, cfg, gr, codes, scale, zp, xhat), LB_OK);
}

/* The four PyTorch fixtures: scale, zero point, codes and x̂ bit for bit. */
static void check_fixture(const char *tag, int bits, int symmetric, lb_granularity gran)
{
    char name[64];
    snprintf(name, sizeof name, "%s_x", tag);
    lb_tensor *x = load(name);
    snprintf(name, sizeof name, "%s_scale", tag);
    lb_tensor *s = load(name);
    snprintf(name, sizeof name, "%s_codes", tag);
    lb_tensor *q = load(name);
    snprintf(name, sizeof name, "%s_xhat", tag);
    lb_tensor *xh = load(name);
    lb_tensor *z = NULL;
    if (!symmetric) {
        snprintf(name, sizeof name, "%s_zero_point", tag);
        z = load(name);
    }
    lb_uniform_config cfg = cfg_of(bits, symmetric);
    lb_qgroups gr;
    assert_int_equal(lb_qgroups_make(NULL, gran, x->ndim, x->shape, 0, &gr), LB_OK);
    assert_int_equal((size_t)gr.groups, s->numel);
    float scale[64];
    int32_t zp[64];
    int32_t *codes = malloc(x->numel * sizeof *codes);
    float *xhat = malloc(x->numel * sizeof *xhat);
    quantize_minmax(&cfg, &gr, lb_tensor_f32(x), scale, zp, codes, xhat);
    for (int64_t g = 0; g < gr.groups; g++) {
        assert_true(scale[g] == lb_tensor_f32(s)[g]);
        if (z) assert_int_equal(zp[g], lb_tensor_s32(z)[g]);
    }
    size_t bad = 0;
    for (size_t i = 0; i < x->numel; i++) {
        if (codes[i] != lb_tensor_s32(q)[i] || xhat[i] != lb_tensor_f32(xh)[i]) {
            if (bad++ < 5)
                fprintf(stderr, "%s: index %zu code %d expected %d, xhat %.9g expected %.9g\n", tag, i, codes[i],
                        lb_tensor_s32(q)[i], (double)xhat[i], (double)lb_tensor_f32(xh)[i]);
        }
    }
    assert_int_equal(bad, 0);
    free(codes);
    free(xhat);
    lb_tensor_free(x);
    lb_tensor_free(s);
    lb_tensor_free(q);
    lb_tensor_free(xh);
    lb_tensor_free(z);
}

static void test_torch_fixtures(void **state)
{
    (void)state;
    check_fixture("sym8", 8, 1, LB_GRAN_TENSOR);
    check_fixture("asym8", 8, 0, LB_GRAN_TENSOR);
    check_fixture("sym4ch", 4, 1, LB_GRAN_CHANNEL);
    check_fixture("asym8tok", 8, 0, LB_GRAN_TOKEN);
}

/* Spec §4.1 worked examples. */
static void test_spec_examples(void **state)
{
    (void)state;
    lb_uniform_config asym = cfg_of(8, 0), sym = cfg_of(8, 1);
    float lo = -1.2f, hi = 3.4f, scale;
    int32_t z;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &asym, 1, &lo, &hi, &scale, &z), LB_OK);
    assert_true(fabs((double)scale - 0.0180392157) < 2e-9);
    assert_int_equal(z, 67);
    const float x[5] = {-1.2f, 0.0f, 0.05f, 3.4f, 5.0f};
    const int32_t want_q[5] = {0, 67, 70, 255, 255};
    const double want_xh[5] = {-1.2086275, 0.0, 0.0541176, 3.3913725, 3.3913725};
    lb_qgroups gr = {1, 1, 5};
    int32_t q[5];
    float xh[5];
    assert_int_equal(lb_uniform_quantize_ref(NULL, &asym, &gr, x, &scale, &z, q), LB_OK);
    assert_int_equal(lb_uniform_dequantize_ref(NULL, &asym, &gr, q, &scale, &z, xh), LB_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(q[i], want_q[i]);
        assert_true(fabs((double)xh[i] - want_xh[i]) < 1e-6);
    }
    assert_true(xh[1] == 0.0f); /* zero exactly representable */

    const float w[4] = {-0.5f, 0.1f, 0.25f, 0.3f};
    const int32_t want_w[4] = {-127, 25, 64, 76};
    gr.inner = 4;
    float s2;
    int32_t qw[4];
    float xw[4];
    quantize_minmax(&sym, &gr, w, &s2, NULL, qw, xw);
    assert_true(fabs((double)s2 - 0.00393700787) < 5e-10);
    for (int i = 0; i < 4; i++) assert_int_equal(qw[i], want_w[i]);
}

/* x/Δ = ±2.5 -> ±2 (even), ±3.5 -> ±4; ties away: ±3, ±4. Δ = 1 exactly. */
static void test_ties(void **state)
{
    (void)state;
    lb_uniform_config c = cfg_of(8, 1);
    const float x[6] = {2.5f, -2.5f, 3.5f, -3.5f, 0.5f, -0.5f};
    const int32_t even[6] = {2, -2, 4, -4, 0, 0}, away[6] = {3, -3, 4, -4, 1, -1};
    float lo = -127.0f, hi = 127.0f, scale;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &c, 1, &lo, &hi, &scale, NULL), LB_OK);
    assert_true(scale == 1.0f);
    lb_qgroups gr = {1, 1, 6};
    int32_t q[6];
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, NULL, q), LB_OK);
    for (int i = 0; i < 6; i++) assert_int_equal(q[i], even[i]);
    c.rounding = LB_ROUND_HALF_AWAY;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, NULL, q), LB_OK);
    for (int i = 0; i < 6; i++) assert_int_equal(q[i], away[i]);
}

/* Deterministic pseudo-random floats for property tests (no RNG state). */
static float rnd(uint64_t i, float spread) { return (lb_rng_uniform_f32(77, 5, i) * 2.0f - 1.0f) * spread; }

/* Idempotence Q(deq(Q(x))) = Q(x) with the same parameters (every config), and
 * with re-estimated min-max parameters for symmetric configs; codes always in
 * range; |x - x̂| <= Δ/2 inside the range for round-to-nearest. */
static void test_idempotence_and_bounds(void **state)
{
    (void)state;
    enum { R = 5, C = 37 };
    static float x[R * C], xh[R * C], xh2[R * C];
    static int32_t q[R * C], q2[R * C];
    const int64_t shape[2] = {R, C};
    const int bits_list[5] = {2, 3, 4, 8, 16};
    for (int bi = 0; bi < 5; bi++)
        for (int sym = 0; sym < 2; sym++)
            for (int gi = 0; gi < 3; gi++) {
                lb_uniform_config c = cfg_of(bits_list[bi], sym);
                lb_qgroups gr;
                assert_int_equal(lb_qgroups_make(NULL, (lb_granularity)gi, 2, shape, gi == 1 ? 1 : 0, &gr), LB_OK);
                for (int i = 0; i < R * C; i++) x[i] = rnd((uint64_t)(i + 1000 * bi), 3.0f) + (sym ? 0.0f : 1.0f);
                float scale[64], scale2[64];
                int32_t zp[64], zp2[64], qmin, qmax;
                assert_int_equal(lb_uniform_code_range(NULL, &c, &qmin, &qmax), LB_OK);
                quantize_minmax(&c, &gr, x, scale, zp, q, xh);
                assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, xh, scale, zp, q2), LB_OK);
                for (int i = 0; i < R * C; i++) {
                    assert_int_equal(q2[i], q[i]);
                    assert_true(q[i] >= qmin && q[i] <= qmax);
                }
                /* error bound inside the range (min-max: every x is inside) */
                for (int64_t o = 0; o < gr.outer; o++)
                    for (int64_t g = 0; g < gr.groups; g++)
                        for (int64_t i = 0; i < gr.inner; i++) {
                            int64_t idx = (o * gr.groups + g) * gr.inner + i;
                            double err = fabs((double)x[idx] - (double)xh[idx]);
                            /* Δ/2 plus the float32 rounding of x/Δ and Δ(q - z) */
                            double tol = 0.5 * (double)scale[g] * (1.0 + 1e-5) + 4e-7 * fabs((double)x[idx]);
                            assert_true(err <= tol);
                        }
                if (sym) { /* re-estimated parameters give the same codes */
                    quantize_minmax(&c, &gr, xh, scale2, zp2, q2, xh2);
                    for (int i = 0; i < R * C; i++) assert_int_equal(q2[i], q[i]);
                }
            }
}

/* Symmetric: 0 -> 0. Asymmetric: x = 0 -> q = z -> x̂ = 0 exactly, for any
 * range; an all-positive tensor gets z = 0. */
static void test_zero(void **state)
{
    (void)state;
    const float ranges[6][2] = {{-1.2f, 3.4f}, {-7.77f, 0.013f}, {0.5f, 9.0f}, {-3.0f, -1.0f}, {-1e-3f, 1e5f}, {0, 0}};
    for (int bits = 2; bits <= 16; bits += 2) {
        for (int r = 0; r < 6; r++) {
            for (int sym = 0; sym < 2; sym++) {
                lb_uniform_config c = cfg_of(bits, sym);
                float scale, zero = 0.0f, xh;
                int32_t z, q;
                lb_qgroups gr = {1, 1, 1};
                assert_int_equal(lb_uniform_qparams_ref(NULL, &c, 1, &ranges[r][0], &ranges[r][1], &scale, &z),
                                 LB_OK);
                if (sym) assert_int_equal(z, 0);
                if (!sym && ranges[r][0] >= 0.0f) assert_int_equal(z, 0);
                assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, &zero, &scale, &z, &q), LB_OK);
                assert_int_equal(q, z);
                assert_int_equal(lb_uniform_dequantize_ref(NULL, &c, &gr, &q, &scale, &z, &xh), LB_OK);
                assert_true(xh == 0.0f);
            }
        }
    }
}

/* Per-channel / per-token on a single channel equals per-tensor. */
static void test_single_channel_equivalence(void **state)
{
    (void)state;
    enum { K = 29 };
    float x[K], xa[K], xb[K], sa, sb;
    int32_t qa[K], qb[K], za, zb;
    for (int i = 0; i < K; i++) x[i] = rnd((uint64_t)i + 50, 2.0f) + 0.3f;
    const int64_t shape[2] = {1, K}, shape_col[2] = {K, 1};
    for (int sym = 0; sym < 2; sym++) {
        lb_uniform_config c = cfg_of(8, sym);
        lb_qgroups gt, gc, gk, gcol;
        assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_TENSOR, 2, shape, 0, &gt), LB_OK);
        assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 2, shape, 0, &gc), LB_OK);
        assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_TOKEN, 2, shape, 0, &gk), LB_OK);
        assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 2, shape_col, 1, &gcol), LB_OK);
        assert_int_equal(gc.groups, 1);
        assert_int_equal(gcol.groups, 1);
        quantize_minmax(&c, &gt, x, &sa, &za, qa, xa);
        const lb_qgroups *others[3] = {&gc, &gk, &gcol};
        for (int o = 0; o < 3; o++) {
            quantize_minmax(&c, others[o], x, &sb, &zb, qb, xb);
            assert_true(sa == sb);
            assert_int_equal(za, zb);
            for (int i = 0; i < K; i++) {
                assert_int_equal(qa[i], qb[i]);
                assert_true(xa[i] == xb[i]);
            }
        }
    }
}

/* Group structures: channel along axis 1 of (2, 3, 4) and token of (2, 3, 4). */
static void test_group_layouts(void **state)
{
    (void)state;
    const int64_t shape[3] = {2, 3, 4};
    lb_qgroups g;
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 3, shape, 1, &g), LB_OK);
    assert_true(g.outer == 2 && g.groups == 3 && g.inner == 4);
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 3, shape, -1, &g), LB_OK);
    assert_true(g.outer == 6 && g.groups == 4 && g.inner == 1);
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_TOKEN, 3, shape, 0, &g), LB_OK);
    assert_true(g.outer == 1 && g.groups == 6 && g.inner == 4);
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_TENSOR, 3, shape, 0, &g), LB_OK);
    assert_true(g.outer == 1 && g.groups == 1 && g.inner == 24);
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 3, shape, 3, &g), LB_ERR_ARG);

    /* per-channel along the last axis: channel c's scale is max over x[:, c] */
    float x[24], lo[4], hi[4];
    for (int i = 0; i < 24; i++) x[i] = (float)((i % 4) + 1) * (i % 3 ? 1.0f : -1.0f) * (float)(i / 4 + 1);
    assert_int_equal(lb_qgroups_make(NULL, LB_GRAN_CHANNEL, 3, shape, 2, &g), LB_OK);
    assert_int_equal(lb_range_minmax_ref(NULL, &g, x, lo, hi), LB_OK);
    for (int c = 0; c < 4; c++) {
        float mn = INFINITY, mx = -INFINITY;
        for (int r = 0; r < 6; r++) {
            mn = fminf(mn, x[r * 4 + c]);
            mx = fmaxf(mx, x[r * 4 + c]);
        }
        assert_true(lo[c] == mn && hi[c] == mx);
    }
}

/* Stochastic rounding: the documented index mapping, determinism, and
 * unbiasedness E[x̂] = x within 5 standard errors (per-element variance
 * Δ² f (1 - f), f = frac(x/Δ)), over S seeds. */
static void test_stochastic(void **state)
{
    (void)state;
    enum { N = 24, S = 4000 };
    float x[N], xh[N];
    int32_t q[N];
    double sum[N] = {0};
    for (int i = 0; i < N; i++) x[i] = rnd((uint64_t)i + 300, 0.9f); /* inside the grid */
    x[0] = 0.25f; /* exact quarter steps too */
    x[1] = -0.9f; /* the grid is [-7Δ, 8Δ]: z = rint(7.4999996) = 7 */
    lb_uniform_config c = cfg_of(4, 0);
    c.rounding = LB_ROUND_STOCHASTIC;
    c.stream = lb_rng_stream("uniform-quant", 0);
    lb_qgroups gr = {1, 1, N};
    float lo = -1.0f, hi = 1.0f, scale;
    int32_t z;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &c, 1, &lo, &hi, &scale, &z), LB_OK);
    /* mapping: element i uses u = uniform_f32(seed, stream, i) */
    c.seed = 1234;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, &z, q), LB_OK);
    for (int i = 0; i < N; i++) {
        float v = x[i] / scale;
        float u = lb_rng_uniform_f32(1234, c.stream, (uint64_t)i);
        float r = floorf(v + u) + (float)z;
        if (r > 15.0f) r = 15.0f;
        if (r < 0.0f) r = 0.0f;
        assert_int_equal(q[i], (int32_t)r);
    }
    int32_t q2[N];
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, &z, q2), LB_OK);
    for (int i = 0; i < N; i++) assert_int_equal(q2[i], q[i]);
    /* unbiasedness */
    for (int s = 0; s < S; s++) {
        c.seed = (uint64_t)s;
        assert_int_equal(lb_uniform_fake_quant_ref(NULL, &c, &gr, x, &scale, &z, xh), LB_OK);
        for (int i = 0; i < N; i++) sum[i] += xh[i];
    }
    for (int i = 0; i < N; i++) {
        double v = (double)x[i] / (double)scale + z, f = v - floor(v);
        double var = (double)scale * scale * f * (1.0 - f);
        double se = sqrt(var / S);
        double mean = sum[i] / S;
        /* + a few float32 ulps for the rounding of x/Δ and of x̂ itself */
        if (!(fabs(mean - (double)x[i]) <= 5.0 * se + 1e-6))
            fprintf(stderr, "element %d: x %.9g mean %.9g se %.3g\n", i, (double)x[i], mean, se);
        assert_true(fabs(mean - (double)x[i]) <= 5.0 * se + 1e-6);
    }
}

/* Zeros, constants, one huge outlier, extreme ranges, NaN/Inf, bad args. */
static void test_edge_cases(void **state)
{
    (void)state;
    enum { N = 9 };
    float x[N], xh[N], scale;
    int32_t q[N], z;
    lb_qgroups gr = {1, 1, N};
    lb_uniform_config sym = cfg_of(8, 1), asym = cfg_of(8, 0);
    /* zeros: Δ = 1e-8 (floor), codes 0 / z, x̂ = 0 */
    for (int i = 0; i < N; i++) x[i] = 0.0f;
    quantize_minmax(&sym, &gr, x, &scale, &z, q, xh);
    assert_true(scale == LB_UNIFORM_EPS);
    for (int i = 0; i < N; i++) assert_true(q[i] == 0 && xh[i] == 0.0f);
    quantize_minmax(&asym, &gr, x, &scale, &z, q, xh);
    assert_int_equal(z, 0);
    for (int i = 0; i < N; i++) assert_true(q[i] == 0 && xh[i] == 0.0f);
    /* constants: 3 -> +N (sym) / 255 (asym), x̂ within one ulp-ish of 3 */
    for (int i = 0; i < N; i++) x[i] = 3.0f;
    quantize_minmax(&sym, &gr, x, &scale, &z, q, xh);
    for (int i = 0; i < N; i++) assert_true(q[i] == 127 && fabsf(xh[i] - 3.0f) < 1e-6f);
    quantize_minmax(&asym, &gr, x, &scale, &z, q, xh);
    for (int i = 0; i < N; i++) assert_true(q[i] == 255 && z == 0 && fabsf(xh[i] - 3.0f) < 1e-6f);
    /* negative constant in the asymmetric quantizer: z = 255 */
    for (int i = 0; i < N; i++) x[i] = -2.0f;
    quantize_minmax(&asym, &gr, x, &scale, &z, q, xh);
    for (int i = 0; i < N; i++) assert_true(q[i] == 0 && z == 255 && fabsf(xh[i] + 2.0f) < 1e-6f);
    /* one huge outlier: everything else collapses to 0, outlier to N, all finite */
    for (int i = 0; i < N; i++) x[i] = rnd((uint64_t)i, 1.0f);
    x[4] = 3e38f;
    quantize_minmax(&sym, &gr, x, &scale, &z, q, xh);
    for (int i = 0; i < N; i++) {
        assert_true(isfinite(xh[i]));
        assert_int_equal(q[i], i == 4 ? 127 : 0);
    }
    assert_true(fabsf(xh[4] - 3e38f) <= 3e38f * 1e-6f);
    /* extreme asymmetric range: hi - lo overflows float32 but Δ is finite */
    float lo = -3e38f, hi = 3e38f;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &asym, 1, &lo, &hi, &scale, &z), LB_OK);
    assert_true(isfinite(scale) && scale > 0.0f);
    assert_true(z == 127 || z == 128);
    /* NaN / Inf */
    for (int i = 0; i < N; i++) x[i] = 1.0f;
    scale = 0.1f;
    z = 0;
    x[2] = NAN;
    float l2, h2;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &sym, &gr, x, &scale, NULL, q), LB_ERR_NUMERIC);
    assert_int_equal(lb_uniform_fake_quant_ref(NULL, &sym, &gr, x, &scale, NULL, xh), LB_ERR_NUMERIC);
    assert_int_equal(lb_range_minmax_ref(NULL, &gr, x, &l2, &h2), LB_ERR_NUMERIC);
    x[2] = -INFINITY;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &sym, &gr, x, &scale, NULL, q), LB_ERR_NUMERIC);
    assert_int_equal(lb_range_minmax_ref(NULL, &gr, x, &l2, &h2), LB_ERR_NUMERIC);
    lo = 0.0f;
    hi = INFINITY;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &sym, 1, &lo, &hi, &scale, NULL), LB_ERR_NUMERIC);
    lo = NAN;
    hi = 1.0f;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &sym, 1, &lo, &hi, &scale, NULL), LB_ERR_NUMERIC);
    /* bad arguments */
    x[2] = 1.0f;
    lo = 2.0f;
    hi = 1.0f;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &sym, 1, &lo, &hi, &scale, NULL), LB_ERR_ARG);
    scale = 0.0f;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &sym, &gr, x, &scale, NULL, q), LB_ERR_ARG);
    scale = NAN;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &sym, &gr, x, &scale, NULL, q), LB_ERR_ARG);
    scale = 0.5f;
    z = 300;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &asym, &gr, x, &scale, &z, q), LB_ERR_ARG);
    lb_uniform_config bad = cfg_of(1, 1);
    int32_t qmin, qmax;
    assert_int_equal(lb_uniform_code_range(NULL, &bad, &qmin, &qmax), LB_ERR_ARG);
    bad.bits = 17;
    assert_int_equal(lb_uniform_code_range(NULL, &bad, &qmin, &qmax), LB_ERR_ARG);
    q[0] = 128;
    assert_int_equal(lb_uniform_dequantize_ref(NULL, &sym, &gr, q, &scale, NULL, xh), LB_ERR_ARG);
}

/* Code ranges: narrow [-N, N] by default, full [-N-1, N] on request (reached
 * when the range clips), asymmetric [0, 2^b - 1]. */
static void test_code_ranges(void **state)
{
    (void)state;
    int32_t qmin, qmax;
    lb_uniform_config c = cfg_of(8, 1);
    assert_int_equal(lb_uniform_code_range(NULL, &c, &qmin, &qmax), LB_OK);
    assert_true(qmin == -127 && qmax == 127);
    c.full_range = 1;
    assert_int_equal(lb_uniform_code_range(NULL, &c, &qmin, &qmax), LB_OK);
    assert_true(qmin == -128 && qmax == 127);
    c.bits = 4;
    assert_int_equal(lb_uniform_code_range(NULL, &c, &qmin, &qmax), LB_OK);
    assert_true(qmin == -8 && qmax == 7);
    c = cfg_of(4, 0);
    assert_int_equal(lb_uniform_code_range(NULL, &c, &qmin, &qmax), LB_OK);
    assert_true(qmin == 0 && qmax == 15);
    /* a clipping range: x beyond it saturates at -N (narrow) or -N-1 (full) */
    c = cfg_of(4, 1);
    float lo = -1.0f, hi = 1.0f, scale, x[3] = {-5.0f, 5.0f, -1.1f};
    int32_t q[3];
    lb_qgroups gr = {1, 1, 3};
    assert_int_equal(lb_uniform_qparams_ref(NULL, &c, 1, &lo, &hi, &scale, NULL), LB_OK);
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, NULL, q), LB_OK);
    assert_true(q[0] == -7 && q[1] == 7 && q[2] == -7);
    c.full_range = 1;
    assert_int_equal(lb_uniform_quantize_ref(NULL, &c, &gr, x, &scale, NULL, q), LB_OK);
    assert_true(q[0] == -8 && q[1] == 7 && q[2] == -8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_idempotence_and_bounds),
        cmocka_unit_test(test_zero),
        cmocka_unit_test(test_single_channel_equivalence),
        cmocka_unit_test(test_group_layouts),
        cmocka_unit_test(test_stochastic),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_code_ranges),
    };
    return LB_RUN_TESTS(tests);
}

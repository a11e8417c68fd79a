/* tests/test_sawb.c — the SAWB forward quantizer of LUQ (ref/sawb.c):
 * formula and documented summation order, codes and rounding, grids, the
 * Gaussian clip, degenerate tensors (zero, constant magnitude, one outlier,
 * NaN/Inf) and a PyTorch fixture (tests/gen/luq_fixtures.py). Spec
 * int4_training.md §B.2, §4.6, §4.7. */
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
#include "lowbit/ref/sawb.h"
#include "test_util.h"

#define LB_PI 3.14159265358979323846

/* Standard normal by Box-Muller from the f64 stream (seed, stream), index 2i, 2i+1. */
static void fill_normal(float *x, size_t n, uint64_t seed, uint64_t stream, float sigma)
{
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - lb_rng_uniform_f64(seed, stream, 2 * i); /* (0, 1] */
        double u2 = lb_rng_uniform_f64(seed, stream, 2 * i + 1);
        x[i] = (float)(sigma * sqrt(-2.0 * log(u1)) * cos(2.0 * LB_PI * u2));
    }
}

/* The documented order: 16 lanes by index mod 16, tree over h = 8, 4, 2, 1. */
static void lane_sums(const float *x, size_t n, double *s1, double *s2)
{
    double a[16] = {0}, b[16] = {0};
    for (size_t i = 0; i < n; i++) {
        a[i % 16] += fabs((double)x[i]);
        b[i % 16] += (double)x[i] * (double)x[i];
    }
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) {
            a[l] += a[l + h];
            b[l] += b[l + h];
        }
    *s1 = a[0];
    *s2 = b[0];
}

static void test_grids(void **state)
{
    (void)state;
    int qn, qp;
    lb_sawb_weight_range(LB_SAWB_GRID_INT4, &qn, &qp);
    assert_int_equal(qn, -7);
    assert_int_equal(qp, 7);
    lb_sawb_weight_range(LB_SAWB_GRID_CODE, &qn, &qp);
    assert_int_equal(qn, -8);
    assert_int_equal(qp, 8);
    lb_sawb_activation_range(LB_SAWB_GRID_INT4, 0, &qn, &qp);
    assert_int_equal(qn, 0);
    assert_int_equal(qp, 15);
    lb_sawb_activation_range(LB_SAWB_GRID_INT4, 1, &qn, &qp);
    assert_int_equal(qn, -7);
    assert_int_equal(qp, 7);
    lb_sawb_activation_range(LB_SAWB_GRID_CODE, 0, &qn, &qp);
    assert_int_equal(qn, 0);
    assert_int_equal(qp, 15);
    lb_sawb_activation_range(LB_SAWB_GRID_CODE, 1, &qn, &qp);
    assert_int_equal(qn, -8);
    assert_int_equal(qp, 15);
    lb_sawb_params p = lb_sawb_default_params();
    assert_true(p.c1 == 12.1 && p.c2 == 12.2 && p.qn == -7 && p.qp == 7);
    assert_string_equal(lb_sawb_grid_name(LB_SAWB_GRID_CODE), "code");
}

/* Moments follow the documented lane order bit for bit; clip and scale follow
 * the formula; codes are clamp(rint(x/scale)) and dequant = scale·code. Sizes
 * not multiple of 16 included. */
static void test_formula_and_order(void **state)
{
    (void)state;
    static float x[1029];
    static int8_t q[1029];
    static float xh[1029];
    const size_t sizes[] = {1, 2, 3, 15, 16, 17, 33, 255, 1029};
    const int ranges[][2] = {{-7, 7}, {-8, 8}, {0, 15}, {-8, 15}};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        fill_normal(x, n, 11, si, 0.37f);
        x[n / 2] *= 9.0f; /* a moderate outlier so that clipping happens */
        double s1, s2, r1, r2;
        float mx;
        assert_int_equal(lb_sawb_moments_ref(NULL, x, n, &s1, &s2, &mx), LB_OK);
        lane_sums(x, n, &r1, &r2);
        assert_true(s1 == r1 && s2 == r2);
        for (size_t ri = 0; ri < 4; ri++) {
            lb_sawb_params p = {12.1, 12.2, ranges[ri][0], ranges[ri][1]};
            if (p.qn == 0)
                for (size_t i = 0; i < n; i++) x[i] = fabsf(x[i]);
            lane_sums(x, n, &r1, &r2);
            float scale;
            double clip;
            int fb;
            assert_int_equal(lb_sawb_scale_ref(NULL, &p, x, n, &scale, &clip, &fb), LB_OK);
            double want_clip = 12.1 * sqrt(r2 / (double)n) - 12.2 * (r1 / (double)n);
            assert_true(clip == want_clip);
            if (clip > 0) {
                assert_int_equal(fb, 0);
                assert_true(scale == (float)(2.0 * clip / (double)(p.qp - p.qn)));
            } else {
                assert_int_equal(fb, 1); /* n = 1, 2: |x| nearly constant */
            }
            float s2f;
            assert_int_equal(lb_sawb_quantize_ref(NULL, &p, x, n, q, &s2f, xh), LB_OK);
            assert_true(s2f == scale);
            for (size_t i = 0; i < n; i++) {
                float v = nearbyintf(x[i] / scale);
                v = fminf(fmaxf(v, (float)p.qn), (float)p.qp);
                assert_int_equal(q[i], (int)v);
                assert_true(xh[i] == scale * (float)q[i]);
                /* inside the range the error is at most half a step */
                if (x[i] / scale <= (float)p.qp && x[i] / scale >= (float)p.qn)
                    assert_true(fabsf(x[i] - xh[i]) <= 0.5f * scale * (1.0f + 1e-6f));
            }
        }
    }
}

/* Ties go to even (torch.round), and clamping happens after rounding. */
static void test_ties_even(void **state)
{
    (void)state;
    const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 100.0f, -100.0f};
    const int want[] = {0, 2, 2, 0, -2, 7, -7};
    int8_t q[7];
    float xh[7];
    assert_int_equal(lb_sawb_quantize_with_scale_ref(NULL, -7, 7, 1.0f, x, 7, q, xh), LB_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(q[i], want[i]);
        assert_true(xh[i] == (float)want[i]);
    }
    /* a frozen scale makes the quantizer idempotent */
    int8_t q2[7];
    float xh2[7];
    assert_int_equal(lb_sawb_quantize_with_scale_ref(NULL, -7, 7, 1.0f, xh, 7, q2, xh2), LB_OK);
    for (int i = 0; i < 7; i++) assert_int_equal(q2[i], q[i]);
    /* bad arguments */
    assert_int_equal(lb_sawb_quantize_with_scale_ref(NULL, 1, 7, 1.0f, x, 7, q, xh), LB_ERR_ARG);
    assert_int_equal(lb_sawb_quantize_with_scale_ref(NULL, -7, 7, -1.0f, x, 7, q, xh), LB_ERR_ARG);
    lb_sawb_params bad = {12.1, NAN, -7, 7};
    float s;
    assert_int_equal(lb_sawb_scale_ref(NULL, &bad, x, 7, &s, NULL, NULL), LB_ERR_ARG);
}

/* Gaussian input: clip ≈ (c1 − c2·sqrt(2/π))σ = 2.3656σ. By the delta method
 * Var(clip) = σ²/n · (c1²/2 + c2²(1 − 2/π) − c1c2·sqrt(2/π)) (≈ 9.51 σ²/n);
 * the test allows 5 standard errors. */
static void test_gaussian_clip(void **state)
{
    (void)state;
    enum { N = 65536 };
    static float x[N];
    const double sigma = 0.02, c1 = 12.1, c2 = 12.2, r = sqrt(2.0 / LB_PI);
    fill_normal(x, N, 5, 77, (float)sigma);
    lb_sawb_params p = lb_sawb_default_params();
    float scale;
    double clip;
    assert_int_equal(lb_sawb_scale_ref(NULL, &p, x, N, &scale, &clip, NULL), LB_OK);
    double want = (c1 - c2 * r) * sigma;
    double var = sigma * sigma / N * (c1 * c1 / 2 + c2 * c2 * (1 - 2 / LB_PI) - c1 * c2 * r);
    double se = sqrt(var);
    print_message("gaussian clip %.6g, expected %.6g, se %.3g\n", clip, want, se);
    assert_true(fabs(clip - want) < 5 * se);
    assert_true(fabs(want / sigma - 2.3656) < 1e-3);
}

static void test_zero_and_empty(void **state)
{
    (void)state;
    float x[8] = {0, -0.0f, 0, 0, 0, 0, 0, 0};
    int8_t q[8];
    float xh[8];
    float s = -1;
    lb_sawb_params p = lb_sawb_default_params();
    memset(q, 5, sizeof q);
    assert_int_equal(lb_sawb_quantize_ref(NULL, &p, x, 8, q, &s, xh), LB_OK);
    assert_true(s == 0.0f);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(q[i], 0);
        assert_true(xh[i] == 0.0f && !signbit(xh[i]));
    }
    s = -1;
    assert_int_equal(lb_sawb_quantize_ref(NULL, &p, x, 0, q, &s, xh), LB_OK);
    assert_true(s == 0.0f);
}

/* |x| constant (±c): sqrt(mean x²)/mean|x| = 1 < c2/c1, clip < 0 → fallback
 * scale max|x|/7, every element maps to ±7 and back to ±c (to one rounding). */
static void test_constant_magnitude(void **state)
{
    (void)state;
    float x[10];
    int8_t q[10];
    float xh[10];
    for (int i = 0; i < 10; i++) x[i] = (i % 3) ? 0.75f : -0.75f;
    lb_sawb_params p = lb_sawb_default_params();
    float s;
    double clip;
    int fb;
    assert_int_equal(lb_sawb_scale_ref(NULL, &p, x, 10, &s, &clip, &fb), LB_OK);
    assert_true(clip < 0);
    assert_int_equal(fb, 1);
    assert_true(s == 0.75f / 7.0f);
    assert_int_equal(lb_sawb_quantize_ref(NULL, &p, x, 10, q, &s, xh), LB_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(q[i], x[i] < 0 ? -7 : 7);
        assert_true(fabsf(xh[i] - x[i]) <= 0.75f * FLT_EPSILON);
    }
    /* unsigned grid: r = qp */
    lb_sawb_params pu = {12.1, 12.2, 0, 15};
    for (int i = 0; i < 10; i++) x[i] = 2.0f;
    assert_int_equal(lb_sawb_quantize_ref(NULL, &pu, x, 10, q, &s, xh), LB_OK);
    assert_true(s == 2.0f / 15.0f);
    for (int i = 0; i < 10; i++) assert_int_equal(q[i], 15);
}

/* One huge outlier among small values: the moments are dominated by it; the
 * clip (≈ 12.1·M/sqrt(n)) is far below M, so SAWB clips the outlier to qp·s
 * and rounds everything else to 0. */
static void test_outlier(void **state)
{
    (void)state;
    enum { N = 4096 };
    static float x[N], xh[N];
    static int8_t q[N];
    fill_normal(x, N, 3, 1, 1.0f);
    x[1234] = 1e6f;
    lb_sawb_params p = lb_sawb_default_params();
    float s;
    double clip;
    assert_int_equal(lb_sawb_scale_ref(NULL, &p, x, N, &s, &clip, NULL), LB_OK);
    assert_true(clip > 0 && clip < 1e6 / 4);
    assert_int_equal(lb_sawb_quantize_ref(NULL, &p, x, N, q, &s, xh), LB_OK);
    for (int i = 0; i < N; i++) assert_int_equal(q[i], i == 1234 ? 7 : 0);
}

static void test_nonfinite(void **state)
{
    (void)state;
    float x[5] = {1, 2, 3, 4, 5};
    int8_t q[5] = {9, 9, 9, 9, 9};
    float s = 42.0f;
    lb_sawb_params p = lb_sawb_default_params();
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        x[3] = bad[b];
        assert_int_equal(lb_sawb_quantize_ref(ctx, &p, x, 5, q, &s, NULL), LB_ERR_NUMERIC);
        assert_non_null(strstr(lb_ctx_error(ctx), "index 3"));
        assert_true(s == 42.0f);
        for (int i = 0; i < 5; i++) assert_int_equal(q[i], 9);
        assert_int_equal(lb_sawb_quantize_with_scale_ref(ctx, -7, 7, 1.0f, x, 5, q, NULL), LB_ERR_NUMERIC);
    }
    lb_ctx_free(ctx);
}

/* PyTorch fixture: UniformQuantizeSawb's formula evaluated in float64 by
 * torch, the scale rounded to float32, codes torch.round(clamp(x/scale)). */
static void test_torch_fixture(void **state)
{
    (void)state;
    const char *cases[] = {"w7", "w8", "a15", "a8_15"};
    const int ranges[][2] = {{-7, 7}, {-8, 8}, {0, 15}, {-8, 15}};
    char path[1024], name[64];
    for (int c = 0; c < 4; c++) {
        lb_tensor *x = NULL, *q = NULL, *s = NULL;
        snprintf(name, sizeof name, "luq/sawb_%s_x.npy", cases[c]);
        assert_int_equal(lb_npy_read(NULL, lb_test_path(path, sizeof path, lb_test_data_dir(), name), &x), LB_OK);
        snprintf(name, sizeof name, "luq/sawb_%s_codes.npy", cases[c]);
        assert_int_equal(lb_npy_read(NULL, lb_test_path(path, sizeof path, lb_test_data_dir(), name), &q), LB_OK);
        snprintf(name, sizeof name, "luq/sawb_%s_scale.npy", cases[c]);
        assert_int_equal(lb_npy_read(NULL, lb_test_path(path, sizeof path, lb_test_data_dir(), name), &s), LB_OK);
        assert_int_equal(x->dtype, LB_F32);
        assert_int_equal(q->dtype, LB_S8);
        assert_int_equal(s->dtype, LB_F32);
        assert_int_equal(x->numel, q->numel);
        lb_sawb_params p = {12.1, 12.2, ranges[c][0], ranges[c][1]};
        int8_t *mine = malloc(x->numel);
        float scale;
        assert_int_equal(lb_sawb_quantize_ref(NULL, &p, lb_tensor_f32(x), x->numel, mine, &scale, NULL), LB_OK);
        /* float64 sums in another order: the float32 scale agrees unless the
         * double lands within 1e-16 of a float rounding boundary */
        assert_true(scale == lb_tensor_f32(s)[0]);
        for (size_t i = 0; i < x->numel; i++) assert_int_equal(mine[i], lb_tensor_s8(q)[i]);
        free(mine);
        lb_tensor_free(x);
        lb_tensor_free(q);
        lb_tensor_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grids),
        cmocka_unit_test(test_formula_and_order),
        cmocka_unit_test(test_ties_even),
        cmocka_unit_test(test_gaussian_clip),
        cmocka_unit_test(test_zero_and_empty),
        cmocka_unit_test(test_constant_magnitude),
        cmocka_unit_test(test_outlier),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_torch_fixture),
    };
    return LB_RUN_TESTS(tests);
}

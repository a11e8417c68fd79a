/* tests/test_outlier_metrics.c — inf norm and kurtosis (ref/outlier_metrics.c):
 * the spec's small example, known distributions (constant, symmetric two-point,
 * a Gaussian sample within 5 standard errors), NaN/Inf behaviour and PyTorch
 * fixtures of the authors' kurtosis (spec outlier_free_attention_and_w8a8.md
 * §3.2, §7 metrics). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/npy.h"
#include "lowbit/ref/outlier_metrics.h"
#include "test_fixture.h"

static lb_tensor *load(const char *name, size_t numel)
{
    lb_tensor *t = lb_test_fixture("attention", name, numel);
    if (t->dtype != LB_F64) fail_msg("fixture %s is not f64", name);
    return t;
}

/* Spec §3.2 / §7: [1, 2, 3, 4, 100] gives 2.0779 (code), 3.2467 (population
 * moments) and inf norm 100. */
static void test_spec_example(void **state)
{
    (void)state;
    const double x[5] = {1, 2, 3, 4, 100};
    const float xf[5] = {1, 2, 3, 4, 100};
    double k, kf, n;
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 5, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, x, &k), LB_OK);
    assert_true(fabs(k - 2.0779) < 5e-5);
    assert_int_equal(lb_kurtosis_ref(NULL, 1, 5, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, xf, &kf), LB_OK);
    assert_true(k == kf); /* same double arithmetic on the same values */
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 5, LB_KURTOSIS_PEARSON, 0, x, &k), LB_OK);
    assert_true(fabs(k - 3.2467) < 5e-5);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 5, LB_KURTOSIS_FISHER, 0, x, &k), LB_OK);
    assert_true(fabs(k - 0.2467) < 5e-5);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 1, 5, x, &n), LB_OK);
    assert_true(n == 100.0);
    /* closed form of the code's estimator: mixed denominators */
    const double mu = 22.0, N = 5;
    double s2 = 0, s4 = 0;
    for (int i = 0; i < 5; i++) s2 += (x[i] - mu) * (x[i] - mu), s4 += pow(x[i] - mu, 4);
    const double expect = (s4 / N) / ((s2 / (N - 1)) * (s2 / (N - 1)) + 1e-6);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 5, LB_KURTOSIS_CODE, 1e-6, x, &k), LB_OK);
    assert_true(fabs(k - expect) <= 1e-14 * expect);
}

/* A constant row: code mode gives exactly 0 (0 / eps); the textbook modes
 * are undefined and return LB_ERR_NUMERIC naming the row. */
static void test_constant(void **state)
{
    (void)state;
    double x[2 * 8], k[2];
    for (int i = 0; i < 8; i++) x[i] = i; /* row 0 fine */
    for (int i = 8; i < 16; i++) x[i] = 3.5;
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 2, 8, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, x, k), LB_OK);
    assert_true(k[1] == 0.0);
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_kurtosis_ref_f64(ctx, 2, 8, LB_KURTOSIS_PEARSON, 0, x, k), LB_ERR_NUMERIC);
    assert_true(strstr(lb_ctx_error(ctx), "row 1") != NULL);
    assert_int_equal(lb_kurtosis_ref_f64(ctx, 2, 8, LB_KURTOSIS_FISHER, 0, x, k), LB_ERR_NUMERIC);
    assert_int_equal(lb_kurtosis_ref_f64(ctx, 2, 8, LB_KURTOSIS_CODE, 0.0, x, k), LB_ERR_NUMERIC);
    double n[2];
    assert_int_equal(lb_inf_norm_ref_f64(ctx, 2, 8, x, n), LB_OK);
    assert_true(n[0] == 7.0 && n[1] == 3.5);
    lb_ctx_free(ctx);
}

/* A symmetric two-point distribution {-a, +a} (equal counts) has Pearson
 * kurtosis exactly 1 (Fisher -2); the code's estimator is
 * (1/N) S4 / ((S2/(N-1))^2 + eps) with S2 = N a^2, S4 = N a^4. */
static void test_two_point(void **state)
{
    (void)state;
    enum { N = 64 };
    double x[N], k;
    const double a = 3.0;
    for (int i = 0; i < N; i++) x[i] = (i % 3 == 0) == (i < N / 2) ? a : -a; /* shuffled signs */
    int pos = 0;
    for (int i = 0; i < N; i++) pos += x[i] > 0;
    assert_int_equal(pos, N / 2);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_PEARSON, 0, x, &k), LB_OK);
    assert_true(k == 1.0);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_FISHER, 0, x, &k), LB_OK);
    assert_true(k == -2.0);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, x, &k), LB_OK);
    const double var = N * a * a / (N - 1);
    assert_true(fabs(k - a * a * a * a / (var * var + 1e-6)) < 1e-14);
    /* = ((N-1)/N)^2 but for eps: relative effect eps / var^2 = 1.2e-8 here */
    assert_true(fabs(k - ((double)(N - 1) / N) * ((double)(N - 1) / N)) < 2e-8);
}

/* A Gaussian sample (Box-Muller on the counter RNG): Pearson kurtosis is 3
 * with asymptotic standard error sqrt(24/N); accept 5 standard errors. The
 * code's estimator is the same times ((N-1)/N)^2 (up to eps). */
static void test_gaussian(void **state)
{
    (void)state;
    enum { N = 1 << 17 };
    static double x[N];
    const uint64_t stream = lb_rng_stream("test_outlier_metrics", 0);
    for (int i = 0; i < N; i += 2) {
        double u1 = 1.0 - lb_rng_uniform_f64(11, stream, (uint64_t)i); /* (0, 1] */
        double u2 = lb_rng_uniform_f64(11, stream, (uint64_t)i + 1);
        double r = sqrt(-2.0 * log(u1));
        x[i] = r * cos(2 * 3.14159265358979323846 * u2);
        x[i + 1] = r * sin(2 * 3.14159265358979323846 * u2);
    }
    double kp, kf, kc;
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_PEARSON, 0, x, &kp), LB_OK);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_FISHER, 0, x, &kf), LB_OK);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, x, &kc), LB_OK);
    const double se = sqrt(24.0 / N);
    assert_true(fabs(kp - 3.0) < 5 * se);
    assert_true(kf == kp - 3.0);
    const double shrink = ((double)(N - 1) / N) * ((double)(N - 1) / N);
    assert_true(fabs(kc - kp * shrink) < 1e-6 * kp); /* eps / s^4 ~ 1e-6 */
    /* a single huge outlier dominates: kurtosis ~ N for one value at 1e4 */
    x[123] = 1e4;
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_PEARSON, 0, x, &kp), LB_OK);
    assert_true(kp > 1000.0);
    double n;
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 1, N, x, &n), LB_OK);
    assert_true(n == 1e4);
}

/* Pearson kurtosis is invariant to shift and scale (up to rounding). */
static void test_invariance(void **state)
{
    (void)state;
    enum { N = 257 };
    double x[N], y[N], kx, ky;
    const uint64_t stream = lb_rng_stream("test_outlier_metrics", 1);
    for (int i = 0; i < N; i++) {
        double u = lb_rng_uniform_f64(5, stream, (uint64_t)i);
        x[i] = u * u * u - 0.2;
        y[i] = -4.0 * x[i] + 17.0;
    }
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_PEARSON, 0, x, &kx), LB_OK);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, N, LB_KURTOSIS_PEARSON, 0, y, &ky), LB_OK);
    assert_true(fabs(kx - ky) < 1e-12 * kx);
}

/* NaN / Inf: inf norm propagates NaN (anywhere in the row, also after an
 * inf) and returns +inf for +-inf; kurtosis gives NaN. Rows are independent. */
static void test_special_values(void **state)
{
    (void)state;
    const double x[5 * 4] = {1, NAN, 3, -4,           /* NaN */
                             1, -INFINITY, 3, 4,      /* -inf */
                             INFINITY, 2, NAN, 1,     /* inf then NaN */
                             -1e300, 2, 3, 4,         /* huge finite */
                             -0.5, 0.25, -0.0, 0.125};
    double n[5], k[5];
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 5, 4, x, n), LB_OK);
    assert_true(isnan(n[0]));
    assert_true(n[1] == INFINITY);
    assert_true(isnan(n[2]));
    assert_true(n[3] == 1e300);
    assert_true(n[4] == 0.5);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 5, 4, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, x, k), LB_OK);
    assert_true(isnan(k[0]) && isnan(k[1]) && isnan(k[2]));
    assert_true(isnan(k[3])); /* 1e300^4 overflows: inf/inf */
    assert_true(isfinite(k[4]));
    /* float input */
    const float xf[4] = {1.0f, -FLT_MAX, 0.0f, NAN};
    double nf;
    assert_int_equal(lb_inf_norm_ref(NULL, 1, 3, xf, &nf), LB_OK);
    assert_true(nf == (double)FLT_MAX);
    assert_int_equal(lb_inf_norm_ref(NULL, 1, 4, xf, &nf), LB_OK);
    assert_true(isnan(nf));
}

/* Against the authors' kurtosis (utils.py) and torch's inf norm, per sequence
 * of a (sequences, T, d) tensor flattened to (sequences, T*d). */
static void test_torch_fixtures(void **state)
{
    (void)state;
    lb_tensor *x = load("metrics_x", 0);
    assert_int_equal(x->ndim, 3);
    const int64_t rows = x->shape[0], cols = x->shape[1] * x->shape[2];
    lb_tensor *e_inf = load("metrics_inf", (size_t)rows), *e_code = load("metrics_kurt_code", (size_t)rows);
    lb_tensor *e_p = load("metrics_kurt_pearson", (size_t)rows), *e_f = load("metrics_kurt_fisher", (size_t)rows);
    double v[16];
    assert_true(rows <= 16);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, rows, cols, lb_tensor_f64(x), v), LB_OK);
    for (int64_t r = 0; r < rows; r++) assert_true(v[r] == lb_tensor_f64(e_inf)[r]); /* exact */
    const struct {
        lb_kurtosis_mode mode;
        lb_tensor *e;
    } cases[] = {{LB_KURTOSIS_CODE, e_code}, {LB_KURTOSIS_PEARSON, e_p}, {LB_KURTOSIS_FISHER, e_f}};
    for (int c = 0; c < 3; c++) {
        assert_int_equal(lb_kurtosis_ref_f64(NULL, rows, cols, cases[c].mode, LB_KURTOSIS_EPS,
                                             lb_tensor_f64(x), v),
                         LB_OK);
        for (int64_t r = 0; r < rows; r++) {
            const double e = lb_tensor_f64(cases[c].e)[r];
            /* torch reduces in another order (and takes sqrt then ^4): ulps */
            if (!(fabs(v[r] - e) <= 1e-12 * fabs(e) + 1e-13))
                fail_msg("mode %s row %lld: %.17g vs torch %.17g", lb_kurtosis_mode_name(cases[c].mode),
                         (long long)r, v[r], e);
        }
    }
    /* the small-scale row (x 1e-3): eps dominates the code's denominator */
    assert_true(lb_tensor_f64(e_code)[2] < 0.5 * lb_tensor_f64(e_p)[2]);
    lb_tensor_free(x);
    lb_tensor_free(e_inf);
    lb_tensor_free(e_code);
    lb_tensor_free(e_p);
    lb_tensor_free(e_f);
}

/* The float entry points widen and run the same double arithmetic. */
static void test_f32_matches_f64(void **state)
{
    (void)state;
    enum { R = 3, C = 50 };
    float xf[R * C];
    double xd[R * C], a[R], b[R];
    const uint64_t stream = lb_rng_stream("test_outlier_metrics", 2);
    for (int i = 0; i < R * C; i++) {
        xf[i] = (float)(10 * lb_rng_uniform_f64(9, stream, (uint64_t)i) - 3);
        xd[i] = xf[i];
    }
    for (int m = 0; m < 3; m++) {
        assert_int_equal(lb_kurtosis_ref(NULL, R, C, (lb_kurtosis_mode)m, LB_KURTOSIS_EPS, xf, a), LB_OK);
        assert_int_equal(lb_kurtosis_ref_f64(NULL, R, C, (lb_kurtosis_mode)m, LB_KURTOSIS_EPS, xd, b), LB_OK);
        assert_memory_equal(a, b, sizeof a);
    }
    assert_int_equal(lb_inf_norm_ref(NULL, R, C, xf, a), LB_OK);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, R, C, xd, b), LB_OK);
    assert_memory_equal(a, b, sizeof a);
}

static void test_arguments(void **state)
{
    (void)state;
    double x[4] = {1, 2, 3, 4}, out[4];
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 1, LB_KURTOSIS_CODE, 1e-6, x, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, -1, 4, LB_KURTOSIS_CODE, 1e-6, x, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 4, (lb_kurtosis_mode)7, 1e-6, x, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 4, LB_KURTOSIS_CODE, -1.0, x, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 4, LB_KURTOSIS_CODE, NAN, x, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 1, 4, LB_KURTOSIS_CODE, 1e-6, NULL, out), LB_ERR_ARG);
    assert_int_equal(lb_kurtosis_ref_f64(NULL, 0, 4, LB_KURTOSIS_CODE, 1e-6, NULL, NULL), LB_OK);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 1, 0, x, out), LB_ERR_ARG);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 1, 4, x, NULL), LB_ERR_ARG);
    assert_int_equal(lb_inf_norm_ref_f64(NULL, 1, 1, x, out), LB_OK);
    assert_true(out[0] == 1.0);
    assert_string_equal(lb_kurtosis_mode_name(LB_KURTOSIS_FISHER), "fisher");
    assert_null(lb_kurtosis_mode_name((lb_kurtosis_mode)3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_two_point),
        cmocka_unit_test(test_gaussian),
        cmocka_unit_test(test_invariance),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_f32_matches_f64),
        cmocka_unit_test(test_arguments),
    };
    return LB_RUN_TESTS(tests);
}

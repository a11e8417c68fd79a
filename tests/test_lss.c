/* tests/test_lss.c — leverage score sampling (ref/leverage_sampling.c): spec
 * int4_training.md A.5 and §4.4 — the worked examples, budget and range
 * properties, proportionality, the authors' loop (PyTorch fixture), the
 * "non-zero" and "all" modes, Bernoulli masks (frequency and the unbiased
 * 1/p estimator, with mean and variance checked against bounds derived from
 * the closed-form variance Σ(1/p − 1)a²), the layer's integer scores, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/rng.h"
#include "test_util.h"
#include "xi_test.h"

static void probs(int64_t L, const double *c, double budget, double *p)
{
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, L, c, budget, p, NULL), LB_OK);
}

/* The spec's checked examples. */
static void test_worked_examples(void **state)
{
    (void)state;
    double p[6];
    const double c1[4] = {100, 1, 1, 1};
    probs(4, c1, 2, p);
    assert_true(p[0] == 1.0);
    for (int i = 1; i < 4; i++) assert_true(fabs(p[i] - 1.0 / 3.0) < 1e-15);
    const double c2[4] = {5, 5, 5, 5};
    probs(4, c2, 2, p);
    for (int i = 0; i < 4; i++) assert_true(p[i] == 0.5);
    const double c3[6] = {10, 0, 0, 0, 0, 0};
    probs(6, c3, 3, p);
    assert_true(p[0] == 1.0);
    for (int i = 1; i < 6; i++) assert_true(p[i] == 0.0);
    const double c4[6] = {0};
    probs(6, c4, 3, p); /* the authors' code divides by zero here */
    for (int i = 0; i < 6; i++) assert_true(p[i] == 0.0);
}

/* Heavy-tailed random scores, several budgets: 0 <= p <= 1, Σp = budget
 * whenever at least `budget` scores are positive (else every positive row has
 * p = 1), p ∝ c among unclamped rows, c = 0 ⇒ p = 0. */
static void test_properties(void **state)
{
    (void)state;
    enum { L = 200 };
    double c[L], p[L];
    for (int trial = 0; trial < 20; trial++) {
        int positive = 0;
        for (int i = 0; i < L; i++) {
            double u = lb_rng_uniform_f64(100 + (uint64_t)trial, 1, (uint64_t)i);
            c[i] = (i % (2 + trial % 5) == 0) ? 0.0 : pow(1.0 - u, -1.0 / 0.8); /* Pareto(0.8) */
            positive += c[i] > 0;
        }
        const double budgets[4] = {L / 2.0, 10.0, 1.0, (double)L};
        for (int t = 0; t < 4; t++) {
            double B = budgets[t];
            int rounds = 0;
            assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, L, c, B, p, &rounds), LB_OK);
            double sum = 0, ratio = -1;
            for (int i = 0; i < L; i++) {
                assert_true(p[i] >= 0.0 && p[i] <= 1.0);
                if (c[i] == 0.0) assert_true(p[i] == 0.0);
                sum += p[i];
                if (p[i] < 1.0 && c[i] > 0) {
                    double r = p[i] / c[i];
                    if (ratio < 0) ratio = r;
                    assert_true(fabs(r - ratio) <= 1e-12 * ratio);
                }
            }
            if (positive >= B) {
                assert_true(fabs(sum - B) <= 1e-9 * B);
            } else {
                for (int i = 0; i < L; i++) assert_true(p[i] == (c[i] > 0 ? 1.0 : 0.0));
            }
            /* clamped rows have the largest scores */
            double min_clamped = INFINITY, max_free = 0;
            for (int i = 0; i < L; i++) {
                if (p[i] == 1.0 && c[i] < min_clamped) min_clamped = c[i];
                if (p[i] < 1.0 && c[i] > max_free) max_free = c[i];
            }
            assert_true(max_free <= min_clamped);
        }
    }
}

/* The authors' while loop in PyTorch (special_quantize.py), budget L/2. */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy fc, fp;
    assert_int_equal(xi_npy_load("xi/lss_scores.npy", &fc), 0);
    assert_int_equal(xi_npy_load("xi/lss_p.npy", &fp), 0);
    double *p = malloc((size_t)fc.numel * sizeof *p);
    probs(fc.numel, fc.data, (double)fc.numel / 2.0, p);
    assert_int_equal(xi_check_close("lss p", fc.numel, p, fp.data, 1e-13, 1e-12), 0);
    free(p);
    xi_npy_free(&fc), xi_npy_free(&fp);
}

static void test_other_modes(void **state)
{
    (void)state;
    const double c[5] = {0, 3, 0, 1e-30, 7};
    double p[5];
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_NONZERO, 5, c, 0, p, NULL), LB_OK);
    const double nz[5] = {0, 1, 0, 1, 1};
    assert_memory_equal(p, nz, sizeof p);
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_ALL, 5, c, 0, p, NULL), LB_OK);
    for (int i = 0; i < 5; i++) assert_true(p[i] == 1.0);
    assert_string_equal(lb_lss_mode_name(LB_LSS_NONZERO), "nonzero");
}

/* Masks: m_i = 1[u_i < p_i] with the documented uniforms; p = 1 always kept,
 * p = 0 never; weights m/p. Over K streams, each row's keep frequency is
 * within 5 SE of p_i, and the estimator S = Σ (m_i/p_i) a_i of A = Σ a_i has
 * mean within 5 SE of A and sample variance within 5 SE of the closed form
 * V = Σ (1/p_i − 1) a_i² (SE of the sample variance from the exact fourth
 * cumulant of S: κ4 = Σ (a_i/p_i)^4 p_i(1−p_i)(1 − 6p_i(1−p_i)),
 * Var(s²) ≈ (κ4 + 2V²)/K). */
static void test_sampling_unbiased(void **state)
{
    (void)state;
    enum { L = 40, K = 20000 };
    double c[L], p[L], a[L], w[L];
    uint8_t m[L];
    for (int i = 0; i < L; i++) {
        a[i] = xi_normal(8, (uint64_t)i) * (i % 9 == 0 ? 20.0 : 1.0);
        c[i] = fabs(a[i]);
    }
    probs(L, c, L / 2.0, p);
    double A = 0, V = 0, k4 = 0;
    for (int i = 0; i < L; i++) {
        A += a[i];
        V += (1 / p[i] - 1) * a[i] * a[i];
        double q = p[i] * (1 - p[i]), s = a[i] / p[i];
        k4 += s * s * s * s * q * (1 - 6 * q);
    }
    static long kept[L];
    double sum = 0, sum2 = 0;
    for (int k = 0; k < K; k++) {
        uint64_t stream = lb_rng_stream("test.lss", (uint64_t)k);
        assert_int_equal(lb_lss_sample_ref(NULL, L, p, 17, stream, m, w), LB_OK);
        double s = 0;
        for (int i = 0; i < L; i++) {
            assert_int_equal(m[i], lb_rng_uniform_f64(17, stream, (uint64_t)i) < p[i]);
            assert_true(w[i] == (m[i] ? 1.0 / p[i] : 0.0));
            if (p[i] == 1.0) assert_int_equal(m[i], 1);
            kept[i] += m[i];
            s += w[i] * a[i];
        }
        sum += s;
        sum2 += s * s;
    }
    for (int i = 0; i < L; i++)
        assert_true(fabs((double)kept[i] / K - p[i]) <= 5 * sqrt(p[i] * (1 - p[i]) / K));
    double mean = sum / K, svar = sum2 / K - mean * mean;
    assert_true(V > 0);
    assert_true(fabs(mean - A) <= 5 * sqrt(V / K));
    double se_var = sqrt((k4 + 2 * V * V) / K);
    assert_true(fabs(svar - V) <= 5 * se_var);
}

/* Integer row norms of the stacked [hi; lo] rows, with and without X̂. */
static void test_layer_scores(void **state)
{
    (void)state;
    const int8_t hi[2 * 3] = {1, -2, 2, 0, 0, 0};
    const int8_t lo[2 * 3] = {3, 0, -4, 0, 5, 0};
    const int8_t xq[2 * 2] = {0, 2, 7, -8};
    double s[4];
    assert_int_equal(lb_lss_bs_scores_ref(NULL, 2, 3, hi, lo, 2, xq, s), LB_OK);
    assert_true(s[0] == 14.0 * 3.0 * 2.0);   /* ‖hi_0‖ = 3, ‖x_0‖ = 2 */
    assert_true(s[1] == 0.0);                /* hi_1 = 0 */
    assert_true(s[2] == 5.0 * 2.0);          /* ‖lo_0‖ = 5 */
    assert_true(s[3] == sqrt(25.0 * 113.0)); /* ‖lo_1‖² = 25, ‖x_1‖² = 113 */
    assert_int_equal(lb_lss_bs_scores_ref(NULL, 2, 3, hi, lo, 0, NULL, s), LB_OK);
    const double e[4] = {42.0, 0.0, 5.0, 5.0};
    assert_memory_equal(s, e, sizeof e);
}

static void test_errors(void **state)
{
    (void)state;
    double c[3] = {1, NAN, 2}, p[3];
    uint8_t m[3];
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, 3, c, 1.5, p, NULL), LB_ERR_NUMERIC);
    c[1] = INFINITY;
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_NONZERO, 3, c, 1.5, p, NULL), LB_ERR_NUMERIC);
    c[1] = -1;
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, 3, c, 1.5, p, NULL), LB_ERR_ARG);
    c[1] = 1;
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, 3, c, 0.0, p, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lss_probabilities_ref(NULL, LB_LSS_BERNOULLI, 3, c, 3.5, p, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lss_probabilities_ref(NULL, (lb_lss_mode)7, 3, c, 1.5, p, NULL), LB_ERR_ARG);
    p[0] = 0.5, p[1] = 1.5, p[2] = 0;
    assert_int_equal(lb_lss_sample_ref(NULL, 3, p, 0, 0, m, NULL), LB_ERR_ARG);
    p[1] = NAN;
    assert_int_equal(lb_lss_sample_ref(NULL, 3, p, 0, 0, m, NULL), LB_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_examples),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_pytorch_fixture),
        cmocka_unit_test(test_other_modes),
        cmocka_unit_test(test_sampling_unbiased),
        cmocka_unit_test(test_layer_scores),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

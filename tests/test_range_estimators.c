/* tests/test_range_estimators.c — range estimators of ref/range_estimators.c:
 * NumPy percentile fixtures and hand-made cases, the running (EMA) min-max
 * update against the authors' PyTorch arithmetic, the MSE grid against a
 * PyTorch re-run of the authors' grid search, its optimality over its grid,
 * its tie rule, and "never worse than min-max" with margin 0. */
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

static lb_tensor *load(const char *name) { return lb_test_fixture("uniform_power", name, 0); }

static lb_uniform_config cfg_of(int bits, int symmetric)
{
    lb_uniform_config c = lb_uniform_config_default();
    c.bits = bits;
    c.symmetric = symmetric;
    return c;
}

static float rnd(uint64_t i, float spread) { return (lb_rng_uniform_f32(91, 2, i) * 2.0f - 1.0f) * spread; }

/* np.percentile on float32 arrays of sizes 1..1000, p in {50, ..., 100}. */
static void test_percentile_fixtures(void **state)
{
    (void)state;
    const int sizes[5] = {1, 2, 7, 33, 1000};
    for (int s = 0; s < 5; s++) {
        char name[64];
        snprintf(name, sizeof name, "pct_n%d_x", sizes[s]);
        lb_tensor *x = load(name);
        snprintf(name, sizeof name, "pct_n%d_p", sizes[s]);
        lb_tensor *p = load(name);
        snprintf(name, sizeof name, "pct_n%d_lo", sizes[s]);
        lb_tensor *lo = load(name);
        snprintf(name, sizeof name, "pct_n%d_hi", sizes[s]);
        lb_tensor *hi = load(name);
        lb_qgroups gr = {1, 1, (int64_t)x->numel};
        for (size_t k = 0; k < p->numel; k++) {
            float l, h;
            assert_int_equal(lb_range_percentile_ref(NULL, &gr, lb_tensor_f32(x), lb_tensor_f64(p)[k], &l, &h), LB_OK);
            if (l != lb_tensor_f32(lo)[k] || h != lb_tensor_f32(hi)[k])
                fprintf(stderr, "n=%d p=%g: (%.9g, %.9g) expected (%.9g, %.9g)\n", sizes[s], lb_tensor_f64(p)[k],
                        (double)l, (double)h, (double)lb_tensor_f32(lo)[k], (double)lb_tensor_f32(hi)[k]);
            assert_true(l == lb_tensor_f32(lo)[k] && h == lb_tensor_f32(hi)[k]);
        }
        lb_tensor_free(x);
        lb_tensor_free(p);
        lb_tensor_free(lo);
        lb_tensor_free(hi);
    }
}

/* Hand-made: [4, 1, 3, 2] -> P75 = 3.25, P25 = 1.75; p = 100 -> max/min;
 * p = 50 -> the median; per-channel groups are independent. */
static void test_percentile_rule(void **state)
{
    (void)state;
    const float x[4] = {4.0f, 1.0f, 3.0f, 2.0f};
    lb_qgroups gr = {1, 1, 4};
    float lo, hi;
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, x, 75.0, &lo, &hi), LB_OK);
    assert_true(lo == 1.75f && hi == 3.25f);
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, x, 100.0, &lo, &hi), LB_OK);
    assert_true(lo == 1.0f && hi == 4.0f);
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, x, 50.0, &lo, &hi), LB_OK);
    assert_true(lo == 2.5f && hi == 2.5f);
    /* r = 9 * 0.9 = 8.1 on 0..9 -> 8.1; t >= 0.5 branch: p = 95 -> 8.55 */
    float y[10], lo2[2], hi2[2];
    for (int i = 0; i < 10; i++) y[i] = (float)(9 - i);
    gr.inner = 10;
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, y, 95.0, &lo, &hi), LB_OK);
    assert_true(fabsf(hi - 8.55f) < 1e-6f && fabsf(lo - 0.45f) < 1e-6f);
    /* two channels of (2, 5): rows 9..5 and 4..0 */
    lb_qgroups g2 = {1, 2, 5};
    assert_int_equal(lb_range_percentile_ref(NULL, &g2, y, 100.0, lo2, hi2), LB_OK);
    assert_true(lo2[0] == 5.0f && hi2[0] == 9.0f && lo2[1] == 0.0f && hi2[1] == 4.0f);
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, y, 49.0, &lo, &hi), LB_ERR_ARG);
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, y, 100.5, &lo, &hi), LB_ERR_ARG);
}

/* Running min-max: 4 batches through the EMA equal the authors' float32
 * PyTorch result, and after two batches r = (1-m) m2 + m m1 in float32. */
static void test_running(void **state)
{
    (void)state;
    lb_tensor *b = load("running_batches"); /* (4, 4, 8) */
    lb_tensor *want = load("running_lo_hi"); /* (2,) */
    lb_qgroups gr = {1, 1, 32};
    lb_running_range rs = {0, 0.9};
    float run_lo = 0, run_hi = 0, lo, hi;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lb_range_minmax_ref(NULL, &gr, lb_tensor_f32(b) + 32 * i, &lo, &hi), LB_OK);
        assert_int_equal(lb_range_running_update_ref(NULL, &rs, 1, &lo, &hi, &run_lo, &run_hi), LB_OK);
        if (i == 0) assert_true(run_lo == lo && run_hi == hi && rs.initialized);
    }
    assert_true(run_lo == lb_tensor_f32(want)[0]);
    assert_true(run_hi == lb_tensor_f32(want)[1]);
    /* the update rule itself */
    lb_running_range r2 = {0, 0.9};
    float m1 = -2.0f, M1 = 3.0f, m2 = -1.0f, M2 = 5.0f, rl, rh;
    assert_int_equal(lb_range_running_update_ref(NULL, &r2, 1, &m1, &M1, &rl, &rh), LB_OK);
    assert_int_equal(lb_range_running_update_ref(NULL, &r2, 1, &m2, &M2, &rl, &rh), LB_OK);
    assert_true(rl == 0.1f * m2 + 0.9f * m1);
    assert_true(rh == 0.1f * M2 + 0.9f * M1);
    assert_true(fabs((double)rl - (-1.9)) < 1e-6 && fabs((double)rh - 3.2) < 1e-6);
    float bad = NAN;
    assert_int_equal(lb_range_running_update_ref(NULL, &r2, 1, &bad, &M2, &rl, &rh), LB_ERR_NUMERIC);
    lb_running_range r3 = {0, 1.5};
    assert_int_equal(lb_range_running_update_ref(NULL, &r3, 1, &m2, &M2, &rl, &rh), LB_ERR_ARG);
    lb_tensor_free(b);
    lb_tensor_free(want);
}

/* The MSE grid against the authors' search re-run in PyTorch. */
static void check_mse_fixture(const char *xname, const char *tag, int bits, int symmetric)
{
    lb_tensor *x = load(xname);
    char name[64];
    snprintf(name, sizeof name, "%s_range", tag);
    lb_tensor *r = load(name);
    snprintf(name, sizeof name, "%s_loss", tag);
    lb_tensor *l = load(name);
    lb_uniform_config c = cfg_of(bits, symmetric);
    lb_qgroups gr = {1, 1, (int64_t)x->numel};
    float lo, hi;
    double sse;
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, lb_tensor_f32(x), 100, 0.5, &lo, &hi), LB_OK);
    assert_int_equal(lb_range_group_sse_ref(NULL, &c, &gr, lb_tensor_f32(x), 0, lo, hi, &sse), LB_OK);
    if (lo != lb_tensor_f32(r)[0] || hi != lb_tensor_f32(r)[1])
        fprintf(stderr, "%s: (%.9g, %.9g) loss %.12g, expected (%.9g, %.9g) loss %.12g\n", tag, (double)lo,
                (double)hi, sse, (double)lb_tensor_f32(r)[0], (double)lb_tensor_f32(r)[1], lb_tensor_f64(l)[0]);
    assert_true(lo == lb_tensor_f32(r)[0] && hi == lb_tensor_f32(r)[1]);
    /* same quantizer, sums in a different order: equal to ~1e-12 relative */
    assert_true(fabs(sse - lb_tensor_f64(l)[0]) <= 1e-10 * lb_tensor_f64(l)[0] + 1e-300);
    lb_tensor_free(x);
    lb_tensor_free(r);
    lb_tensor_free(l);
}

static void test_mse_fixtures(void **state)
{
    (void)state;
    check_mse_fixture("mse_x", "mse_sym8", 8, 1);
    check_mse_fixture("mse_x", "mse_sym4", 4, 1);
    check_mse_fixture("mse_x", "mse_asym4", 4, 0);
    check_mse_fixture("mse_pos_x", "mse_pos_asym4", 4, 0);
}

/* The chosen range minimises the objective over the documented 1-D grid
 * (recomputed here), and with margin 0 it is never worse than min-max. */
static void test_mse_optimal(void **state)
{
    (void)state;
    enum { N = 257 };
    float x[N];
    for (int trial = 0; trial < 6; trial++) {
        for (int i = 0; i < N; i++) {
            float u = rnd((uint64_t)(i + N * trial), 1.0f);
            x[i] = u * u * u * 3.0f + (trial & 1 ? 0.2f : 0.0f); /* heavy-ish tails */
        }
        if (trial >= 2) x[17] = (float)trial * 40.0f; /* one outlier */
        if (trial == 5)
            for (int i = 0; i < N; i++) x[i] = fabsf(x[i]); /* one-sided */
        lb_qgroups gr = {1, 1, N};
        for (int sym = 0; sym < 2; sym++) {
            for (int bits = 3; bits <= 8; bits += 5) {
                lb_uniform_config c = cfg_of(bits, sym);
                float lo, hi, mlo, mhi;
                double best, e, emm;
                assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 100, 0.5, &lo, &hi), LB_OK);
                assert_int_equal(lb_range_group_sse_ref(NULL, &c, &gr, x, 0, lo, hi, &best), LB_OK);
                if (sym || trial == 5) {
                    /* every grid candidate: R = max(|min|, max) + 0.5, c_k = step k */
                    float mn, mx;
                    assert_int_equal(lb_range_minmax_ref(NULL, &gr, x, &mn, &mx), LB_OK);
                    double R = fmax(fabs((double)mn), (double)mx) + 0.5, step = R / 100.0;
                    for (int k = 1; k <= 100; k++) {
                        float ck = (float)(step * k);
                        assert_int_equal(
                            lb_range_group_sse_ref(NULL, &c, &gr, x, 0, mn >= 0.0f ? 0.0f : -ck, ck, &e), LB_OK);
                        assert_true(best <= e);
                    }
                }
                /* margin 0: candidate K is the min-max range itself */
                assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 100, 0.0, &lo, &hi), LB_OK);
                assert_int_equal(lb_range_group_sse_ref(NULL, &c, &gr, x, 0, lo, hi, &best), LB_OK);
                assert_int_equal(lb_range_minmax_ref(NULL, &gr, x, &mlo, &mhi), LB_OK);
                assert_int_equal(lb_range_group_sse_ref(NULL, &c, &gr, x, 0, mlo, mhi, &emm), LB_OK);
                assert_true(best <= emm);
            }
        }
    }
}

/* Ties: an all-zero tensor has loss 0 for every candidate; the first (k = 1,
 * c = 0.5/100) wins. */
static void test_mse_ties(void **state)
{
    (void)state;
    float x[16] = {0};
    lb_qgroups gr = {1, 1, 16};
    float lo, hi;
    for (int sym = 0; sym < 2; sym++) {
        lb_uniform_config c = cfg_of(8, sym);
        assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 100, 0.5, &lo, &hi), LB_OK);
        assert_true(lo == 0.0f && hi == (float)(0.5 / 100.0));
    }
    /* symmetric data {-1, 1}: every c_k >= 1 is exact at the ends... the grid
     * minimum is unique at c = 1 only if it is a candidate: margin 0 makes it
     * candidate K; the loss there is 0 and no smaller k reaches 0. */
    float y[2] = {-1.0f, 1.0f};
    gr.inner = 2;
    lb_uniform_config c = cfg_of(8, 1);
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, y, 100, 0.0, &lo, &hi), LB_OK);
    assert_true(lo == -1.0f && hi == 1.0f);
}

/* Errors and edge cases common to the estimators. */
static void test_errors(void **state)
{
    (void)state;
    float x[5] = {1, 2, NAN, 4, 5}, lo, hi;
    lb_qgroups gr = {1, 1, 5};
    lb_uniform_config c = cfg_of(8, 1);
    lb_range_options o = lb_range_options_default();
    assert_int_equal(o.method, LB_RANGE_MINMAX);
    assert_int_equal(lb_range_minmax_ref(NULL, &gr, x, &lo, &hi), LB_ERR_NUMERIC);
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, x, 99.0, &lo, &hi), LB_ERR_NUMERIC);
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 100, 0.5, &lo, &hi), LB_ERR_NUMERIC);
    x[2] = INFINITY;
    for (int m = 0; m < 3; m++) {
        o.method = (lb_range_method)m;
        assert_int_equal(lb_range_estimate_ref(NULL, &o, &c, &gr, x, &lo, &hi), LB_ERR_NUMERIC);
    }
    x[2] = 3.0f;
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 0, 0.5, &lo, &hi), LB_ERR_ARG);
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, x, 10, -1.0, &lo, &hi), LB_ERR_ARG);
    /* constants: every estimator returns the constant */
    float k[6] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
    gr.inner = 6;
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, k, 99.99, &lo, &hi), LB_OK);
    assert_true(lo == 2.5f && hi == 2.5f);
    /* one huge outlier: percentile ignores it, min-max does not */
    float y[1000];
    for (int i = 0; i < 1000; i++) y[i] = rnd((uint64_t)i, 1.0f);
    y[500] = 1e30f;
    gr.inner = 1000;
    assert_int_equal(lb_range_percentile_ref(NULL, &gr, y, 99.0, &lo, &hi), LB_OK);
    assert_true(hi < 1.0f && lo > -1.0f);
    assert_int_equal(lb_range_minmax_ref(NULL, &gr, y, &lo, &hi), LB_OK);
    assert_true(hi == 1e30f);
    assert_int_equal(lb_range_mse_ref(NULL, &c, &gr, y, 100, 0.5, &lo, &hi), LB_OK);
    assert_true(isfinite(lo) && isfinite(hi) && hi > 0.0f);
    /* empty groups give (0, 0) */
    lb_qgroups empty = {1, 2, 0};
    float l2[2], h2[2];
    assert_int_equal(lb_range_minmax_ref(NULL, &empty, y, l2, h2), LB_OK);
    assert_true(l2[0] == 0.0f && h2[1] == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile_fixtures),
        cmocka_unit_test(test_percentile_rule),
        cmocka_unit_test(test_running),
        cmocka_unit_test(test_mse_fixtures),
        cmocka_unit_test(test_mse_optimal),
        cmocka_unit_test(test_mse_ties),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

/* tests/test_bit_split.c — bit splitting of ∇Y (ref/bit_split.c): spec
 * int4_training.md A.4 and §4.3 — ranges, the clean mode is stochastic
 * rounding onto the fine grid (unbiased, variance f(1−f)·s↓², checked over many
 * seeds against 5 standard errors derived from that variance), the authors'
 * mode's documented biases, degenerate tensors, the RNG mapping, and PyTorch
 * fixtures with injected uniforms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/bit_split.h"
#include "lowbit/rng.h"
#include "test_util.h"
#include "xi_test.h"

/* v = fl32(98·g/M) as documented for the clean mode. */
static float clean_quotient(float g, float m) { return (float)((double)g * 98.0 / (double)m); }

/* Clean mode: nibbles in [-7, 7]; 14·hi + lo = floor(v + u) (v + u exact in
 * double; the float32 evaluation may differ only when r + u rounds across an
 * integer, which these draws do not hit); |n − v| < 1; the error is below one
 * fine step. */
static void test_clean_is_stochastic_rounding(void **state)
{
    (void)state;
    enum { n = 5000 };
    static float g[n], u[n], deq[n];
    static int8_t hi[n], lo[n];
    xi_fill_normal_f32(g, n, 41, 1e-3);
    g[123] = 4e-2f; /* a heavy-tailed entry sets the scale */
    const uint64_t seed = 99, stream = lb_rng_stream("test.bs", 0);
    lb_rng_fill_uniform_f32(seed, stream, 0, n, u);
    float fine;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, NULL, seed, stream, hi, lo, &fine), LB_OK);
    assert_true(fine == 4e-2f / 98.0f);
    assert_int_equal(lb_bit_split_dequantize_ref(NULL, n, hi, lo, fine, deq), LB_OK);
    for (int i = 0; i < n; i++) {
        assert_true(hi[i] >= -7 && hi[i] <= 7 && lo[i] >= -7 && lo[i] <= 7);
        float v = clean_quotient(g[i], 4e-2f);
        int nn = 14 * hi[i] + lo[i];
        assert_int_equal(nn, (int)floor((double)v + (double)u[i]));
        assert_true(fabs(nn - (double)v) < 1.0);
        assert_true(fabs((double)deq[i] - g[i]) <= fine * (1.0 + 1e-5));
    }
    assert_int_equal(14 * hi[123] + lo[123], 98);
    /* injected uniforms equal to the RNG's give the same nibbles */
    static int8_t hi2[n], lo2[n];
    float fine2;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, u, 0, 0, hi2, lo2, &fine2), LB_OK);
    assert_memory_equal(hi, hi2, n);
    assert_memory_equal(lo, lo2, n);
    /* the tie rule of the high nibble changes hi/lo but never n = floor(v + u) */
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_AWAY, n, g, u, 0, 0, hi2, lo2, &fine2), LB_OK);
    for (int i = 0; i < n; i++) assert_int_equal(14 * hi2[i] + lo2[i], 14 * hi[i] + lo[i]);
}

/* E[s↓·n] = g and Var = s↓² f(1−f): the mean over K seeds lies within 5
 * standard errors sqrt(f(1−f)/K)·s↓ of g; on-grid values (f = 0) are exact;
 * the sample variance lies within 5 standard errors of f(1−f) (its standard
 * error from the Bernoulli fourth moment: sqrt((μ4 − σ⁴)/K),
 * μ4 = σ²(1 − 3σ²), σ² = f(1−f)). */
static void test_clean_unbiased(void **state)
{
    (void)state;
    enum { n = 48, K = 4000 };
    float g[n];
    int8_t hi[n], lo[n];
    xi_fill_normal_f32(g, n, 7, 1.0);
    g[0] = -3.5f;               /* the max: on the grid */
    g[1] = 3.5f * 50.0f / 98.0f; /* roughly on the grid */
    g[2] = 0.0f;
    static double sum[n], sum2[n];
    float fine = 0;
    for (int k = 0; k < K; k++) {
        assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, NULL, 5,
                                          lb_rng_stream("test.bs.unbiased", (uint64_t)k), hi, lo, &fine), LB_OK);
        for (int i = 0; i < n; i++) {
            double nn = 14 * hi[i] + lo[i];
            sum[i] += nn;
            sum2[i] += nn * nn;
        }
    }
    for (int i = 0; i < n; i++) {
        double v = clean_quotient(g[i], 3.5f);
        double f = v - floor(v), var = f * (1 - f);
        double mean = sum[i] / K, svar = sum2[i] / K - mean * mean;
        if (var == 0.0) {
            assert_true(mean == v && svar == 0.0);
            continue;
        }
        double se = sqrt(var / K);
        if (fabs(mean - v) > 5 * se) fprintf(stderr, "element %d: mean %.6f vs %.6f (se %.2g)\n", i, mean, v, se);
        assert_true(fabs(mean - v) <= 5 * se);
        double mu4 = var * (1 - 3 * var);
        double se_var = sqrt((mu4 - var * var) / K);
        assert_true(fabs(svar - var) <= 5 * se_var + 1e-12);
    }
    /* ±max and 0 are deterministic */
    assert_true(sum[0] == -98.0 * K && sum2[2] == 0.0);
}

/* Entries on the grid s↓·Z (s↓ a power of two) come back exactly, so BS is
 * idempotent there; an all-equal tensor returns itself in the clean mode. */
static void test_clean_grid_and_idempotent(void **state)
{
    (void)state;
    enum { n = 64 };
    float g[n], deq[n];
    int8_t hi[n], lo[n];
    for (int i = 0; i < n; i++) g[i] = (float)((i * 37) % 197 - 98) * 0x1p-7f; /* n/128, |n| <= 98 */
    g[5] = 98 * 0x1p-7f;
    float fine;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, NULL, 1, 2, hi, lo, &fine), LB_OK);
    assert_true(fine == 0x1p-7f);
    assert_int_equal(lb_bit_split_dequantize_ref(NULL, n, hi, lo, fine, deq), LB_OK);
    assert_memory_equal(deq, g, sizeof g);
    for (int i = 0; i < n; i++) g[i] = -0.3f;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, NULL, 1, 2, hi, lo, &fine), LB_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(hi[i], -7);
        assert_int_equal(lo[i], 0);
    }
    assert_int_equal(lb_bit_split_dequantize_ref(NULL, n, hi, lo, fine, deq), LB_OK);
    assert_true(fabsf(deq[0] + 0.3f) <= 0.3f * 0x1p-23f); /* s↓·98 = M up to one float rounding */
}

/* The authors' mode (spec §4.3): with max|∇Y| = 98 the guards give sc = 1, so
 * v = ∇Y and the documented examples hold: v = 6.5 → 6, 6.8 → 6, 91 → 90,
 * 98 → 90, 7.0 → 6 (ties even) or 8 (ties away); nibbles stay in [-6, 6]. */
static void test_code_mode_biases(void **state)
{
    (void)state;
    const float g[8] = {98.0f, 91.0f, 6.5f, 6.8f, 7.0f, -98.0f, 0.25f, -45.0f};
    int8_t hi[8], lo[8];
    float fine;
    const int K = 200;
    long sum_even[8] = {0}, sum_away[8] = {0};
    double mean_even[8], mean_away[8];
    for (int k = 0; k < K; k++) {
        for (int rule = 0; rule < 2; rule++) {
            assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CODE, rule ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN, 8, g,
                                              NULL, 3, (uint64_t)k, hi, lo, &fine), LB_OK);
            assert_true(fine == 1.0f);
            for (int i = 0; i < 8; i++) {
                assert_true(hi[i] >= -6 && hi[i] <= 6 && lo[i] >= -6 && lo[i] <= 6);
                (rule ? sum_away : sum_even)[i] += 14 * hi[i] + lo[i];
            }
        }
    }
    for (int i = 0; i < 8; i++) mean_even[i] = (double)sum_even[i] / K, mean_away[i] = (double)sum_away[i] / K;
    const double expect_even[5] = {90, 90, 6, 6, 6}, expect_away[5] = {90, 90, 6, 6, 8};
    for (int i = 0; i < 5; i++) {
        assert_true(mean_even[i] == expect_even[i]);
        assert_true(mean_away[i] == expect_away[i]);
    }
    assert_true(mean_even[5] == -90.0);
    /* 0.25 and -45 are unbiased (residual within ±6): means within 5 SE */
    assert_true(fabs(mean_even[6] - 0.25) <= 5 * sqrt(0.25 * 0.75 / K));
    assert_true(fabs(mean_even[7] + 45.0) <= 5 * sqrt(0.25 * 0.75 / K)); /* -45 = 14·(-3) - 3: on grid */
}

/* All-zero ∇Y: clean gives zeros with s↓ = 0; code gives zeros with the
 * guard scale s↓ = 1/9.8e9 and no NaN; an all-equal tensor is returned as
 * 90/98 of itself by the code mode. */
static void test_degenerate(void **state)
{
    (void)state;
    float z[10] = {0}, deq[10];
    int8_t hi[10], lo[10];
    float fine;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, 10, z, NULL, 0, 0, hi, lo, &fine), LB_OK);
    assert_true(fine == 0.0f);
    for (int i = 0; i < 10; i++) assert_true(hi[i] == 0 && lo[i] == 0);
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CODE, LB_ROUND_HALF_EVEN, 10, z, NULL, 0, 0, hi, lo, &fine), LB_OK);
    assert_true(isfinite(fine) && fine > 0.0f && fabs(fine - 1e-8 / 98) < 1e-15);
    for (int i = 0; i < 10; i++) assert_true(hi[i] == 0 && lo[i] == 0);
    float c[10];
    for (int i = 0; i < 10; i++) c[i] = 2.0f;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CODE, LB_ROUND_HALF_EVEN, 10, c, NULL, 0, 0, hi, lo, &fine), LB_OK);
    assert_int_equal(lb_bit_split_dequantize_ref(NULL, 10, hi, lo, fine, deq), LB_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(14 * hi[i] + lo[i], 90);
        assert_true(fabsf(deq[i] - 2.0f * 90.0f / 98.0f) < 1e-6f);
    }
}

/* PyTorch fixtures with injected uniforms: identical nibbles and scales in
 * both modes. */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy fg, fu;
    assert_int_equal(xi_npy_load("xi/bs_g.npy", &fg), 0);
    assert_int_equal(xi_npy_load("xi/bs_u.npy", &fu), 0);
    const int64_t n = fg.numel;
    float *g = xi_npy_f32(&fg), *u = xi_npy_f32(&fu);
    int8_t *hi = malloc((size_t)n), *lo = malloc((size_t)n);
    const char *names[2] = {"clean", "code"};
    for (int mode = 0; mode < 2; mode++) {
        char name[64];
        xi_npy rh, rl, rs;
        snprintf(name, sizeof name, "xi/bs_hi_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &rh), 0);
        snprintf(name, sizeof name, "xi/bs_lo_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &rl), 0);
        snprintf(name, sizeof name, "xi/bs_scale_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &rs), 0);
        float fine;
        assert_int_equal(lb_bit_split_ref(NULL, mode ? LB_BS_CODE : LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, u, 0, 0,
                                          hi, lo, &fine), LB_OK);
        assert_true(fine == (float)rs.data[0]);
        for (int64_t i = 0; i < n; i++) {
            assert_int_equal(hi[i], (int)rh.data[i]);
            assert_int_equal(lo[i], (int)rl.data[i]);
        }
        xi_npy_free(&rh), xi_npy_free(&rl), xi_npy_free(&rs);
    }
    free(g), free(u), free(hi), free(lo);
    xi_npy_free(&fg), xi_npy_free(&fu);
}

static void test_errors(void **state)
{
    (void)state;
    float g[4] = {1, 2, NAN, 4}, u[4] = {0, 0.5f, 0.25f, 1.0f};
    int8_t hi[4], lo[4];
    float fine;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, 4, g, NULL, 0, 0, hi, lo, &fine), LB_ERR_NUMERIC);
    g[2] = INFINITY;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CODE, LB_ROUND_HALF_EVEN, 4, g, NULL, 0, 0, hi, lo, &fine), LB_ERR_NUMERIC);
    g[2] = 3;
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, 4, g, u, 0, 0, hi, lo, &fine), LB_ERR_ARG);
    assert_int_equal(lb_bit_split_ref(NULL, (lb_bs_mode)9, LB_ROUND_HALF_EVEN, 4, g, NULL, 0, 0, hi, lo, &fine), LB_ERR_ARG);
    assert_int_equal(lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_STOCHASTIC, 4, g, NULL, 0, 0, hi, lo, &fine), LB_ERR_ARG);
    assert_string_equal(lb_bs_mode_name(LB_BS_CLEAN), "clean");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_is_stochastic_rounding),
        cmocka_unit_test(test_clean_unbiased),
        cmocka_unit_test(test_clean_grid_and_idempotent),
        cmocka_unit_test(test_code_mode_biases),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_pytorch_fixture),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

/* tests/test_luq.c — the LUQ gradient quantizer and SMP (ref/luq.c, ref/smp.c).
 *
 * Properties of spec int4_training.md §4.5 / §4.7: support on the levels,
 * zeros and exact levels (incl. the max) kept, sign symmetry, idempotence,
 * unbiasedness and the closed-form variance (5 standard errors), SMP variance
 * ∝ 1/S, the biased ablation modes, degenerate tensors, NaN/Inf, the RNG
 * stream contract and fixtures from the independent PyTorch model
 * (tests/gen/luq_fixtures.py). */
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
#include "lowbit/ref/luq.h"
#include "test_fixture.h"

/* Fills x with values of many magnitudes (log-uniform over 2^-12..1, random sign). */
static void fill_mixed(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        double u = lb_rng_uniform_f64(seed, 1, i), s = lb_rng_uniform_f64(seed, 2, i);
        x[i] = (float)((s < 0.5 ? -1 : 1) * exp2(-12.0 * u));
    }
}

/* The two-point law of LUQ(x) for |x| <= m: values lo < hi (magnitudes) and
 * P(hi) = p, from the paper's closed form (Eqs. 10, 12), in double. */
static void two_point(double a, double alpha, double *lo, double *hi, double *p)
{
    if (a < alpha) {
        *lo = 0;
        *hi = alpha;
        *p = a / alpha;
    } else {
        double n = floor(log2(a / alpha));
        *lo = alpha * exp2(n);
        *hi = 2 * *lo;
        *p = (a - *lo) / *lo;
    }
}

static void test_defaults_and_streams(void **state)
{
    (void)state;
    lb_luq_params p = lb_luq_default_params();
    assert_int_equal(p.levels, 8);
    assert_int_equal(p.underflow, LB_LUQ_UNDERFLOW_STOCHASTIC);
    assert_int_equal(p.rounding, LB_LUQ_ROUND_STOCHASTIC);
    assert_true(lb_luq_stream_underflow(5) == lb_rng_stream("luq.underflow", 5));
    assert_true(lb_luq_stream_round(0) == lb_rng_stream("luq.round", 0));
    assert_true(lb_luq_stream_round(0) != lb_luq_stream_underflow(0));
    assert_true(lb_luq_stream_round(1) != lb_luq_stream_round(0));
    assert_int_equal(lb_luq_code_to_int(0), 0);
    assert_int_equal(lb_luq_code_to_int(1), 1);
    assert_int_equal(lb_luq_code_to_int(-8), -128);
    assert_int_equal(lb_luq_code_to_int(16), 32768);
    assert_string_equal(lb_luq_underflow_name(LB_LUQ_UNDERFLOW_FLUSH), "flush");
    assert_string_equal(lb_luq_rounding_name(LB_LUQ_ROUND_NEAREST), "nearest");
    p.levels = 0;
    float x = 1, a;
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, &x, 1, NULL, NULL, &a), LB_ERR_ARG);
    p.levels = LB_LUQ_MAX_LEVELS + 1;
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, &x, 1, NULL, NULL, &a), LB_ERR_ARG);
    p = lb_luq_default_params();
    assert_int_equal(lb_luq_quantize_uniforms_ref(NULL, &p, &x, 1, NULL, NULL, NULL, NULL, &a), LB_ERR_ARG);
}

/* The seeded quantizer is the uniform-array one fed with the documented
 * streams at element index i. */
static void test_rng_contract(void **state)
{
    (void)state;
    enum { N = 301 };
    static float x[N], uu[N], ur[N], v1[N], v2[N];
    static int8_t c1[N], c2[N];
    fill_mixed(x, N, 9);
    lb_luq_params p = lb_luq_default_params();
    p.seed = 0xabcdef12345ull;
    p.sample = 7;
    lb_rng_fill_uniform_f32(p.seed, lb_rng_stream("luq.underflow", 7), 0, N, uu);
    lb_rng_fill_uniform_f32(p.seed, lb_rng_stream("luq.round", 7), 0, N, ur);
    float a1, a2;
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, N, c1, v1, &a1), LB_OK);
    assert_int_equal(lb_luq_quantize_uniforms_ref(NULL, &p, x, N, uu, ur, c2, v2, &a2), LB_OK);
    assert_true(a1 == a2);
    assert_memory_equal(c1, c2, N);
    assert_memory_equal(v1, v2, sizeof v1);
    /* the element rule of the header, written out */
    float m = 0;
    for (int i = 0; i < N; i++) m = fmaxf(m, fabsf(x[i]));
    for (int i = 0; i < N; i++) {
        float v = fabsf(x[i]) / m * 128.0f;
        int k;
        if (v < 1.0f) {
            k = v >= 1.0f - uu[i] ? 0 : -1;
        } else {
            int e;
            float f = frexpf(v, &e) * 2.0f - 1.0f;
            k = e - 1 + (f >= 1.0f - ur[i]);
        }
        int want = k < 0 ? 0 : (x[i] < 0 ? -(k + 1) : k + 1);
        assert_int_equal(c1[i], want);
    }
}

/* Support, exact levels, zeros, sign, alpha, for several L and seeds. */
static void test_support(void **state)
{
    (void)state;
    enum { N = 257 };
    static float x[N], v[N];
    static int8_t c[N];
    const int Ls[] = {1, 5, 7, 8, 16};
    for (int li = 0; li < 5; li++) {
        for (uint64_t seed = 0; seed < 20; seed++) {
            fill_mixed(x, N, 100 + seed);
            x[3] = 0.0f;
            x[4] = -0.0f;
            x[5] = -2.0f; /* the max, negative */
            x[6] = ldexpf(2.0f, -3); /* alpha·2^(L-4) for L >= 4: an exact level */
            lb_luq_params p = lb_luq_default_params();
            p.levels = Ls[li];
            p.seed = seed;
            float alpha;
            assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, N, c, v, &alpha), LB_OK);
            assert_true(alpha == ldexpf(2.0f, 1 - p.levels));
            for (int i = 0; i < N; i++) {
                int mag = abs(c[i]);
                assert_true(mag <= p.levels);
                assert_true(v[i] == (float)lb_luq_code_to_int(c[i]) * alpha);
                if (x[i] == 0.0f) assert_int_equal(c[i], 0);
                if (c[i] != 0) assert_true((c[i] < 0) == (x[i] < 0));
                assert_true(fabsf(v[i]) <= 2.0f);
            }
            assert_true(v[5] == -2.0f); /* max kept exactly, no overflow */
            if (p.levels >= 4) assert_true(v[6] == x[6]);
            assert_true(v[3] == 0.0f && v[4] == 0.0f && !signbit(v[4]));
        }
    }
}

/* LUQ(−x) = −LUQ(x) with the same draws; LUQ(LUQ(x)) = LUQ(x) (α preserved). */
static void test_symmetry_idempotence(void **state)
{
    (void)state;
    enum { N = 200 };
    static float x[N], nx[N], v[N], nv[N], vv[N];
    fill_mixed(x, N, 4);
    for (int i = 0; i < N; i++) nx[i] = -x[i];
    for (uint64_t seed = 0; seed < 10; seed++) {
        lb_luq_params p = lb_luq_default_params();
        p.seed = seed;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, N, NULL, v, NULL), LB_OK);
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, nx, N, NULL, nv, NULL), LB_OK);
        for (int i = 0; i < N; i++) assert_true(nv[i] == -v[i]);
        p.seed = seed + 1000;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, v, N, NULL, vv, NULL), LB_OK);
        assert_memory_equal(v, vv, sizeof v);
    }
}

/* Deterministic expectation: sweeping u over the stratified grid j/2^12
 * (both draws equal) averages to x up to the grid granularity. */
static void test_stratified_expectation(void **state)
{
    (void)state;
    enum { G = 4096 };
    const float m = 1.0f;
    const float xs[] = {0.3f / 128, 0.77f / 128, 1.0f / 128, 1.5f / 128, 0.05f, 0.3f, 0.51f, 0.9999f};
    static float x[2], uu[2], ur[2], v[2];
    lb_luq_params p = lb_luq_default_params();
    for (size_t t = 0; t < sizeof xs / sizeof xs[0]; t++) {
        double sum = 0;
        x[0] = m;
        x[1] = xs[t];
        for (int j = 0; j < G; j++) {
            uu[0] = ur[0] = 0;
            uu[1] = ur[1] = (float)j / G;
            assert_int_equal(lb_luq_quantize_uniforms_ref(NULL, &p, x, 2, uu, ur, NULL, v, NULL), LB_OK);
            sum += v[1];
        }
        double lo, hi, pr;
        two_point(xs[t], 1.0 / 128, &lo, &hi, &pr);
        /* P(up) on the grid is ceil(p·G)/G: at most one grid step (hi − lo)/G away */
        assert_true(fabs(sum / G - xs[t]) <= (hi - lo) / G + 1e-12);
    }
}

/* Unbiasedness and variance over many seeds: the mean of T samples is within
 * 5 standard errors sqrt(σ²/T) of x, with σ² from the closed form
 * |x|(α − |x|) (underflow) or (|x| − 2^nα)(2^(n+1)α − |x|) (bin n); elements
 * on a level have σ² = 0 and must be exact. The summed sample variance over
 * elements is within 5 standard errors of Σσ² (Var(s²) ≈ (μ4 − σ⁴)/T of a
 * two-point law, μ4 = d⁴p(1−p)(1 − 3p + 3p²)). */
static void test_unbiased_and_variance(void **state)
{
    (void)state;
    enum { N = 64, T = 20000 };
    static float x[N], v[N];
    static double s1[N], s2[N];
    const float alpha = 1.0f / 128; /* max = 1, L = 8 */
    for (int i = 0; i < N; i++) {
        /* magnitudes from 0.02α to 128α, both signs, a few exact levels */
        float a = alpha * (float)exp2(-5.6 + 12.6 * i / (N - 1.0));
        if (i % 16 == 5) a = alpha * (float)exp2((double)(i % 8));
        x[i] = (i % 3 == 0) ? -a : a;
    }
    x[N - 1] = 1.0f;
    x[N / 2] = 1.28f * alpha; /* the worst ratio σ²/x² ≈ 0.123 is near 4/3·2^nα */
    lb_luq_params p = lb_luq_default_params();
    for (int t = 0; t < T; t++) {
        p.seed = 1000003u * (uint64_t)t + 17;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, N, NULL, v, NULL), LB_OK);
        for (int i = 0; i < N; i++) {
            s1[i] += v[i];
            s2[i] += (double)v[i] * v[i];
        }
    }
    double vsum = 0, vwant = 0, vvar = 0;
    for (int i = 0; i < N; i++) {
        double lo, hi, pr, a = fabs((double)x[i]);
        two_point(a, alpha, &lo, &hi, &pr);
        double d = hi - lo, var = d * d * pr * (1 - pr);
        double mean = s1[i] / T;
        double svar = (s2[i] - T * mean * mean) / (T - 1);
        if (var == 0) {
            assert_true(mean == x[i]);
            continue;
        }
        if (fabs(mean - x[i]) >= 5 * sqrt(var / T))
            print_message("element %d x=%g mean=%g se=%g\n", i, (double)x[i], mean, sqrt(var / T));
        assert_true(fabs(mean - x[i]) < 5 * sqrt(var / T));
        if (a >= alpha) assert_true(var <= a * a / 8 + 1e-18); /* §4.5 bound */
        double mu4 = d * d * d * d * pr * (1 - pr) * (1 - 3 * pr + 3 * pr * pr);
        vsum += svar;
        vwant += var;
        vvar += (mu4 - var * var) / T;
    }
    print_message("sum of variances %.6g, closed form %.6g, se %.3g\n", vsum, vwant, sqrt(vvar));
    assert_true(fabs(vsum - vwant) < 5 * sqrt(vvar));
    /* the printed worst case: σ²/x² at |x| = 1.28α */
    double lo, hi, pr;
    two_point(1.28 * alpha, alpha, &lo, &hi, &pr);
    assert_true(fabs((hi - lo) * (hi - lo) * pr * (1 - pr) / (1.28 * alpha * 1.28 * alpha) - 0.1231) < 1e-4);
}

/* The ablations are deterministic and biased, as documented: nearest
 * rounding picks the nearest power of two (1.4·2^nα → 2^nα), nearest
 * underflow keeps iff |x| >= α/2, flush zeroes everything below α. */
static void test_ablations_biased(void **state)
{
    (void)state;
    const float alpha = 1.0f / 128;
    float x[8] = {1.0f, 1.4f * 4 * alpha, 1.6f * 4 * alpha, 0.3f * alpha, 0.6f * alpha, 0.5f * alpha,
                  1.5f * 2 * alpha, -0.9f * alpha};
    const float want_nn[8] = {1.0f, 4 * alpha, 8 * alpha, 0, alpha, alpha, 4 * alpha, -alpha};
    float v[8], v0[8];
    lb_luq_params p = lb_luq_default_params();
    p.underflow = LB_LUQ_UNDERFLOW_NEAREST;
    p.rounding = LB_LUQ_ROUND_NEAREST;
    for (uint64_t seed = 0; seed < 5; seed++) {
        p.seed = seed;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, 8, NULL, v, NULL), LB_OK);
        for (int i = 0; i < 8; i++) assert_true(v[i] == want_nn[i]);
    }
    /* flush + stochastic rounding: underflow region always 0, bins unbiased */
    p.underflow = LB_LUQ_UNDERFLOW_FLUSH;
    p.rounding = LB_LUQ_ROUND_STOCHASTIC;
    enum { T = 4000 };
    double s[8] = {0};
    for (int t = 0; t < T; t++) {
        p.seed = (uint64_t)t;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, 8, NULL, v, NULL), LB_OK);
        for (int i = 0; i < 8; i++) s[i] += v[i];
        assert_true(v[3] == 0 && v[4] == 0 && v[5] == 0 && v[7] == 0);
    }
    /* bias of flush at 0.6α is −0.6α, i.e. far beyond 5 SE of the unbiased rule */
    double lo, hi, pr;
    two_point(0.6 * alpha, alpha, &lo, &hi, &pr);
    assert_true(fabs(s[4] / T - x[4]) > 5 * sqrt((hi - lo) * (hi - lo) * pr * (1 - pr) / T));
    two_point(x[1], alpha, &lo, &hi, &pr);
    assert_true(fabs(s[1] / T - x[1]) < 5 * sqrt((hi - lo) * (hi - lo) * pr * (1 - pr) / T));
    /* the default mode at the same points is unbiased (within 5 SE) */
    p = lb_luq_default_params();
    memset(s, 0, sizeof s);
    for (int t = 0; t < T; t++) {
        p.seed = (uint64_t)t;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, 8, NULL, v0, NULL), LB_OK);
        for (int i = 0; i < 8; i++) s[i] += v0[i];
    }
    for (int i = 1; i < 8; i++) {
        two_point(fabs((double)x[i]), alpha, &lo, &hi, &pr);
        double se = sqrt((hi - lo) * (hi - lo) * pr * (1 - pr) / T);
        assert_true(fabs(s[i] / T - x[i]) <= 5 * se);
    }
}

static void test_degenerate(void **state)
{
    (void)state;
    float x[6] = {0, 0, -0.0f, 0, 0, 0}, v[6];
    int8_t c[6];
    float alpha = -1;
    lb_luq_params p = lb_luq_default_params();
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, 6, c, v, &alpha), LB_OK);
    assert_true(alpha == 0.0f);
    for (int i = 0; i < 6; i++) assert_true(c[i] == 0 && v[i] == 0.0f);
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, 0, c, v, &alpha), LB_OK);
    /* all negative: the code's max(x) would give α < 0 and NaN */
    float xn[5] = {-1.0f, -0.5f, -0.01f, -3.0f, -0.2f};
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, xn, 5, c, v, &alpha), LB_OK);
    assert_true(alpha == 3.0f / 128);
    for (int i = 0; i < 5; i++) assert_true(v[i] <= 0.0f && isfinite(v[i]));
    assert_true(v[3] == -3.0f);
    /* constant tensor: every element is the max, kept exactly */
    float xc[4] = {0.7f, 0.7f, 0.7f, 0.7f};
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, xc, 4, c, v, &alpha), LB_OK);
    for (int i = 0; i < 4; i++) assert_true(v[i] == 0.7f && c[i] == 8);
    /* one huge outlier: α = 1e6/128, everything else underflows to {0, ±α} */
    enum { N = 512 };
    static float xo[N], vo[N];
    fill_mixed(xo, N, 77);
    xo[100] = 1e6f;
    for (uint64_t seed = 0; seed < 5; seed++) {
        p.seed = seed;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, xo, N, NULL, vo, &alpha), LB_OK);
        for (int i = 0; i < N; i++) {
            if (i == 100) assert_true(vo[i] == 1e6f);
            else assert_true(vo[i] == 0.0f || fabsf(vo[i]) == alpha);
        }
    }
    /* L = 1: only ±max and 0 */
    p.levels = 1;
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, xo, N, NULL, vo, &alpha), LB_OK);
    for (int i = 0; i < N; i++) assert_true(vo[i] == 0.0f || fabsf(vo[i]) == 1e6f);
}

static void test_nonfinite(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    float x[4] = {1, 2, 3, 4}, v[4] = {9, 9, 9, 9}, alpha = 9;
    int8_t c[4] = {9, 9, 9, 9};
    int32_t cs[4] = {9, 9, 9, 9};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    lb_luq_params p = lb_luq_default_params();
    for (int b = 0; b < 3; b++) {
        x[2] = bad[b];
        assert_int_equal(lb_luq_quantize_ref(ctx, &p, x, 4, c, v, &alpha), LB_ERR_NUMERIC);
        assert_non_null(strstr(lb_ctx_error(ctx), "index 2"));
        assert_int_equal(lb_luq_smp_ref(ctx, &p, 3, x, 4, v, cs, &alpha), LB_ERR_NUMERIC);
        assert_int_equal(lb_luq_alpha_ref(ctx, 8, x, 4, &alpha, NULL), LB_ERR_NUMERIC);
        for (int i = 0; i < 4; i++) assert_true(c[i] == 9 && v[i] == 9 && cs[i] == 9);
        assert_true(alpha == 9);
    }
    lb_ctx_free(ctx);
}

/* SMP: S = 1 is LUQ; sample j is LUQ with sample = base + j; the mean follows
 * the documented formula; the summed variance of the mean is Σσ²/S within 5
 * standard errors (μ4 of a mean of S iid: μ4/S³ + 3(S−1)σ⁴/S³). */
static void test_smp(void **state)
{
    (void)state;
    enum { N = 48, T = 1500 };
    static float x[N], mean[N], v[N];
    static int32_t sum[N];
    static int8_t c[N];
    fill_mixed(x, N, 31);
    x[0] = 1.0f;
    lb_luq_params p = lb_luq_default_params();
    p.seed = 5;
    p.sample = 10;
    float alpha, a1;
    assert_int_equal(lb_luq_smp_ref(NULL, &p, 1, x, N, mean, sum, &alpha), LB_OK);
    assert_int_equal(lb_luq_quantize_ref(NULL, &p, x, N, c, v, &a1), LB_OK);
    assert_true(alpha == a1);
    for (int i = 0; i < N; i++) assert_true(mean[i] == v[i] && sum[i] == lb_luq_code_to_int(c[i]));
    assert_int_equal(lb_luq_smp_ref(NULL, &p, 3, x, N, mean, sum, &alpha), LB_OK);
    int32_t want[N] = {0};
    for (int j = 0; j < 3; j++) {
        lb_luq_params q = p;
        q.sample = p.sample + (uint64_t)j;
        assert_int_equal(lb_luq_quantize_ref(NULL, &q, x, N, c, NULL, NULL), LB_OK);
        for (int i = 0; i < N; i++) want[i] += lb_luq_code_to_int(c[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(sum[i], want[i]);
        assert_true(mean[i] == (alpha / 3.0f) * (float)sum[i]);
    }
    assert_int_equal(lb_luq_smp_ref(NULL, &p, 0, x, N, mean, sum, &alpha), LB_ERR_ARG);
    assert_int_equal(lb_luq_smp_ref(NULL, &p, LB_LUQ_MAX_SAMPLES + 1, x, N, mean, sum, &alpha), LB_ERR_ARG);

    const int Ss[] = {1, 2, 4, 8};
    double measured[4];
    for (int si = 0; si < 4; si++) {
        const int S = Ss[si];
        static double s1[N], s2[N];
        memset(s1, 0, sizeof s1);
        memset(s2, 0, sizeof s2);
        for (int t = 0; t < T; t++) {
            p.seed = 7919u * (uint64_t)t + (uint64_t)si;
            assert_int_equal(lb_luq_smp_ref(NULL, &p, S, x, N, mean, NULL, NULL), LB_OK);
            for (int i = 0; i < N; i++) {
                s1[i] += mean[i];
                s2[i] += (double)mean[i] * mean[i];
            }
        }
        double vsum = 0, vwant = 0, vvar = 0;
        for (int i = 0; i < N; i++) {
            double lo, hi, pr;
            two_point(fabs((double)x[i]), alpha, &lo, &hi, &pr);
            double d = hi - lo, var = d * d * pr * (1 - pr);
            double mu4 = d * d * d * d * pr * (1 - pr) * (1 - 3 * pr + 3 * pr * pr);
            double varS = var / S, mu4S = mu4 / ((double)S * S * S) + 3.0 * (S - 1) * var * var / ((double)S * S * S);
            double m = s1[i] / T;
            vsum += (s2[i] - T * m * m) / (T - 1);
            vwant += varS;
            vvar += (mu4S - varS * varS) / T;
        }
        measured[si] = vsum;
        print_message("S=%d: summed variance %.5g, expected %.5g, se %.3g\n", S, vsum, vwant, sqrt(vvar));
        assert_true(fabs(vsum - vwant) < 5 * sqrt(vvar));
    }
    assert_true(measured[3] < measured[2] && measured[2] < measured[1] && measured[1] < measured[0]);
}

static lb_tensor *load(const char *name) { return lb_test_fixture("luq", name, 0); }

/* The PyTorch model (authors' underflow test and the paper's 4/3 trick) with
 * the same uniforms, for L = 8, 7, 5 and the ablations; and with lowbit's
 * streams reproduced in Python (seed 1234, samples 0 and 3). */
static void test_torch_fixtures(void **state)
{
    (void)state;
    lb_tensor *x = load("luq_x"), *uu = load("luq_uu"), *ur = load("luq_ur");
    assert_int_equal(x->dtype, LB_F32);
    const size_t n = x->numel;
    int8_t *c = malloc(n);
    float *v = malloc(n * sizeof *v);
    const struct {
        const char *name;
        int L;
        lb_luq_underflow uf;
        lb_luq_rounding rd;
    } cases[] = {{"l8_ss", 8, LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_ROUND_STOCHASTIC},
                 {"l7_ss", 7, LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_ROUND_STOCHASTIC},
                 {"l5_ss", 5, LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_ROUND_STOCHASTIC},
                 {"l8_nn", 8, LB_LUQ_UNDERFLOW_NEAREST, LB_LUQ_ROUND_NEAREST},
                 {"l8_fs", 8, LB_LUQ_UNDERFLOW_FLUSH, LB_LUQ_ROUND_STOCHASTIC}};
    char name[128];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lb_luq_params p = lb_luq_default_params();
        p.levels = cases[k].L;
        p.underflow = cases[k].uf;
        p.rounding = cases[k].rd;
        float alpha;
        assert_int_equal(lb_luq_quantize_uniforms_ref(NULL, &p, lb_tensor_f32(x), n, lb_tensor_f32(uu),
                                                      lb_tensor_f32(ur), c, v, &alpha),
                         LB_OK);
        snprintf(name, sizeof name, "luq_%s_codes", cases[k].name);
        lb_tensor *wc = load(name);
        snprintf(name, sizeof name, "luq_%s_values", cases[k].name);
        lb_tensor *wv = load(name);
        snprintf(name, sizeof name, "luq_%s_alpha", cases[k].name);
        lb_tensor *wa = load(name);
        assert_true(alpha == lb_tensor_f32(wa)[0]);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(c[i], lb_tensor_s8(wc)[i]);
            assert_true(v[i] == lb_tensor_f32(wv)[i]);
        }
        lb_tensor_free(wc);
        lb_tensor_free(wv);
        lb_tensor_free(wa);
    }
    for (int s = 0; s <= 3; s += 3) {
        lb_luq_params p = lb_luq_default_params();
        p.seed = 1234;
        p.sample = (uint64_t)s;
        assert_int_equal(lb_luq_quantize_ref(NULL, &p, lb_tensor_f32(x), n, c, NULL, NULL), LB_OK);
        snprintf(name, sizeof name, "luq_seed1234_s%d_codes", s);
        lb_tensor *wc = load(name);
        assert_memory_equal(c, lb_tensor_s8(wc), n);
        lb_tensor_free(wc);
    }
    free(c);
    free(v);
    lb_tensor_free(x);
    lb_tensor_free(uu);
    lb_tensor_free(ur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_streams),
        cmocka_unit_test(test_rng_contract),
        cmocka_unit_test(test_support),
        cmocka_unit_test(test_symmetry_idempotence),
        cmocka_unit_test(test_stratified_expectation),
        cmocka_unit_test(test_unbiased_and_variance),
        cmocka_unit_test(test_ablations_biased),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_smp),
        cmocka_unit_test(test_torch_fixtures),
    };
    return LB_RUN_TESTS(tests);
}

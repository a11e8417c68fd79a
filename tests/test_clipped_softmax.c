/* tests/test_clipped_softmax.c — softmax and clipped softmax (ref/clipped_softmax.c):
 * reduction to softmax, exact clipping thresholds, the spec's golden vectors,
 * finite-difference gradients, special values and PyTorch fixtures
 * (tests/gen/attention_fixtures.py). Spec outlier_free_attention_and_w8a8.md §1, §7. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/npy.h"
#include "lowbit/ref/clipped_softmax.h"
#include "test_fixture.h"

/* Deterministic test data in [lo, hi) from the counter RNG. */
static void fill(double *x, size_t n, uint64_t sub, double lo, double hi)
{
    uint64_t stream = lb_rng_stream("test_clipped_softmax", sub);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lb_rng_uniform_f64(7, stream, i);
}

/* Loads tests/data/attention/<name>.npy as f64 with `numel` elements. */
static lb_tensor *load(const char *name, size_t numel)
{
    lb_tensor *t = lb_test_fixture("attention", name, numel);
    return t;
}

/* |a - b| <= atol + rtol |b| everywhere; prints the first mismatch. */
static void assert_close(const double *a, const double *b, size_t n, double atol, double rtol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (!(fabs(a[i] - b[i]) <= atol + rtol * fabs(b[i])))
            fail_msg("%s: element %zu: got %.17g, want %.17g", what, i, a[i], b[i]);
    }
}

/* gamma = 0, zeta = 1 gives exactly softmax, forward and backward, in both
 * precisions; the softmax is checked against an independent loop. */
static void test_reduces_to_softmax(void **state)
{
    (void)state;
    enum { R = 5, C = 33 };
    double x[R * C], y[R * C], y2[R * C], g[R * C], dx[R * C];
    float xf[R * C], yf[R * C], yf2[R * C];
    fill(x, R * C, 0, -20, 20);
    fill(g, R * C, 1, -1, 1);
    x[7] = -DBL_MAX; /* a masked key */
    for (int i = 0; i < R * C; i++) xf[i] = (float)x[i];
    xf[7] = -FLT_MAX;
    assert_int_equal(lb_softmax_ref_f64(NULL, R, C, x, y), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, 0.0, 1.0, x, y2), LB_OK);
    assert_memory_equal(y, y2, sizeof y);
    assert_int_equal(lb_softmax_ref(NULL, R, C, xf, yf), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref(NULL, R, C, 0.0, 1.0, xf, yf2), LB_OK);
    assert_memory_equal(yf, yf2, sizeof yf);
    /* independent softmax: the documented order (max, sum in increasing j, divide) */
    for (int r = 0; r < R; r++) {
        const double *xr = x + r * C;
        double m = xr[0], s = 0.0;
        for (int j = 1; j < C; j++) m = xr[j] > m ? xr[j] : m;
        for (int j = 0; j < C; j++) s += exp(xr[j] - m);
        for (int j = 0; j < C; j++) assert_true(y[r * C + j] == exp(xr[j] - m) / s);
    }
    assert_true(y[7] == 0.0);
    /* the backward at (0, 1) is the softmax backward p (g - <g, p>) */
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, R, C, 0.0, 1.0, x, g, dx), LB_OK);
    for (int r = 0; r < R; r++) {
        double dot = 0.0;
        for (int j = 0; j < C; j++) dot += g[r * C + j] * y[r * C + j];
        for (int j = 0; j < C; j++)
            assert_true(dx[r * C + j] == y[r * C + j] * (g[r * C + j] - dot));
    }
}

/* Spec §1.1 worked example, to 1e-10. */
static void test_golden_vectors(void **state)
{
    (void)state;
    const double x[5] = {2, 1, 0, -1, -3};
    const struct {
        double gamma, zeta, y[5];
    } cases[] = {
        {0.0, 1.0, {0.6411326034, 0.2358595039, 0.0867678625, 0.0319201128, 0.0043199175}},
        {-0.025, 1.0, {0.6321609185, 0.2167559915, 0.0639370590, 0.0077181156, 0}},
        {-0.03, 1.03, {0.6496005596, 0.2200110741, 0.0619739342, 0.0038353195, 0}},
        {-0.2, 1.0, {0.5693591241, 0.0830314046, 0, 0, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double y[5];
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 5, cases[c].gamma, cases[c].zeta, x, y),
                         LB_OK);
        assert_close(y, cases[c].y, 5, 1e-10, 0, "golden");
        for (int i = 0; i < 5; i++)
            if (cases[c].y[i] == 0) assert_true(y[i] == 0.0); /* exact zeros */
    }
    /* (zeta = 1.003, gamma = 0) on [10, 0, 0]: an exact 1 */
    const double x2[3] = {10, 0, 0};
    double y2[3];
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 3, 0.0, 1.003, x2, y2), LB_OK);
    assert_true(y2[0] == 1.0);
    assert_close(y2 + 1, (const double[]){4.553199525e-05, 4.553199525e-05}, 2, 1e-14, 1e-9, "y2");
}

/* Both sides of each threshold, with p constructed on purpose: a row
 * [a, 0] has p_0 = 1/(1 + e^-a), so a = log(p/(1-p)). */
static void test_thresholds(void **state)
{
    (void)state;
    const double gamma = -0.025, zeta = 1.0;
    const double p0 = -gamma / (zeta - gamma); /* 0.0243902... */
    assert_true(fabs(p0 - 0.0243902439) < 1e-10);
    double y[2];
    double below[2] = {log(0.0243 / (1 - 0.0243)), 0}, above[2] = {log(0.0245 / (1 - 0.0245)), 0};
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 2, gamma, zeta, below, y), LB_OK);
    assert_true(y[0] == 0.0);
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 2, gamma, zeta, above, y), LB_OK);
    assert_true(y[0] > 0.0 && y[0] < 1e-3);
    /* exact ones: zeta = 1.03, gamma = -0.03 -> p1 = 1.03 / 1.06 */
    const double g2 = -0.03, z2 = 1.03, p1 = (1 - g2) / (z2 - g2);
    double lo[2] = {log((p1 - 1e-4) / (1 - (p1 - 1e-4))), 0};
    double hi[2] = {log((p1 + 1e-4) / (1 - (p1 + 1e-4))), 0};
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 2, g2, z2, lo, y), LB_OK);
    assert_true(y[0] < 1.0 && y[0] > 0.99);
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 2, g2, z2, hi, y), LB_OK);
    assert_true(y[0] == 1.0);
    /* float entry points give the same exact 0 / 1 */
    float fy[2], fhi[2] = {(float)hi[0], 0.0f}, fbelow[2] = {(float)below[0], 0.0f};
    assert_int_equal(lb_clipped_softmax_ref(NULL, 1, 2, g2, z2, fhi, fy), LB_OK);
    assert_true(fy[0] == 1.0f);
    assert_int_equal(lb_clipped_softmax_ref(NULL, 1, 2, gamma, zeta, fbelow, fy), LB_OK);
    assert_true(fy[0] == 0.0f);
}

/* Spec §7 item 4: a uniform row of length T with gamma = -alpha/T. */
static void test_uniform_row_alpha(void **state)
{
    (void)state;
    enum { T = 128 };
    double x[T], y[T], gamma;
    for (int i = 0; i < T; i++) x[i] = 0.25;
    /* alpha = T/(T-1) is the smallest alpha that zeroes the row; 2, 4 too */
    const double alphas[] = {(double)T / (T - 1), 2.0, 4.0};
    for (int a = 0; a < 3; a++) {
        assert_int_equal(lb_clipped_softmax_gamma_from_alpha(NULL, alphas[a], T, &gamma), LB_OK);
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, T, gamma, 1.0, x, y), LB_OK);
        for (int i = 0; i < T; i++) assert_true(y[i] == 0.0);
    }
    /* alpha = 0.5: (1 - alpha + alpha/T)/T = 0.003936767578125, exact in
     * binary (p = 1/128, stretch = 1 + 2^-8, gamma = -2^-8) */
    assert_int_equal(lb_clipped_softmax_gamma_from_alpha(NULL, 0.5, T, &gamma), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, T, gamma, 1.0, x, y), LB_OK);
    for (int i = 0; i < T; i++) assert_true(y[i] == 0.003936767578125);
    /* OPT's --alpha 12 with T = 512 */
    assert_int_equal(lb_clipped_softmax_gamma_from_alpha(NULL, 12, 512, &gamma), LB_OK);
    assert_true(gamma == -0.0234375);
}

/* Output in [0, 1]; with zeta = 1, y <= p and sum y <= 1; order preserved;
 * invariant (up to rounding) to adding a constant. */
static void test_properties(void **state)
{
    (void)state;
    enum { R = 8, C = 40 };
    static double x[R * C], xs[R * C], y[R * C], ys[R * C], p[R * C];
    fill(x, R * C, 2, -8, 8);
    for (int i = 0; i < R * C; i++) xs[i] = x[i] + 3.0;
    assert_int_equal(lb_softmax_ref_f64(NULL, R, C, x, p), LB_OK);
    const double params[][2] = {{-0.025, 1.0}, {-0.1, 1.0}, {-0.03, 1.03}, {0.0, 1.1}};
    for (int k = 0; k < 4; k++) {
        const double gamma = params[k][0], zeta = params[k][1];
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, gamma, zeta, x, y), LB_OK);
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, gamma, zeta, xs, ys), LB_OK);
        for (int r = 0; r < R; r++) {
            double sum = 0.0;
            for (int i = 0; i < C; i++) {
                const double v = y[r * C + i];
                assert_true(v >= 0.0 && v <= 1.0);
                if (zeta == 1.0) assert_true(v <= p[r * C + i]);
                sum += v;
                for (int j = 0; j < C; j++)
                    if (x[r * C + i] >= x[r * C + j]) assert_true(v >= y[r * C + j]);
                assert_true(fabs(ys[r * C + i] - v) <= 1e-14);
            }
            if (zeta == 1.0) assert_true(sum <= 1.0 + 1e-12);
        }
    }
}

/* Masked keys give exact zeros: -FLT_MAX (finite mask), -DBL_MAX, -inf. */
static void test_masked_keys(void **state)
{
    (void)state;
    const double masks[] = {-FLT_MAX, -DBL_MAX, -INFINITY};
    for (int k = 0; k < 3; k++) {
        double x[4] = {0.3, masks[k], -0.2, 1.0}, y[4], g[4] = {1, 5, -1, 2}, dx[4];
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 4, -0.025, 1.0, x, y), LB_OK);
        assert_true(y[1] == 0.0 && y[0] > 0.0);
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 4, 0.0, 1.0, x, y), LB_OK);
        assert_true(y[1] == 0.0);
        assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 1, 4, -0.025, 1.0, x, g, dx),
                         LB_OK);
        assert_true(dx[1] == 0.0);
        assert_true(isfinite(dx[0]) && isfinite(dx[2]) && isfinite(dx[3]));
    }
    float xf[3] = {0.5f, -FLT_MAX, 0.0f}, yf[3];
    assert_int_equal(lb_clipped_softmax_ref(NULL, 1, 3, -0.025, 1.0, xf, yf), LB_OK);
    assert_true(yf[1] == 0.0f);
}

/* NaN, +inf and all--inf rows are all-NaN (torch parity); other rows are
 * untouched. */
static void test_special_values(void **state)
{
    (void)state;
    enum { C = 4 };
    double x[4 * C] = {0.1, NAN, 0.3, 0.4, /* NaN */
                       0.1, INFINITY, 0.3, 0.4, /* +inf */
                       -INFINITY, -INFINITY, -INFINITY, -INFINITY, /* all masked */
                       0.1, 0.2, 0.3, 0.4};
    double y[4 * C], g[4 * C], dx[4 * C];
    for (int i = 0; i < 4 * C; i++) g[i] = 0.5 + i;
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 4, C, -0.025, 1.0, x, y), LB_OK);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 4, C, -0.025, 1.0, x, g, dx), LB_OK);
    for (int i = 0; i < 3 * C; i++) assert_true(isnan(y[i]) && isnan(dx[i]));
    for (int i = 3 * C; i < 4 * C; i++) assert_true(isfinite(y[i]) && isfinite(dx[i]));
    /* a first-element NaN too (the max scan starts there) */
    double x1[3] = {NAN, 1, 2}, y1[3];
    assert_int_equal(lb_softmax_ref_f64(NULL, 1, 3, x1, y1), LB_OK);
    for (int i = 0; i < 3; i++) assert_true(isnan(y1[i]));
}

/* Central differences of L = sum g_i y_i (double) against the backward, for
 * rows whose stretched values are away from the clip kinks. */
static void test_fd_backward(void **state)
{
    (void)state;
    enum { R = 12, C = 7 };
    double x[R * C], g[R * C], dx[R * C], y[C];
    fill(x, R * C, 3, -3, 3);
    fill(g, R * C, 4, -1, 1);
    const double params[][2] = {{0.0, 1.0}, {-0.025, 1.0}, {-0.1, 1.0}, {-0.03, 1.03}, {0.0, 1.2}};
    int checked = 0, clipped_seen = 0;
    for (int k = 0; k < 5; k++) {
        const double gamma = params[k][0], zeta = params[k][1], h = 1e-6;
        assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, R, C, gamma, zeta, x, g, dx), LB_OK);
        for (int r = 0; r < R; r++) {
            double *xr = x + r * C, p[C];
            /* skip rows with a stretched value within 1e-3 of a kink */
            assert_int_equal(lb_softmax_ref_f64(NULL, 1, C, xr, p), LB_OK);
            int near = 0, clipped = 0;
            for (int i = 0; i < C; i++) {
                double s = (zeta - gamma) * p[i] + gamma;
                if (fabs(s) < 1e-3 || fabs(s - 1) < 1e-3) near = 1;
                if (s < 0 || s > 1) clipped++;
            }
            if (near) continue;
            clipped_seen += clipped;
            for (int j = 0; j < C; j++) {
                double save = xr[j], lp = 0, lm = 0;
                xr[j] = save + h;
                assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, C, gamma, zeta, xr, y), LB_OK);
                for (int i = 0; i < C; i++) lp += g[r * C + i] * y[i];
                xr[j] = save - h;
                assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, C, gamma, zeta, xr, y), LB_OK);
                for (int i = 0; i < C; i++) lm += g[r * C + i] * y[i];
                xr[j] = save;
                const double fd = (lp - lm) / (2 * h);
                /* central-difference error O(h^2) + rounding O(eps/h): 1e-8 is ~100x both */
                if (fabs(fd - dx[r * C + j]) > 1e-8)
                    fail_msg("params %d row %d col %d: fd %.12g analytic %.12g", k, r, j, fd,
                             dx[r * C + j]);
            }
            checked++;
        }
    }
    assert_true(checked >= 40);
    assert_true(clipped_seen > 0); /* some checked gradients go through clipped entries */
}

/* Clipped entries pass no gradient: g_i of a clipped entry never reaches dx;
 * a fully clipped row has dx = 0; a lone survivor feeds every logit. */
static void test_clipped_no_gradient(void **state)
{
    (void)state;
    const double gamma = -0.2, zeta = 1.0;
    double x[5] = {2, 1, 0, -1, -3}, y[5], g[5] = {0.3, -0.7, 0.9, 1.1, -2.0}, dx[5], dx2[5];
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 5, gamma, zeta, x, y), LB_OK);
    assert_true(y[2] == 0 && y[3] == 0 && y[4] == 0 && y[0] > 0 && y[1] > 0);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 1, 5, gamma, zeta, x, g, dx), LB_OK);
    g[2] = 100, g[3] = -50, g[4] = 7;
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 1, 5, gamma, zeta, x, g, dx2), LB_OK);
    assert_memory_equal(dx, dx2, sizeof dx);
    for (int j = 0; j < 5; j++) assert_true(dx[j] != 0.0); /* via the normaliser */
    /* fully clipped: uniform row, alpha = 4 */
    double u[16], uy[16], ug[16], udx[16];
    for (int i = 0; i < 16; i++) u[i] = 1.5, ug[i] = i - 7.5;
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 16, -4.0 / 16, 1.0, u, uy), LB_OK);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 1, 16, -4.0 / 16, 1.0, u, ug, udx),
                     LB_OK);
    for (int i = 0; i < 16; i++) assert_true(uy[i] == 0.0 && udx[i] == 0.0);
    /* one survivor */
    double s[4] = {5, 0, 0, 0}, sy[4], sg[4] = {1, 1, 1, 1}, sdx[4];
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, 1, 4, -0.1, 1.0, s, sy), LB_OK);
    assert_true(sy[0] > 0 && sy[1] == 0 && sy[2] == 0 && sy[3] == 0);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, 1, 4, -0.1, 1.0, s, sg, sdx), LB_OK);
    for (int i = 0; i < 4; i++) assert_true(sdx[i] != 0.0);
    assert_true(sdx[0] > 0 && sdx[1] < 0);
}

/* The float entry points equal the double ones on widened inputs, rounded
 * once; in-place forward (y == x) and backward (dx == dy) work. */
static void test_f32_and_in_place(void **state)
{
    (void)state;
    enum { R = 6, C = 17 };
    double xd[R * C], gd[R * C], yd[R * C], dxd[R * C], tmp[R * C];
    float xf[R * C], gf[R * C], yf[R * C], dxf[R * C], tmpf[R * C];
    fill(xd, R * C, 5, -10, 10);
    fill(gd, R * C, 6, -1, 1);
    for (int i = 0; i < R * C; i++) {
        xf[i] = (float)xd[i], gf[i] = (float)gd[i];
        xd[i] = xf[i], gd[i] = gf[i];
    }
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, -0.05, 1.02, xd, yd), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref(NULL, R, C, -0.05, 1.02, xf, yf), LB_OK);
    for (int i = 0; i < R * C; i++) assert_true(yf[i] == (float)yd[i]);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, R, C, -0.05, 1.02, xd, gd, dxd), LB_OK);
    assert_int_equal(lb_clipped_softmax_backward_ref(NULL, R, C, -0.05, 1.02, xf, gf, dxf), LB_OK);
    for (int i = 0; i < R * C; i++) assert_true(dxf[i] == (float)dxd[i]);
    /* in place */
    memcpy(tmp, xd, sizeof tmp);
    assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, -0.05, 1.02, tmp, tmp), LB_OK);
    assert_memory_equal(tmp, yd, sizeof tmp);
    memcpy(tmp, gd, sizeof tmp);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, R, C, -0.05, 1.02, xd, tmp, tmp), LB_OK);
    assert_memory_equal(tmp, dxd, sizeof tmp);
    memcpy(tmpf, gf, sizeof tmpf);
    assert_int_equal(lb_clipped_softmax_backward_ref(NULL, R, C, -0.05, 1.02, xf, tmpf, tmpf), LB_OK);
    assert_memory_equal(tmpf, dxf, sizeof tmpf);
}

/* Values against PyTorch (float64 autograd; the authors' clipped_softmax). */
static void test_torch_fixtures(void **state)
{
    (void)state;
    lb_tensor *x = load("cs_x", 0), *dy = load("cs_dy", x->numel), *params = load("cs_params", 0);
    assert_int_equal(x->ndim, 2);
    const int64_t R = x->shape[0], C = x->shape[1];
    const size_t n = x->numel;
    double *y = lb_alloc(n * sizeof(double)), *dx = lb_alloc(n * sizeof(double));
    assert_non_null(y);
    assert_non_null(dx);
    const int K = (int)params->shape[0];
    int zeros = 0, ones = 0;
    for (int k = 0; k < K; k++) {
        const double gamma = lb_tensor_f64(params)[2 * k], zeta = lb_tensor_f64(params)[2 * k + 1];
        char name[32];
        snprintf(name, sizeof name, "cs_y_%d", k);
        lb_tensor *ey = load(name, n);
        snprintf(name, sizeof name, "cs_dx_%d", k);
        lb_tensor *edx = load(name, n);
        assert_int_equal(lb_clipped_softmax_ref_f64(NULL, R, C, gamma, zeta, lb_tensor_f64(x), y), LB_OK);
        assert_int_equal(lb_clipped_softmax_backward_ref_f64(NULL, R, C, gamma, zeta, lb_tensor_f64(x),
                                                             lb_tensor_f64(dy), dx),
                         LB_OK);
        /* torch sums in a different order: a few ulps */
        assert_close(y, lb_tensor_f64(ey), n, 1e-15, 1e-13, "forward vs torch");
        assert_close(dx, lb_tensor_f64(edx), n, 1e-15, 1e-12, "backward vs torch");
        for (size_t i = 0; i < n; i++) {
            const double e = lb_tensor_f64(ey)[i];
            if (e == 0.0 || e == 1.0) assert_true(y[i] == e); /* exact clips agree */
            zeros += e == 0.0, ones += e == 1.0;
        }
        lb_tensor_free(ey);
        lb_tensor_free(edx);
    }
    assert_true(zeros > 10 && ones >= 1);
    /* float entry points vs torch's float32 arithmetic (rounding differences
     * of float32: a few ulps of 1) */
    lb_tensor *x32 = load("cs_x32", n), *y32 = load("cs_y32_1", n);
    float *yf = lb_alloc(n * sizeof(float));
    assert_non_null(yf);
    assert_int_equal(lb_clipped_softmax_ref(NULL, R, C, -0.025, 1.0, lb_tensor_f32(x32), yf), LB_OK);
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(yf[i] - lb_tensor_f32(y32)[i]) <= 4 * FLT_EPSILON))
            fail_msg("f32 element %zu: %.9g vs torch %.9g", i, yf[i], lb_tensor_f32(y32)[i]);
    lb_free(yf);
    lb_tensor_free(x32);
    lb_tensor_free(y32);
    lb_free(y);
    lb_free(dx);
    lb_tensor_free(x);
    lb_tensor_free(dy);
    lb_tensor_free(params);
}

static void test_arguments(void **state)
{
    (void)state;
    double x[2] = {0, 1}, y[2], g[2] = {1, 1};
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 1, 2, 0.1, 1.0, x, y), LB_ERR_ARG);
    assert_true(strstr(lb_ctx_error(ctx), "gamma") != NULL);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 1, 2, 0.0, 0.99, x, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 1, 2, NAN, 1.0, x, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 1, 2, 0.0, INFINITY, x, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, -1, 2, 0.0, 1.0, x, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 1, 2, 0.0, 1.0, NULL, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(ctx, 1, 2, 0.0, 1.0, x, NULL, y), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_backward_ref_f64(ctx, 1, 2, 0.5, 1.0, x, g, y), LB_ERR_ARG);
    /* empty arrays are fine, even with NULL pointers */
    assert_int_equal(lb_clipped_softmax_ref_f64(ctx, 0, 2, 0.0, 1.0, NULL, NULL), LB_OK);
    assert_int_equal(lb_clipped_softmax_ref(ctx, 3, 0, 0.0, 1.0, NULL, NULL), LB_OK);
    double gamma;
    assert_int_equal(lb_clipped_softmax_gamma_from_alpha(ctx, -1, 128, &gamma), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_gamma_from_alpha(ctx, 2, 0, &gamma), LB_ERR_ARG);
    assert_int_equal(lb_clipped_softmax_gamma_from_alpha(ctx, 3.2, 128, &gamma), LB_OK);
    assert_true(fabs(gamma - LB_CLIPPED_SOFTMAX_BERT_GAMMA) < 1e-17);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduces_to_softmax),
        cmocka_unit_test(test_golden_vectors),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_uniform_row_alpha),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_masked_keys),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_fd_backward),
        cmocka_unit_test(test_clipped_no_gradient),
        cmocka_unit_test(test_f32_and_in_place),
        cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_arguments),
    };
    return LB_RUN_TESTS(tests);
}

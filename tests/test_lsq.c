/* tests/test_lsq.c — LSQ int4 quantizer (ref/lsq.c): spec int4_training.md
 * §1.2 and §4.2 — init rule, range modes, tie rules, idempotence, error bound,
 * straight-through masks, the step-size gradient (closed form, finite
 * differences of the straight-through surrogate, PyTorch autograd), and
 * non-finite inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/lsq.h"
#include "test_util.h"
#include "xi_test.h"

static void test_init_rule(void **state)
{
    (void)state;
    float t[5] = {1.0f, -2.0f, 3.0f, -4.0f, 0.5f}, s = 0.0f;
    assert_int_equal(lb_lsq_init_step_ref(NULL, 5, t, &s), LB_OK);
    assert_true(s == (float)(2.0 * (10.5 / 5.0) / sqrt(7.0) + 1e-10));
    float z[4] = {0};
    assert_int_equal(lb_lsq_init_step_ref(NULL, 4, z, &s), LB_OK);
    assert_true(s == 1e-10f);
    /* zero input: step 1e-10, every code 0 */
    int8_t q[4];
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 4, z, s, q, NULL), LB_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(q[i], 0);
    t[2] = NAN;
    assert_int_equal(lb_lsq_init_step_ref(NULL, 5, t, &s), LB_ERR_NUMERIC);
}

/* Codes lie in the mode's range, Q is idempotent for a fixed step, the error
 * is <= s/2 inside the range, and huge values clip to the range ends. */
static void test_forward_properties(void **state)
{
    (void)state;
    enum { n = 2000 };
    static float x[n], qx[n], v[n];
    static int8_t q[n], q2[n];
    xi_fill_normal_f32(x, n, 3, 1.0);
    x[10] = 1e6f;
    x[11] = -1e6f;
    const float s = 0.37f;
    for (int mode = 0; mode < 2; mode++) {
        lb_lsq_range range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        const int qn = mode ? 8 : 7;
        assert_int_equal(lb_lsq_qn(range), qn);
        assert_int_equal(lb_lsq_quantize_ref(NULL, range, LB_ROUND_HALF_EVEN, n, x, s, q, v), LB_OK);
        for (int i = 0; i < n; i++) {
            assert_true(q[i] >= -qn && q[i] <= 7);
            assert_true(v[i] == x[i] / s);
            qx[i] = s * (float)q[i];
            if (v[i] >= (float)-qn && v[i] <= 7.0f) assert_true(fabsf(x[i] - qx[i]) <= 0.5f * s * (1 + 1e-6f));
        }
        assert_int_equal(q[10], 7);
        assert_int_equal(q[11], -qn);
        /* idempotent: quantizing s·q gives q back */
        assert_int_equal(lb_lsq_quantize_ref(NULL, range, LB_ROUND_HALF_EVEN, n, qx, s, q2, NULL), LB_OK);
        assert_memory_equal(q, q2, n);
    }
}

/* Exact .5 ties: half-even vs half-away (the authors' CUDA round()). */
static void test_tie_rules(void **state)
{
    (void)state;
    float x[6] = {2.5f, -2.5f, 0.5f, -0.5f, 3.5f, 6.5f};
    int8_t even[6], away[6];
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 6, x, 1.0f, even, NULL), LB_OK);
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_AWAY, 6, x, 1.0f, away, NULL), LB_OK);
    const int8_t e[6] = {2, -2, 0, 0, 4, 6}, a[6] = {3, -3, 1, -1, 4, 7};
    assert_memory_equal(even, e, 6);
    assert_memory_equal(away, a, 6);
}

/* dL/dx mask and dL/ds = g Σ g_i δ_i with δ in {-Qn, Qp, RTN(v) - v}. */
static void test_backward_closed_form(void **state)
{
    (void)state;
    /* quotients: below, at the ends, inside, above */
    float v[7] = {-9.0f, -8.0f, -7.0f, 2.25f, 7.0f, 7.5f, -7.75f};
    float g[7] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
    float gi[7], gs;
    assert_int_equal(lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 7, v, g, gi, &gs), LB_OK);
    const float mask_paper[7] = {0, 0, 3, 4, 5, 0, 0};
    assert_memory_equal(gi, mask_paper, sizeof gi);
    double sum = 1 * -7.0 + 2 * -7.0 + 3 * 0.0 + 4 * (2.0 - 2.25) + 5 * 0.0 + 6 * 7.0 + 7 * -7.0;
    assert_true(gs == (float)(sum / sqrt(7.0 * 7.0)));
    assert_int_equal(lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_CODE, LB_ROUND_HALF_EVEN, 7, v, g, gi, &gs), LB_OK);
    const float mask_code[7] = {0, 2, 3, 4, 5, 0, 7};
    assert_memory_equal(gi, mask_code, sizeof gi);
    sum = 1 * -8.0 + 2 * 0.0 + 3 * 0.0 + 4 * (2.0 - 2.25) + 5 * 0.0 + 6 * 7.0 + 7 * (-8.0 + 7.75);
    assert_true(gs == (float)(sum / sqrt(7.0 * 7.0)));
}

/* The surrogate whose exact gradient LSQ computes:
 * F(x, s) = Σ g_i · s · (clamp(x_i/s, -Qn, Qp) + c_i), c_i = q_i - clamp(v_i)
 * frozen at the base point. Central differences in double. */
static double surrogate(int n, const double *x, double s, const double *c, const float *g, int qn)
{
    double f = 0.0;
    for (int i = 0; i < n; i++) {
        double v = x[i] / s;
        v = v < -qn ? -qn : (v > 7 ? 7 : v);
        f += (double)g[i] * s * (v + c[i]);
    }
    return f;
}

static void test_finite_differences(void **state)
{
    (void)state;
    enum { n = 400 };
    static float x[n], g[n], v[n], gi[n];
    static double xd[n], c[n];
    static int8_t q[n];
    xi_fill_normal_f32(x, n, 21, 2.0);
    xi_fill_normal_f32(g, n, 22, 1.0);
    const float s = 0.41f;
    for (int mode = 0; mode < 2; mode++) {
        lb_lsq_range range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        int qn = lb_lsq_qn(range);
        /* keep the data away from the clamp ends so the surrogate is linear within ±h */
        for (int i = 0; i < n; i++) {
            double vv = x[i] / s;
            if (fabs(vv - 7) < 0.01 || fabs(vv + qn) < 0.01) x[i] *= 1.1f;
        }
        assert_int_equal(lb_lsq_quantize_ref(NULL, range, LB_ROUND_HALF_EVEN, n, x, s, q, v), LB_OK);
        float gs;
        assert_int_equal(lb_lsq_backward_ref(NULL, range, LB_ROUND_HALF_EVEN, n, v, g, gi, &gs), LB_OK);
        for (int i = 0; i < n; i++) {
            xd[i] = x[i];
            double vc = v[i] < -qn ? -qn : (v[i] > 7 ? 7 : (double)v[i]);
            c[i] = (double)q[i] - vc;
        }
        const double h = 1e-7;
        double fd = (surrogate(n, xd, s + h, c, g, qn) - surrogate(n, xd, s - h, c, g, qn)) / (2 * h);
        double scale = 1.0 / sqrt((double)n * 7.0);
        assert_true(fabs(gs / scale - fd) <= 1e-5 * (1.0 + fabs(fd)));
        for (int i = 0; i < n; i += 7) {
            double keep = xd[i];
            xd[i] = keep + h;
            double fp = surrogate(n, xd, s, c, g, qn);
            xd[i] = keep - h;
            double fm = surrogate(n, xd, s, c, g, qn);
            xd[i] = keep;
            assert_true(fabs((fp - fm) / (2 * h) - gi[i]) <= 1e-5 * (1.0 + fabs(gi[i])));
        }
    }
}

/* PyTorch: codes from torch.round/clamp, gradients by autograd through the
 * usual straight-through LSQ with the gradient-scale trick. */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy fx, fg, fs;
    assert_int_equal(xi_npy_load("xi/lsq_x.npy", &fx), 0);
    assert_int_equal(xi_npy_load("xi/lsq_gout.npy", &fg), 0);
    assert_int_equal(xi_npy_load("xi/lsq_step.npy", &fs), 0);
    const int64_t n = fx.numel;
    float *x = xi_npy_f32(&fx), *g = xi_npy_f32(&fg), *v = malloc((size_t)n * sizeof *v),
          *gi = malloc((size_t)n * sizeof *gi);
    int8_t *q = malloc((size_t)n);
    float s;
    assert_int_equal(lb_lsq_init_step_ref(NULL, n, x, &s), LB_OK);
    assert_true(s == (float)fs.data[0]);
    const char *names[2] = {"paper", "code"};
    for (int mode = 0; mode < 2; mode++) {
        char name[64];
        xi_npy codes, gx, gsr;
        snprintf(name, sizeof name, "xi/lsq_codes_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &codes), 0);
        snprintf(name, sizeof name, "xi/lsq_gx_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &gx), 0);
        snprintf(name, sizeof name, "xi/lsq_gs_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &gsr), 0);
        lb_lsq_range range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        assert_int_equal(lb_lsq_quantize_ref(NULL, range, LB_ROUND_HALF_EVEN, n, x, s, q, v), LB_OK);
        for (int64_t i = 0; i < n; i++) assert_int_equal(q[i], (int)codes.data[i]);
        float gs;
        assert_int_equal(lb_lsq_backward_ref(NULL, range, LB_ROUND_HALF_EVEN, n, v, g, gi, &gs), LB_OK);
        assert_int_equal(xi_check_close_f32("lsq grad x", n, gi, gx.data, 0.0, 0.0), 0);
        /* float32 result of a double sum; torch sums in another order */
        assert_true(fabs(gs - gsr.data[0]) <= 1e-6 * fabs(gsr.data[0]) + 1e-7);
        xi_npy_free(&codes), xi_npy_free(&gx), xi_npy_free(&gsr);
    }
    free(x), free(g), free(v), free(gi), free(q);
    xi_npy_free(&fx), xi_npy_free(&fg), xi_npy_free(&fs);
}

static void test_errors(void **state)
{
    (void)state;
    float x[3] = {1.0f, NAN, 2.0f}, v[3] = {0.5f, INFINITY, 1.0f}, g[3] = {1, 1, 1}, gi[3], gs;
    int8_t q[3];
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, x, 1.0f, q, NULL), LB_ERR_NUMERIC);
    x[1] = INFINITY;
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, x, 1.0f, q, NULL), LB_ERR_NUMERIC);
    x[1] = 0.0f;
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, x, 0.0f, q, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, x, -1.0f, q, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, x, NAN, q, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_STOCHASTIC, 3, x, 1.0f, q, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lsq_quantize_ref(NULL, (lb_lsq_range)5, LB_ROUND_HALF_EVEN, 3, x, 1.0f, q, NULL), LB_ERR_ARG);
    assert_int_equal(lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, v, g, gi, &gs), LB_ERR_NUMERIC);
    v[1] = 0.0f;
    g[2] = NAN;
    assert_int_equal(lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 3, v, g, gi, &gs), LB_ERR_NUMERIC);
    assert_string_equal(lb_lsq_range_name(LB_LSQ_RANGE_CODE), "code");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rule),
        cmocka_unit_test(test_forward_properties),
        cmocka_unit_test(test_tie_rules),
        cmocka_unit_test(test_backward_closed_form),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_pytorch_fixture),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

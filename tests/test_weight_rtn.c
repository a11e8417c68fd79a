/* tests/test_weight_rtn.c — RTN weight quantization of ref/weight_rtn.c:
 * NumPy fixtures (tests/gen/gptq_fixtures.py), equality with the uniform and
 * power quantizers it drives (per tensor, per channel, per group incl. a
 * ragged last group), de-quantization with a group index, the reconstruction
 * error on a hand example, zeros / NaN / Inf and bad configurations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/npy.h"
#include "lowbit/rng.h"
#include "lowbit/tensor.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "lowbit/ref/range_estimators.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/ref/weight_quant.h"
#include "test_fixture.h"

static lb_tensor *load(const char *name) { return lb_test_fixture("gptq", name, 0); }

static float rnd(uint64_t i, float spread) { return (lb_rng_uniform_f32(2023, 3, i) * 2.0f - 1.0f) * spread; }

/* Random weights with per-row spread, one outlier, one zero row. */
static void fill_weights(float *w, int rows, int cols, uint64_t salt)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            w[r * cols + c] = rnd(salt * 100003u + (uint64_t)(r * cols + c), 0.1f * (float)(1 + r % 4));
    w[cols + 2] = 2.5f;
    if (rows > 3)
        for (int c = 0; c < cols; c++) w[3 * cols + c] = 0.0f;
}

static void assert_codes_equal(const int32_t *a, const int32_t *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            fprintf(stderr, "%s: code mismatch at %lld: %d vs %d\n", what, (long long)i, (int)a[i], (int)b[i]);
            fail();
        }
    }
}

/* |a - b| <= tol * max(1, |b|) */
static void assert_close(const float *a, const float *b, int64_t n, double tol, const char *what)
{
    double worst = 0.0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    if (worst > tol) {
        fprintf(stderr, "%s: max rel error %g at %lld (%.9g vs %.9g), tol %g\n", what, worst, (long long)at,
                (double)a[at], (double)b[at], tol);
        fail();
    }
}

/* ---- NumPy fixtures -------------------------------------------------------- */

typedef struct rtn_case {
    const char *name;
    int bits, sym;
    lb_wq_granularity gran;
    int64_t group;
    lb_range_method range;
    int candidates;
    lb_wq_grid grid;
    double a;
} rtn_case;

/* Must match RTN_CASES in tests/gen/gptq_fixtures.py. */
static const rtn_case rtn_cases[] = {
    {"r0", 4, 1, LB_WQ_TENSOR, 128, LB_RANGE_MINMAX, 100, LB_WQ_GRID_UNIFORM, 1.0},
    {"r1", 3, 0, LB_WQ_CHANNEL, 128, LB_RANGE_MINMAX, 100, LB_WQ_GRID_UNIFORM, 1.0},
    {"r2", 4, 1, LB_WQ_GROUP, 8, LB_RANGE_MSE, 100, LB_WQ_GRID_UNIFORM, 1.0},
    {"r3", 4, 1, LB_WQ_GROUP, 10, LB_RANGE_MINMAX, 100, LB_WQ_GRID_POWER, 0.55},
    {"r4", 2, 0, LB_WQ_GROUP, 16, LB_RANGE_MINMAX, 100, LB_WQ_GRID_UNIFORM, 1.0},
    {"r5", 8, 1, LB_WQ_CHANNEL, 128, LB_RANGE_MSE, 50, LB_WQ_GRID_UNIFORM, 1.0},
};

static lb_weight_quant_config config_of(const rtn_case *c)
{
    lb_weight_quant_config q = lb_weight_quant_config_default();
    q.bits = c->bits;
    q.symmetric = c->sym;
    q.granularity = c->gran;
    q.group_size = c->group;
    q.range.method = c->range;
    q.range.mse_candidates = c->candidates;
    q.range.mse_margin = 0.0;
    q.grid = c->grid;
    q.power_a = c->a;
    return q;
}

/* Codes, scales and zero points exact; Ŵ within 2 float32 ulps (the power
 * grid's pow may differ in the last bit between libms). */
static void test_rtn_fixtures(void **state)
{
    (void)state;
    lb_tensor *W = load("rtn_W");
    const int64_t C_out = W->shape[0], C_in = W->shape[1];
    for (size_t k = 0; k < sizeof rtn_cases / sizeof rtn_cases[0]; k++) {
        const rtn_case *c = &rtn_cases[k];
        char name[64];
        lb_weight_quant_config q = config_of(c);
        int64_t rows, cols;
        assert_int_equal(lb_weight_scale_shape(NULL, &q, C_out, C_in, &rows, &cols), LB_OK);
        snprintf(name, sizeof name, "%s_codes", c->name);
        lb_tensor *ec = load(name);
        snprintf(name, sizeof name, "%s_what", c->name);
        lb_tensor *ew = load(name);
        snprintf(name, sizeof name, "%s_scale", c->name);
        lb_tensor *es = load(name);
        snprintf(name, sizeof name, "%s_zero", c->name);
        lb_tensor *ez = load(name);
        assert_int_equal((int64_t)es->numel, rows * cols);
        int32_t *codes = malloc((size_t)(C_out * C_in) * sizeof(int32_t));
        float *what = malloc((size_t)(C_out * C_in) * sizeof(float));
        float *scale = malloc((size_t)(rows * cols) * sizeof(float));
        int32_t *zero = malloc((size_t)(rows * cols) * sizeof(int32_t));
        assert_int_equal(lb_weight_rtn_ref(NULL, &q, C_out, C_in, lb_tensor_f32(W), codes, scale, zero, what), LB_OK);
        assert_codes_equal(codes, lb_tensor_s32(ec), C_out * C_in, c->name);
        assert_codes_equal(zero, lb_tensor_s32(ez), rows * cols, c->name);
        assert_close(scale, lb_tensor_f32(es), rows * cols, 0.0, c->name);
        assert_close(what, lb_tensor_f32(ew), C_out * C_in, 2.4e-7, c->name);
        free(codes);
        free(what);
        free(scale);
        free(zero);
        lb_tensor_free(ec);
        lb_tensor_free(ew);
        lb_tensor_free(es);
        lb_tensor_free(ez);
    }
    lb_tensor_free(W);
}

/* ---- the driver equals the quantizers it drives ------------------------------ */

/* Per tensor = LB_GRAN_TENSOR, per channel = LB_GRAN_CHANNEL (axis 0), per
 * group with g | C_in = LB_GRAN_TOKEN on the (C_out C_in / g, g) view; for
 * sym / asym, min-max / MSE (asymmetric MSE: the 2-D grid), bits 2..8. */
static void test_rtn_equals_uniform(void **state)
{
    (void)state;
    enum { R = 6, C = 24, G = 8 };
    static float w[R * C], wh[R * C], xh[R * C];
    static int32_t q[R * C], qu[R * C];
    for (int bits = 2; bits <= 8; bits += 3) {
        for (int sym = 0; sym <= 1; sym++) {
            for (int rm = 0; rm < 2; rm++) {
                for (int gi = 0; gi < 3; gi++) {
                    fill_weights(w, R, C, (uint64_t)(bits * 31 + sym * 7 + rm * 3 + gi));
                    lb_weight_quant_config c = lb_weight_quant_config_default();
                    c.bits = bits;
                    c.symmetric = sym;
                    c.granularity = (lb_wq_granularity)gi;
                    c.group_size = G;
                    c.range.method = rm ? LB_RANGE_MSE : LB_RANGE_MINMAX;
                    c.range.mse_candidates = 40;
                    int64_t rows, cols;
                    assert_int_equal(lb_weight_scale_shape(NULL, &c, R, C, &rows, &cols), LB_OK);
                    float scale[R * (C / G)], su[R * (C / G)], lo[R * (C / G)], hi[R * (C / G)];
                    int32_t zero[R * (C / G)], zu[R * (C / G)];
                    assert_int_equal(lb_weight_rtn_ref(NULL, &c, R, C, w, q, scale, zero, wh), LB_OK);

                    lb_uniform_config u = lb_uniform_config_default();
                    u.bits = bits;
                    u.symmetric = sym;
                    lb_qgroups gr;
                    if (gi == 0) gr = (lb_qgroups){1, 1, R * C};
                    else if (gi == 1) gr = (lb_qgroups){1, R, C};
                    else gr = (lb_qgroups){1, R * C / G, G};
                    assert_int_equal(lb_range_estimate_ref(NULL, &c.range, &u, &gr, w, lo, hi), LB_OK);
                    assert_int_equal(lb_uniform_qparams_ref(NULL, &u, gr.groups, lo, hi, su, zu), LB_OK);
                    assert_int_equal(lb_uniform_quantize_ref(NULL, &u, &gr, w, su, zu, qu), LB_OK);
                    assert_int_equal(lb_uniform_dequantize_ref(NULL, &u, &gr, qu, su, zu, xh), LB_OK);
                    assert_int_equal(rows * cols, gr.groups);
                    for (int64_t g = 0; g < gr.groups; g++) {
                        assert_true(scale[g] == su[g]);
                        assert_int_equal(zero[g], zu[g]);
                    }
                    assert_codes_equal(q, qu, R * C, "rtn vs uniform");
                    for (int i = 0; i < R * C; i++) assert_true(wh[i] == xh[i]);
                }
            }
        }
    }
}

/* The power grid equals lb_power_quantize_ref (per channel, per group, per
 * tensor; a < 1, = 1, > 1; bits 2..8), scales are the group maxima. */
static void test_rtn_equals_power(void **state)
{
    (void)state;
    enum { R = 5, C = 30, G = 6 };
    static float w[R * C], wh[R * C], ph[R * C];
    static int32_t q[R * C];
    static int8_t pq[R * C];
    const double as[3] = {0.45, 1.0, 1.7};
    for (int bits = 2; bits <= 8; bits++) {
        for (int ai = 0; ai < 3; ai++) {
            for (int gi = 0; gi < 3; gi++) {
                fill_weights(w, R, C, (uint64_t)(bits * 11 + ai * 5 + gi + 1000));
                lb_weight_quant_config c = lb_weight_quant_config_default();
                c.bits = bits;
                c.grid = LB_WQ_GRID_POWER;
                c.power_a = as[ai];
                c.granularity = (lb_wq_granularity)gi;
                c.group_size = G;
                float scale[R * (C / G)], gm[R * (C / G)];
                assert_int_equal(lb_weight_rtn_ref(NULL, &c, R, C, w, q, scale, NULL, wh), LB_OK);
                lb_qgroups gr;
                if (gi == 0) gr = (lb_qgroups){1, 1, R * C};
                else if (gi == 1) gr = (lb_qgroups){1, R, C};
                else gr = (lb_qgroups){1, R * C / G, G};
                assert_int_equal(lb_power_quantize_ref(NULL, bits, as[ai], &gr, w, gm, pq, ph), LB_OK);
                for (int64_t g = 0; g < gr.groups; g++) assert_true(scale[g] == gm[g]);
                for (int i = 0; i < R * C; i++) {
                    assert_int_equal(q[i], (int32_t)pq[i]);
                    assert_true(wh[i] == ph[i]);
                }
            }
        }
    }
}

/* A ragged last group (C_in = 37, g = 8: four groups of 8 and one of 5)
 * equals quantizing each column group on its own; the scale array is
 * (C_out, 5); dequantize reproduces Ŵ, with the default and an explicit g_idx. */
static void test_ragged_groups_and_dequantize(void **state)
{
    (void)state;
    enum { R = 4, C = 37, G = 8, NG = 5 };
    static float w[R * C], wh[R * C], d[R * C], sub[R * G], subh[R * G];
    static int32_t q[R * C], subq[R * G];
    fill_weights(w, R, C, 77);
    for (int sym = 0; sym <= 1; sym++) {
        lb_weight_quant_config c = lb_weight_quant_config_default();
        c.bits = 3;
        c.symmetric = sym;
        c.granularity = LB_WQ_GROUP;
        c.group_size = G;
        int64_t rows, cols;
        assert_int_equal(lb_weight_scale_shape(NULL, &c, R, C, &rows, &cols), LB_OK);
        assert_int_equal(rows, R);
        assert_int_equal(cols, NG);
        float scale[R * NG], ss[R];
        int32_t zero[R * NG], zz[R];
        assert_int_equal(lb_weight_rtn_ref(NULL, &c, R, C, w, q, scale, zero, wh), LB_OK);
        for (int k = 0; k < NG; k++) {
            const int c0 = k * G, len = c0 + G <= C ? G : C - c0;
            for (int r = 0; r < R; r++)
                for (int j = 0; j < len; j++) sub[r * len + j] = w[r * C + c0 + j];
            lb_weight_quant_config cc = c;
            cc.granularity = LB_WQ_CHANNEL;
            assert_int_equal(lb_weight_rtn_ref(NULL, &cc, R, len, sub, subq, ss, zz, subh), LB_OK);
            for (int r = 0; r < R; r++) {
                assert_true(scale[r * NG + k] == ss[r]);
                assert_int_equal(zero[r * NG + k], zz[r]);
                for (int j = 0; j < len; j++) {
                    assert_int_equal(q[r * C + c0 + j], subq[r * len + j]);
                    assert_true(wh[r * C + c0 + j] == subh[r * len + j]);
                }
            }
        }
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, NULL, d), LB_OK);
        for (int i = 0; i < R * C; i++) assert_true(d[i] == wh[i]);
        int32_t gidx[C];
        for (int j = 0; j < C; j++) gidx[j] = j / G;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, gidx, d), LB_OK);
        for (int i = 0; i < R * C; i++) assert_true(d[i] == wh[i]);
        /* a wrong g_idx changes the result; an out-of-range one is an error */
        gidx[0] = 1;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, gidx, d), LB_OK);
        int differs = 0;
        for (int r = 0; r < R; r++) differs |= d[r * C] != wh[r * C];
        assert_true(differs);
        gidx[0] = NG;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, gidx, d), LB_ERR_ARG);
        gidx[0] = -1;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, gidx, d), LB_ERR_ARG);
        /* codes outside the range */
        int32_t keep = q[5];
        q[5] = sym ? 4 : 8;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, NULL, d), LB_ERR_ARG);
        q[5] = sym ? -4 : -1;
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c, R, C, q, scale, zero, NULL, d), LB_ERR_ARG);
        q[5] = keep;
    }
}

/* Codes stay in the code range (all bit widths, one huge outlier), values
 * beyond a group's range clamp to the end codes in lb_weight_code. */
static void test_code_range_and_clamp(void **state)
{
    (void)state;
    enum { R = 3, C = 64 };
    static float w[R * C], wh[R * C];
    static int32_t q[R * C];
    fill_weights(w, R, C, 5);
    w[7] = 1e30f;
    w[C + 9] = -3e38f;
    for (int bits = 2; bits <= 8; bits++) {
        for (int mode = 0; mode < 3; mode++) {
            lb_weight_quant_config c = lb_weight_quant_config_default();
            c.bits = bits;
            c.symmetric = mode != 1;
            c.grid = mode == 2 ? LB_WQ_GRID_POWER : LB_WQ_GRID_UNIFORM;
            c.power_a = 0.5;
            int32_t qmin, qmax;
            float scale[R];
            int32_t zero[R];
            assert_int_equal(lb_weight_code_range(NULL, &c, &qmin, &qmax), LB_OK);
            assert_int_equal(lb_weight_rtn_ref(NULL, &c, R, C, w, q, scale, zero, wh), LB_OK);
            for (int i = 0; i < R * C; i++) {
                assert_true(q[i] >= qmin && q[i] <= qmax);
                assert_true(isfinite(wh[i]));
            }
            /* the outliers map to the end codes and back to themselves (to float rounding) */
            assert_int_equal(q[7], qmax);
            assert_true(fabsf(wh[7] - 1e30f) <= 1e24f);
            float v;
            assert_int_equal(lb_weight_code(&c, 4.0f * scale[2] * (float)qmax, scale[2], zero[2], &v), qmax);
            assert_int_equal(lb_weight_code(&c, -1e20f, scale[2], zero[2], &v), c.symmetric ? -qmax : 0);
        }
    }
    /* the power grid codes a group max M to exactly ±N and back to ±M */
    lb_weight_quant_config p = lb_weight_quant_config_default();
    p.grid = LB_WQ_GRID_POWER;
    p.power_a = 0.55;
    float v;
    assert_int_equal(lb_weight_code(&p, -0.37f, 0.37f, 0, &v), -7);
    assert_true(v == -0.37f);
    assert_int_equal(lb_weight_code(&p, 0.0f, 0.37f, 0, &v), 0);
    assert_true(v == 0.0f);
}

/* ||XW^T - XŴ^T||² and ||XW^T||² on a hand example, the ratio helper, NaN. */
static void test_recon_error(void **state)
{
    (void)state;
    const float X[4] = {1, 2, 3, 4};            // (2, 2)
    const float W[4] = {1, 0, 0, 1};            // (2, 2)
    const float What[4] = {1, 0.5f, 0, 1};      // (2, 2)
    double e, y;
    assert_int_equal(lb_weight_recon_error_ref(NULL, 2, 2, 2, X, W, What, &e, &y), LB_OK);
    /* X (W - Ŵ)^T = [[-1, 0], [-2, 0]]: 1 + 4 = 5; X W^T = X: 1 + 4 + 9 + 16 = 30 */
    assert_true(e == 5.0);
    assert_true(y == 30.0);
    assert_true(lb_weight_relative_error(e, y) == 5.0 / 30.0);
    assert_true(lb_weight_relative_error(0.0, 0.0) == 0.0);
    assert_true(isinf(lb_weight_relative_error(1.0, 0.0)));
    float Xn[4] = {1, NAN, 3, 4};
    assert_int_equal(lb_weight_recon_error_ref(NULL, 2, 2, 2, Xn, W, What, &e, &y), LB_ERR_NUMERIC);
    float Wn[4] = {1, 0, INFINITY, 1};
    assert_int_equal(lb_weight_recon_error_ref(NULL, 2, 2, 2, X, Wn, What, &e, &y), LB_ERR_NUMERIC);
    assert_int_equal(lb_weight_recon_error_ref(NULL, 0, 2, 2, NULL, W, What, &e, &y), LB_OK);
    assert_true(e == 0.0 && y == 0.0);
}

/* Zeros, NaN/Inf, empty and 1x1 shapes, bad configurations. */
static void test_edge_cases(void **state)
{
    (void)state;
    float w[12] = {0}, wh[12], scale[12];
    int32_t q[12], zero[12];
    lb_weight_quant_config c = lb_weight_quant_config_default();
    for (int sym = 0; sym <= 1; sym++) {
        for (int gi = 0; gi < 3; gi++) {
            c.symmetric = sym;
            c.granularity = (lb_wq_granularity)gi;
            c.group_size = 5;
            assert_int_equal(lb_weight_rtn_ref(NULL, &c, 3, 4, w, q, scale, zero, wh), LB_OK);
            for (int i = 0; i < 12; i++) {
                assert_true(wh[i] == 0.0f);
                assert_int_equal(q[i], sym ? 0 : zero[0]);
            }
        }
    }
    c = lb_weight_quant_config_default();
    w[0] = 0.3f;
    assert_int_equal(lb_weight_rtn_ref(NULL, &c, 1, 1, w, q, scale, NULL, wh), LB_OK);
    assert_int_equal(q[0], 7);
    assert_true(fabsf(wh[0] - 0.3f) <= 3e-8f);
    assert_int_equal(lb_weight_rtn_ref(NULL, &c, 0, 4, NULL, NULL, NULL, NULL, NULL), LB_OK);
    w[5] = NAN;
    assert_int_equal(lb_weight_rtn_ref(NULL, &c, 3, 4, w, q, scale, NULL, wh), LB_ERR_NUMERIC);
    w[5] = -INFINITY;
    assert_int_equal(lb_weight_rtn_ref(NULL, &c, 3, 4, w, q, scale, NULL, wh), LB_ERR_NUMERIC);
    c.grid = LB_WQ_GRID_POWER;
    assert_int_equal(lb_weight_rtn_ref(NULL, &c, 3, 4, w, q, scale, NULL, wh), LB_ERR_NUMERIC);
    w[5] = 0.0f;

    lb_weight_quant_config b = lb_weight_quant_config_default();
    b.bits = 1;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_ARG);
    b.bits = 9;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_ARG);
    b = lb_weight_quant_config_default();
    b.granularity = LB_WQ_GROUP;
    b.group_size = 0;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_ARG);
    b = lb_weight_quant_config_default();
    b.grid = LB_WQ_GRID_POWER;
    b.power_a = 0.0;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_ARG);
    b.power_a = 0.5;
    b.symmetric = 0;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_UNSUPPORTED);
    b.symmetric = 1;
    b.range.method = LB_RANGE_MSE;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_ERR_UNSUPPORTED);
    b.range.method = LB_RANGE_MINMAX;
    assert_int_equal(lb_weight_quant_check(NULL, &b), LB_OK);
    b = lb_weight_quant_config_default();
    b.symmetric = 0;
    assert_int_equal(lb_weight_rtn_ref(NULL, &b, 3, 4, w, q, scale, NULL, wh), LB_ERR_ARG); /* needs zeros */
    assert_string_equal(lb_wq_granularity_name(LB_WQ_GROUP), "group");
    assert_string_equal(lb_wq_grid_name(LB_WQ_GRID_POWER), "power");
    assert_null(lb_wq_grid_name((lb_wq_grid)7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtn_fixtures),
        cmocka_unit_test(test_rtn_equals_uniform),
        cmocka_unit_test(test_rtn_equals_power),
        cmocka_unit_test(test_ragged_groups_and_dequantize),
        cmocka_unit_test(test_code_range_and_clamp),
        cmocka_unit_test(test_recon_error),
        cmocka_unit_test(test_edge_cases),
    };
    return LB_RUN_TESTS(tests);
}

/* tests/test_hadamard.c — block Walsh–Hadamard transform (ref/hadamard.c):
 * spec int4_training.md §4.1 properties, the documented arithmetic, errors,
 * and values against a PyTorch fixture (tests/gen/xi_fixtures.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/hadamard.h"
#include "test_util.h"
#include "xi_test.h"

static int popcount64(uint64_t v)
{
    int c = 0;
    for (; v; v >>= 1) c += (int)(v & 1u);
    return c;
}

/* Entries are exactly ±2^{-k/2}, follow the popcount sign rule, H is
 * symmetric and H·H = I to 1e-15. */
static void test_closed_form_and_orthonormality(void **state)
{
    (void)state;
    for (int k = 0; k <= 10; k++) {
        int64_t b = (int64_t)1 << k;
        double h = pow(2.0, -0.5 * k);
        assert_int_equal(lb_hadamard_log2(b), k);
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++) {
                double e = lb_hadamard_entry(b, i, j);
                assert_true(fabs(fabs(e) - h) <= 1e-16 * h);
                assert_true((e < 0) == (popcount64((uint64_t)(i & j)) & 1));
                assert_true(e == lb_hadamard_entry(b, j, i));
            }
        if (k > 7) continue; /* H·H is O(b^3): check up to 128 */
        double worst = 0.0;
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++) {
                double s = 0.0;
                for (int64_t m = 0; m < b; m++) s += lb_hadamard_entry(b, i, m) * lb_hadamard_entry(b, m, j);
                double err = fabs(s - (i == j ? 1.0 : 0.0));
                if (err > worst) worst = err;
            }
        assert_true(worst < 1e-15);
    }
}

/* The butterfly of a basis vector e_i gives row i of the closed form
 * exactly, so the FWHT is the Sylvester-order transform without bit reversal. */
static void test_fwht_equals_closed_form(void **state)
{
    (void)state;
    for (int k = 0; k <= 10; k++) {
        int64_t b = (int64_t)1 << k;
        double *x = calloc((size_t)b, sizeof *x);
        for (int64_t i = 0; i < b; i += (b > 64 ? 37 : 1)) {
            memset(x, 0, (size_t)b * sizeof *x);
            x[i] = 1.0;
            assert_int_equal(lb_hadamard_f64_ref(NULL, 1, b, b, x, x), LB_OK);
            for (int64_t j = 0; j < b; j++) assert_true(x[j] == lb_hadamard_entry(b, i, j));
        }
        free(x);
    }
    /* A random vector against the dense product, in double. */
    for (int k = 1; k <= 8; k++) {
        int64_t b = (int64_t)1 << k;
        double *x = malloc((size_t)b * sizeof *x), *y = malloc((size_t)b * sizeof *y),
               *ref = malloc((size_t)b * sizeof *ref);
        for (int64_t i = 0; i < b; i++) x[i] = xi_normal(11, (uint64_t)i);
        for (int64_t j = 0; j < b; j++) {
            ref[j] = 0.0;
            for (int64_t i = 0; i < b; i++) ref[j] += x[i] * lb_hadamard_entry(b, i, j);
        }
        assert_int_equal(lb_hadamard_f64_ref(NULL, 1, b, b, x, y), LB_OK);
        assert_int_equal(xi_check_close("fwht vs dense", b, y, ref, 1e-13, 1e-13), 0);
        free(x), free(y), free(ref);
    }
}

/* Twice = identity (H = H^{-1}), and the row norm is preserved. */
static void test_involution_and_norm(void **state)
{
    (void)state;
    const int64_t rows = 3, D = 256;
    double *x = malloc(rows * D * sizeof *x), *y = malloc(rows * D * sizeof *y);
    for (int64_t i = 0; i < rows * D; i++) x[i] = xi_normal(5, (uint64_t)i);
    for (int64_t b = 1; b <= D; b *= 2) {
        assert_int_equal(lb_hadamard_f64_ref(NULL, rows, D, b, x, y), LB_OK);
        for (int64_t r = 0; r < rows; r++) {
            double n0 = 0, n1 = 0;
            for (int64_t j = 0; j < D; j++) n0 += x[r * D + j] * x[r * D + j], n1 += y[r * D + j] * y[r * D + j];
            assert_true(fabs(n0 - n1) <= 1e-13 * n0);
        }
        assert_int_equal(lb_hadamard_f64_ref(NULL, rows, D, b, y, y), LB_OK);
        assert_int_equal(xi_check_close("H(Hx)", rows * D, y, x, 1e-14, 1e-14), 0);
    }
    free(x), free(y);
}

/* The block transform equals the dense product with BlockDiag(H_b), block by
 * block, and (XH)(WH)^T = XW^T. */
static void test_block_invariance(void **state)
{
    (void)state;
    const int64_t N = 4, C = 3, D = 96; /* 96 = 3·32: blocks 1..32 */
    double *x = malloc(N * D * sizeof *x), *w = malloc(C * D * sizeof *w);
    double *xh = malloc(N * D * sizeof *xh), *wh = malloc(C * D * sizeof *wh), *ref = malloc(N * D * sizeof *ref);
    for (int64_t i = 0; i < N * D; i++) x[i] = xi_normal(1, (uint64_t)i);
    for (int64_t i = 0; i < C * D; i++) w[i] = xi_normal(2, (uint64_t)i);
    for (int64_t b = 1; b <= 32; b *= 2) {
        assert_int_equal(lb_hadamard_f64_ref(NULL, N, D, b, x, xh), LB_OK);
        assert_int_equal(lb_hadamard_f64_ref(NULL, C, D, b, w, wh), LB_OK);
        for (int64_t r = 0; r < N; r++)
            for (int64_t j = 0; j < D; j++) {
                int64_t b0 = j / b * b; /* the block holding column j */
                double s = 0.0;
                for (int64_t m = 0; m < b; m++) s += x[r * D + b0 + m] * lb_hadamard_entry(b, m, j - b0);
                ref[r * D + j] = s;
            }
        assert_int_equal(xi_check_close("block transform", N * D, xh, ref, 1e-13, 1e-13), 0);
        for (int64_t i = 0; i < N; i++)
            for (int64_t c = 0; c < C; c++) {
                double a = 0, e = 0;
                for (int64_t j = 0; j < D; j++) a += xh[i * D + j] * wh[c * D + j], e += x[i * D + j] * w[c * D + j];
                assert_true(fabs(a - e) <= 1e-12);
            }
    }
    free(x), free(w), free(xh), free(wh), free(ref);
}

/* float32 entry point = (float) of the double transform, bit for bit; block
 * 1 is the identity; in-place equals out-of-place. */
static void test_float_path_exact(void **state)
{
    (void)state;
    const int64_t rows = 5, D = 64;
    float *x = malloc(rows * D * sizeof *x), *y = malloc(rows * D * sizeof *y);
    double *xd = malloc(rows * D * sizeof *xd);
    xi_fill_normal_f32(x, rows * D, 9, 3.0);
    for (int64_t i = 0; i < rows * D; i++) xd[i] = x[i];
    for (int64_t b = 1; b <= D; b *= 2) {
        assert_int_equal(lb_hadamard_ref(NULL, rows, D, b, x, y), LB_OK);
        assert_int_equal(lb_hadamard_f64_ref(NULL, rows, D, b, xd, xd), LB_OK);
        for (int64_t i = 0; i < rows * D; i++) assert_true(y[i] == (float)xd[i]);
        for (int64_t i = 0; i < rows * D; i++) xd[i] = x[i];
        if (b == 1)
            for (int64_t i = 0; i < rows * D; i++) assert_true(y[i] == x[i]);
        float *z = malloc(rows * D * sizeof *z);
        memcpy(z, x, rows * D * sizeof *z);
        assert_int_equal(lb_hadamard_ref(NULL, rows, D, b, z, z), LB_OK);
        assert_memory_equal(z, y, rows * D * sizeof *z);
        free(z);
    }
    free(x), free(y), free(xd);
}

/* A spike spreads over its block; a constant block collapses to a spike. */
static void test_spike_and_constant(void **state)
{
    (void)state;
    for (int k = 0; k <= 6; k++) {
        int64_t b = (int64_t)1 << k, D = 2 * b;
        double *x = calloc((size_t)D, sizeof *x);
        x[b + 1 % b] = 5.0; /* a spike in the second block */
        assert_int_equal(lb_hadamard_f64_ref(NULL, 1, D, b, x, x), LB_OK);
        for (int64_t j = 0; j < b; j++) assert_true(x[j] == 0.0);
        for (int64_t j = 0; j < b; j++) assert_true(fabs(fabs(x[b + j]) - 5.0 * pow(2.0, -0.5 * k)) < 1e-14);
        for (int64_t j = 0; j < D; j++) x[j] = 3.0;
        assert_int_equal(lb_hadamard_f64_ref(NULL, 1, D, b, x, x), LB_OK);
        for (int64_t blk = 0; blk < 2; blk++)
            for (int64_t j = 0; j < b; j++)
                assert_true(fabs(x[blk * b + j] - (j == 0 ? 3.0 * pow(2.0, 0.5 * k) : 0.0)) < 1e-13);
        free(x);
    }
}

/* Bad blocks are LB_ERR_ARG; NaN stays inside its own block (documented
 * propagation). */
static void test_errors_and_nan(void **state)
{
    (void)state;
    float x[16] = {0}, y[16];
    assert_int_equal(lb_hadamard_ref(NULL, 1, 16, 3, x, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, 1, 16, 0, x, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, 1, 16, 32, x, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, 1, 12, 8, x, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, -1, 16, 4, x, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, 1, 16, 4, NULL, y), LB_ERR_ARG);
    assert_int_equal(lb_hadamard_ref(NULL, 0, 16, 4, NULL, NULL), LB_OK);
    assert_false(lb_hadamard_block_valid(12, 8));
    assert_true(lb_hadamard_block_valid(12, 4));
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    x[5] = NAN;
    assert_int_equal(lb_hadamard_ref(NULL, 1, 16, 4, x, y), LB_OK);
    for (int i = 0; i < 16; i++) assert_true(isnan(y[i]) == (i >= 4 && i < 8));
}

/* PyTorch: X @ BlockDiag(H_b) with H built like the authors' create_H
 * (torch.cat Sylvester recursion, / sqrt(2)), in float64. */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy xin;
    assert_int_equal(xi_npy_load("xi/hadamard_x.npy", &xin), 0);
    assert_int_equal(xin.ndim, 2);
    const int64_t rows = xin.shape[0], D = xin.shape[1];
    float *x = xi_npy_f32(&xin), *y = malloc((size_t)(rows * D) * sizeof *y);
    const int64_t blocks[] = {1, 2, 8, 32, 64};
    for (size_t t = 0; t < sizeof blocks / sizeof blocks[0]; t++) {
        char name[64];
        snprintf(name, sizeof name, "xi/hadamard_y_b%lld.npy", (long long)blocks[t]);
        xi_npy ref;
        assert_int_equal(xi_npy_load(name, &ref), 0);
        assert_int_equal(ref.numel, rows * D);
        assert_int_equal(lb_hadamard_ref(NULL, rows, D, blocks[t], x, y), LB_OK);
        /* float32 output of a double computation: one rounding, <= 2^-24 relative,
         * plus the double matmul's own rounding in torch. */
        assert_int_equal(xi_check_close_f32(name, rows * D, y, ref.data, 1e-6, 1e-6), 0);
        xi_npy_free(&ref);
    }
    free(x), free(y);
    xi_npy_free(&xin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_form_and_orthonormality),
        cmocka_unit_test(test_fwht_equals_closed_form),
        cmocka_unit_test(test_involution_and_norm),
        cmocka_unit_test(test_block_invariance),
        cmocka_unit_test(test_float_path_exact),
        cmocka_unit_test(test_spike_and_constant),
        cmocka_unit_test(test_errors_and_nan),
        cmocka_unit_test(test_pytorch_fixture),
    };
    return LB_RUN_TESTS(tests);
}

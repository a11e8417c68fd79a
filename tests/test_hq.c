/* tests/test_hq.c — the Hadamard quantizer and its block-size search
 * (ref/hadamard_quantizer.c): spec int4_training.md A.2, §4.1 — block 1 is
 * plain LSQ, the search returns the argmin of the documented error with the
 * authors' tie rule, outliers favour large blocks, constant rows turn into
 * clipped spikes, PyTorch fixture, non-finite inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/lsq.h"
#include "test_util.h"
#include "xi_test.h"

/* Block 1: HQ codes are exactly the LSQ codes of x. */
static void test_block1_is_lsq(void **state)
{
    (void)state;
    enum { rows = 7, D = 24 };
    float x[rows * D], v1[rows * D], v2[rows * D], t[rows * D], s;
    int8_t q1[rows * D], q2[rows * D];
    xi_fill_normal_f32(x, rows * D, 4, 1.5);
    assert_int_equal(lb_hq_init_step_ref(NULL, rows, D, 1, x, &s), LB_OK);
    float s2;
    assert_int_equal(lb_lsq_init_step_ref(NULL, rows * D, x, &s2), LB_OK);
    assert_true(s == s2);
    assert_int_equal(lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, rows, D, 1, x, s, q1, v1, t), LB_OK);
    assert_int_equal(lb_lsq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, rows * D, x, s, q2, v2), LB_OK);
    assert_memory_equal(q1, q2, sizeof q1);
    assert_memory_equal(v1, v2, sizeof v1);
    assert_memory_equal(t, x, sizeof t);
}

/* Independent double computation of one block's error term. */
static double error_term(int64_t rows, int64_t D, int64_t b, const float *x, int qn)
{
    int64_t n = rows * D;
    float *t = malloc((size_t)n * sizeof *t);
    assert_int_equal(lb_hadamard_ref(NULL, rows, D, b, x, t), LB_OK);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += fabs((double)t[i]);
    float s = (float)(2.0 * (sum / (double)n) / sqrt(7.0) + 1e-10);
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(t[i] / s);
        q = q < (float)-qn ? (float)-qn : (q > 7.0f ? 7.0f : q);
        t[i] = s * q;
    }
    assert_int_equal(lb_hadamard_ref(NULL, rows, D, b, t, t), LB_OK);
    double e = 0;
    for (int64_t i = 0; i < n; i++) e += ((double)t[i] - x[i]) * ((double)t[i] - x[i]);
    free(t);
    return sqrt(e);
}

/* The search returns the first strict argmin of e_X·e_W over the blocks that
 * divide D, and reports -1 for the others. */
static void test_search_argmin(void **state)
{
    (void)state;
    enum { N = 12, C = 5, D = 48 }; /* candidates 1, 2, 4, 8, 16 */
    float x[N * D], w[C * D];
    xi_fill_normal_f32(x, N * D, 31, 1.0);
    xi_fill_normal_f32(w, C * D, 32, 0.1);
    x[3 * D + 17] = 25.0f;
    w[2 * D + 40] = -2.0f;
    for (int mode = 0; mode < 2; mode++) {
        lb_lsq_range range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        double errors[LB_HQ_NUM_BLOCKS];
        int64_t best = 0;
        assert_int_equal(lb_hq_search_block_ref(NULL, range, LB_ROUND_HALF_EVEN, D, N, x, C, w, 0, &best, errors), LB_OK);
        int64_t expect = 0;
        double emin = 0;
        for (int k = 0; k < LB_HQ_NUM_BLOCKS; k++) {
            int64_t b = (int64_t)1 << k;
            if (D % b != 0) {
                assert_true(errors[k] == -1.0);
                continue;
            }
            double e = error_term(N, D, b, x, lb_lsq_qn(range)) * error_term(C, D, b, w, lb_lsq_qn(range));
            assert_true(fabs(errors[k] - e) <= 1e-12 * e);
            double ex;
            assert_int_equal(lb_hq_block_error_ref(NULL, range, LB_ROUND_HALF_EVEN, N, D, b, x, &ex), LB_OK);
            if (expect == 0 || errors[k] < emin) expect = b, emin = errors[k];
        }
        assert_int_equal(best, expect);
        assert_true(best > 1); /* the outliers make rotation worthwhile */
        /* max_block limits the candidates */
        int64_t capped;
        assert_int_equal(lb_hq_search_block_ref(NULL, range, LB_ROUND_HALF_EVEN, D, N, x, C, w, 2, &capped, errors), LB_OK);
        assert_true(capped <= 2);
        assert_true(errors[2] == -1.0);
        /* without W the error is e_X alone */
        int64_t bx;
        assert_int_equal(lb_hq_search_block_ref(NULL, range, LB_ROUND_HALF_EVEN, D, N, x, 0, NULL, 0, &bx, errors), LB_OK);
        for (int k = 0; k < 5; k++)
            assert_true(fabs(errors[k] - error_term(N, D, (int64_t)1 << k, x, lb_lsq_qn(range))) <= 1e-12 * errors[k]);
    }
}

/* Ties keep the smaller block: an all-zero tensor has error 0 everywhere, an
 * odd D has only block 1. */
static void test_search_ties_and_odd(void **state)
{
    (void)state;
    float z[4 * 64] = {0};
    int64_t best = 0;
    assert_int_equal(lb_hq_search_block_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 64, 4, z, 4, z, 0, &best, NULL), LB_OK);
    assert_int_equal(best, 1);
    float x[3 * 7];
    xi_fill_normal_f32(x, 21, 1, 1.0);
    double errors[LB_HQ_NUM_BLOCKS];
    assert_int_equal(lb_hq_search_block_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 7, 3, x, 0, NULL, 0, &best, errors), LB_OK);
    assert_int_equal(best, 1);
    for (int k = 1; k < LB_HQ_NUM_BLOCKS; k++) assert_true(errors[k] == -1.0);
}

/* Spec §4.1 edge case: a row constant within blocks becomes a spike of
 * c·2^{k/2}; with the init step the spike's quotient is 2^k·sqrt(7)/2, so its
 * code clips at 7 for blocks >= 8 (HQ hurts such rows). */
static void test_constant_rows_become_spikes(void **state)
{
    (void)state;
    enum { D = 64 };
    float x[2 * D];
    int8_t q[2 * D];
    for (int i = 0; i < 2 * D; i++) x[i] = 0.75f;
    for (int64_t b = 1; b <= 64; b *= 2) {
        float s;
        assert_int_equal(lb_hq_init_step_ref(NULL, 2, D, b, x, &s), LB_OK);
        assert_int_equal(lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, D, b, x, s, q, NULL, NULL), LB_OK);
        double quotient = (double)b * sqrt(7.0) / 2.0;
        int expect = quotient > 7 ? 7 : (int)nearbyint(quotient);
        for (int i = 0; i < 2 * D; i++) assert_int_equal(q[i], i % b == 0 ? expect : 0);
    }
}

/* PyTorch: the authors' search loop (fake_quantize, torch.round, product of
 * Frobenius norms) on a tensor pair with outliers; codes at the chosen block. */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy fx, fw;
    assert_int_equal(xi_npy_load("xi/hq_x.npy", &fx), 0);
    assert_int_equal(xi_npy_load("xi/hq_w.npy", &fw), 0);
    const int64_t N = fx.shape[0], D = fx.shape[1], C = fw.shape[0];
    float *x = xi_npy_f32(&fx), *w = xi_npy_f32(&fw);
    int8_t *q = malloc((size_t)(N * D));
    const char *names[2] = {"paper", "code"};
    for (int mode = 0; mode < 2; mode++) {
        lb_lsq_range range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        char name[64];
        xi_npy errs, blk, step, codes;
        snprintf(name, sizeof name, "xi/hq_errors_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &errs), 0);
        snprintf(name, sizeof name, "xi/hq_block_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &blk), 0);
        snprintf(name, sizeof name, "xi/hq_step_x_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &step), 0);
        snprintf(name, sizeof name, "xi/hq_codes_x_%s.npy", names[mode]);
        assert_int_equal(xi_npy_load(name, &codes), 0);
        double errors[LB_HQ_NUM_BLOCKS];
        int64_t best;
        assert_int_equal(lb_hq_search_block_ref(NULL, range, LB_ROUND_HALF_EVEN, D, N, x, C, w, 0, &best, errors), LB_OK);
        assert_int_equal(best, (int64_t)blk.data[0]);
        /* torch multiplies by H in float64 in another order than the butterfly: a
         * transformed entry can round to a neighbouring float, which moves the
         * error by ~1e-8 relative */
        assert_int_equal(xi_check_close("hq errors", LB_HQ_NUM_BLOCKS, errors, errs.data, 0.0, 1e-6), 0);
        float s;
        assert_int_equal(lb_hq_init_step_ref(NULL, N, D, best, x, &s), LB_OK);
        assert_true(s == (float)step.data[0]);
        assert_int_equal(lb_hq_quantize_ref(NULL, range, LB_ROUND_HALF_EVEN, N, D, best, x, s, q, NULL, NULL), LB_OK);
        for (int64_t i = 0; i < N * D; i++) assert_int_equal(q[i], (int)codes.data[i]);
        xi_npy_free(&errs), xi_npy_free(&blk), xi_npy_free(&step), xi_npy_free(&codes);
    }
    free(x), free(w), free(q);
    xi_npy_free(&fx), xi_npy_free(&fw);
}

static void test_errors(void **state)
{
    (void)state;
    float x[2 * 8] = {0}, s;
    int8_t q[16];
    int64_t best;
    assert_int_equal(lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 8, 3, x, 1.0f, q, NULL, NULL), LB_ERR_ARG);
    assert_int_equal(lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 8, 16, x, 1.0f, q, NULL, NULL), LB_ERR_ARG);
    x[9] = NAN;
    assert_int_equal(lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 8, 4, x, 1.0f, q, NULL, NULL), LB_ERR_NUMERIC);
    assert_int_equal(lb_hq_init_step_ref(NULL, 2, 8, 4, x, &s), LB_ERR_NUMERIC);
    /* the authors' search leaves best = 0 on NaN and crashes later; lowbit reports it */
    assert_int_equal(lb_hq_search_block_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 8, 2, x, 0, NULL, 0, &best, NULL), LB_ERR_NUMERIC);
    x[9] = -INFINITY;
    assert_int_equal(lb_hq_search_block_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 8, 2, x, 0, NULL, 0, &best, NULL), LB_ERR_NUMERIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block1_is_lsq),
        cmocka_unit_test(test_search_argmin),
        cmocka_unit_test(test_search_ties_and_odd),
        cmocka_unit_test(test_constant_rows_become_spikes),
        cmocka_unit_test(test_pytorch_fixture),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}

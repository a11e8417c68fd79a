/* tests/test_cpu_qlinear.c — the cpu quantized linear layers
 * (lowbit/cpu_qlinear.h) against the oracle layers, bit for bit: forward
 * codes, scales, signedness, Z and Y; backward ∇X, ∇W, ∇b and α (memcmp),
 * over levels 1, 3, 7, 8, 12 and 16 (one to three exponent pieces), SMP
 * samples 1, 2 and 3, the underflow and rounding ablations, shapes that are
 * not multiples of the vector widths or the 64-column blocks, all-zero
 * gradients, the reference GEMM and the cpu GEMM, at 1 and 2 threads.
 * Bad input (NaN gradient, bad sample count, NULL output) must give the
 * reference's status and detail.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/alloc.h"
#include "lowbit/cpu.h"
#include "lowbit/cpu_qlinear.h"
#include "lowbit/rng.h"
#include "test_util.h"

static lb_status cpu_gemm(void *user, lb_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K,
                          const int8_t *A, const int8_t *B, int32_t *C)
{
    (void)user;
    return lb_gemm_i8(ctx, ta, tb, M, N, K, A, B, C);
}

/* Normal-ish values with a few outliers; `zero`: all 0. */
static void fill(float *x, int64_t n, uint64_t seed, int zero)
{
    const uint64_t st = lb_rng_stream("test.cpu_qlinear", seed);
    for (int64_t i = 0; i < n; i++) {
        const float u = lb_rng_uniform_f32(seed, st, (uint64_t)i) - 0.5f;
        const uint32_t r = lb_rng_u32(seed, st + 1, (uint64_t)i);
        x[i] = zero ? 0.0f : u * (r % 97 == 0 ? 40.0f : 2.0f);
    }
}

typedef struct layer_case {
    int64_t N, D, C;
    int levels, samples;
    lb_luq_underflow underflow;
    lb_luq_rounding rounding;
    int zero_grad, cpu_gemm, threads;
} layer_case;

typedef struct layer_out {
    int8_t *xc, *wc;
    int32_t *z;
    float *y, *dx, *dw, *db, xs, ws, alpha;
    int sign;
} layer_out;

static void out_alloc(layer_out *o, const layer_case *c)
{
    o->xc = lb_alloc((size_t)(c->N * c->D + 1));
    o->wc = lb_alloc((size_t)(c->C * c->D + 1));
    o->z = lb_alloc((size_t)(c->N * c->C + 1) * sizeof *o->z);
    o->y = lb_alloc((size_t)(c->N * c->C + 1) * sizeof *o->y);
    o->dx = lb_alloc((size_t)(c->N * c->D + 1) * sizeof *o->dx);
    o->dw = lb_alloc((size_t)(c->C * c->D + 1) * sizeof *o->dw);
    o->db = lb_alloc((size_t)(c->C + 1) * sizeof *o->db);
    assert_non_null(o->xc), assert_non_null(o->wc), assert_non_null(o->z), assert_non_null(o->y);
    assert_non_null(o->dx), assert_non_null(o->dw), assert_non_null(o->db);
}

static void out_free(layer_out *o)
{
    lb_free(o->xc), lb_free(o->wc), lb_free(o->z), lb_free(o->y);
    lb_free(o->dx), lb_free(o->dw), lb_free(o->db);
}

static void check_same(const void *a, const void *b, size_t bytes, const char *what,
                       const layer_case *c)
{
    if (bytes && memcmp(a, b, bytes) != 0)
        fail_msg("%s differs: N=%lld D=%lld C=%lld levels=%d S=%d under=%d round=%d zero=%d "
                 "gemm=%s threads=%d",
                 what, (long long)c->N, (long long)c->D, (long long)c->C, c->levels, c->samples,
                 (int)c->underflow, (int)c->rounding, c->zero_grad, c->cpu_gemm ? "cpu" : "ref",
                 c->threads);
}

static void run_case(const layer_case *c)
{
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    if (lb_ctx_set_threads(ctx, c->threads) != LB_OK) { /* no OpenMP: 1 thread only */
        lb_ctx_free(ctx);
        return;
    }
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    cfg.luq.levels = c->levels;
    cfg.luq.underflow = c->underflow;
    cfg.luq.rounding = c->rounding;
    cfg.luq.seed = 11;
    cfg.luq.sample = 5u << 12;
    cfg.samples = c->samples;
    if (c->cpu_gemm) cfg.gemm.fn = cpu_gemm;
    const int64_t N = c->N, D = c->D, C = c->C;
    float *x = lb_alloc((size_t)(N * D + 1) * sizeof *x);
    float *w = lb_alloc((size_t)(C * D + 1) * sizeof *w);
    float *b = lb_alloc((size_t)(C + 1) * sizeof *b);
    float *dy = lb_alloc((size_t)(N * C + 1) * sizeof *dy);
    assert_non_null(x), assert_non_null(w), assert_non_null(b), assert_non_null(dy);
    fill(x, N * D, 1, 0);
    fill(w, C * D, 2, 0);
    fill(b, C, 3, 0);
    fill(dy, N * C, 4, c->zero_grad);
    layer_out o[2];
    for (int k = 0; k < 2; k++) {
        out_alloc(&o[k], c);
        o[k].sign = 0;
        lb_status st = k == 0 ? lb_qlinear_luq_forward_ref(ctx, &cfg, N, D, C, x, w, b, &o[k].sign,
                                                            o[k].xc, &o[k].xs, o[k].wc, &o[k].ws,
                                                            o[k].z, o[k].y)
                              : lb_qlinear_luq_forward_cpu(ctx, &cfg, N, D, C, x, w, b, &o[k].sign,
                                                            o[k].xc, &o[k].xs, o[k].wc, &o[k].ws,
                                                            o[k].z, o[k].y);
        assert_int_equal(st, LB_OK);
        st = (k == 0 ? lb_qlinear_luq_backward_ref : lb_qlinear_luq_backward_cpu)(
            ctx, &cfg, N, D, C, dy, o[k].xc, o[k].xs, o[k].wc, o[k].ws, o[k].dx, o[k].dw, o[k].db,
            &o[k].alpha);
        assert_int_equal(st, LB_OK);
    }
    check_same(o[0].xc, o[1].xc, (size_t)(N * D), "X codes", c);
    check_same(o[0].wc, o[1].wc, (size_t)(C * D), "W codes", c);
    check_same(&o[0].xs, &o[1].xs, sizeof o[0].xs, "x scale", c);
    check_same(&o[0].ws, &o[1].ws, sizeof o[0].ws, "w scale", c);
    check_same(&o[0].sign, &o[1].sign, sizeof o[0].sign, "signedness", c);
    check_same(o[0].z, o[1].z, (size_t)(N * C) * sizeof *o[0].z, "Z", c);
    check_same(o[0].y, o[1].y, (size_t)(N * C) * sizeof *o[0].y, "Y", c);
    check_same(o[0].dx, o[1].dx, (size_t)(N * D) * sizeof *o[0].dx, "dX", c);
    check_same(o[0].dw, o[1].dw, (size_t)(C * D) * sizeof *o[0].dw, "dW", c);
    check_same(o[0].db, o[1].db, (size_t)C * sizeof *o[0].db, "db", c);
    check_same(&o[0].alpha, &o[1].alpha, sizeof o[0].alpha, "alpha", c);
    for (int k = 0; k < 2; k++) out_free(&o[k]);
    lb_free(x), lb_free(w), lb_free(b), lb_free(dy);
    lb_ctx_free(ctx);
}

static void test_luq_matches_ref(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {{1, 1, 1},   {7, 5, 3},     {33, 17, 65},
                                        {64, 64, 64}, {200, 48, 130}, {300, 96, 257}};
    static const int levels[] = {1, 3, 7, 8, 12, 16};
    int n = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++)
            for (int threads = 1; threads <= 2; threads++) {
                layer_case c = {shapes[s][0], shapes[s][1], shapes[s][2], levels[l],
                                1 + (int)((s + l) % 3),
                                (lb_luq_underflow)((s + l + (size_t)threads) % 3),
                                (lb_luq_rounding)((s + (size_t)threads) % 2),
                                0, (int)((l + (size_t)threads) % 2), threads};
                run_case(&c);
                n++;
            }
    /* the defaults (L = 8, one sample) on both GEMMs; all-zero gradients */
    for (int g = 0; g < 2; g++) {
        layer_case c = {257, 64, 192, 8, 1, LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_ROUND_STOCHASTIC,
                        0, g, 2};
        run_case(&c);
        c.zero_grad = 1;
        run_case(&c);
        c.levels = 3;
        run_case(&c);
        n += 3;
    }
    assert_true(n > 70);
}

/* Bad input: the reference's status and detail. */
static void test_luq_errors_match_ref(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    enum { N = 9, D = 5, C = 6 };
    float dy[N * C], dx[N * D], dw[C * D], db[C];
    int8_t xc[N * D], wc[C * D];
    memset(xc, 1, sizeof xc), memset(wc, -1, sizeof wc);
    fill(dy, N * C, 9, 0);
    dy[17] = NAN;
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    char detail[2][256];
    lb_status st[2];
    for (int bad = 0; bad < 3; bad++) {
        cfg.samples = bad == 1 ? 0 : 1;
        for (int k = 0; k < 2; k++) {
            lb_ctx_clear_error(ctx);
            st[k] = (k == 0 ? lb_qlinear_luq_backward_ref : lb_qlinear_luq_backward_cpu)(
                ctx, &cfg, N, D, C, dy, xc, 0.5f, wc, 0.25f, bad == 2 ? NULL : dx, dw, db, NULL);
            snprintf(detail[k], sizeof detail[k], "%s", lb_ctx_error(ctx));
        }
        assert_int_not_equal(st[0], LB_OK);
        assert_int_equal(st[0], st[1]);
        assert_string_equal(detail[0], detail[1]);
    }
    float x[N * D], w[C * D], y[N * C], xs, ws;
    fill(x, N * D, 1, 0), fill(w, C * D, 2, 0);
    x[3] = INFINITY;
    for (int k = 0; k < 2; k++) {
        lb_ctx_clear_error(ctx);
        st[k] = (k == 0 ? lb_qlinear_luq_forward_ref : lb_qlinear_luq_forward_cpu)(
            ctx, &cfg, N, D, C, x, w, NULL, NULL, xc, &xs, wc, &ws, NULL, y);
        snprintf(detail[k], sizeof detail[k], "%s", lb_ctx_error(ctx));
    }
    assert_int_equal(st[0], LB_ERR_NUMERIC);
    assert_int_equal(st[0], st[1]);
    assert_string_equal(detail[0], detail[1]);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luq_matches_ref),
        cmocka_unit_test(test_luq_errors_match_ref),
    };
    return LB_RUN_TESTS(tests);
}

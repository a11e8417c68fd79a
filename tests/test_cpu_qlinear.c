/* tests/test_cpu_qlinear.c — the cpu quantized linear layers
 * (lowbit/cpu_qlinear.h) against the oracle layers, bit for bit.
 * HQ: Y, Z, the saved codes, quotients, steps and block, ∇X, ∇W, ∇b, the
 * step gradients and every trace buffer, over the paper and code configs,
 * LSS bernoulli / nonzero / all with default and small budgets (rows with
 * p < 1), blocks 1 to 64 and the block search, learned steps, shapes not
 * multiples of the vector
 * widths, the reference GEMM and the cpu GEMM, 1 and 2 threads.
 * LUQ: forward
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
#include "lowbit/ref/hadamard_quantizer.h"
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

/* ------------------------------------------------------------------- HQ */

typedef struct hq_case {
    int64_t N, D, C, block;
    int code_config, lss, budget_small, learned, cpu_gemm, threads, zero_grad;
    int spiky; /* outlier columns in X (every 8th) and W (every 4th), for the block search */
} hq_case;

typedef struct hq_out {
    lb_hq_state *st;
    float *y, *dx, *dw, *db, *gxh, *gwh, gsx, gsw;
    int32_t *z;
    int8_t *hi, *lo;
    double *pw, *px;
    uint8_t *mw, *mx;
    lb_hq_backward_trace tr;
} hq_out;

static void hq_check(const void *a, const void *b, size_t bytes, const char *what, const hq_case *c)
{
    if (bytes && memcmp(a, b, bytes) != 0)
        fail_msg("hq %s differs: N=%lld D=%lld C=%lld block=%lld code=%d lss=%d small=%d "
                 "learned=%d gemm=%s threads=%d zero=%d",
                 what, (long long)c->N, (long long)c->D, (long long)c->C, (long long)c->block,
                 c->code_config, c->lss, c->budget_small, c->learned, c->cpu_gemm ? "cpu" : "ref",
                 c->threads, c->zero_grad);
}

static void hq_run(const hq_case *c)
{
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    if (lb_ctx_set_threads(ctx, c->threads) != LB_OK) {
        lb_ctx_free(ctx);
        return;
    }
    const int64_t N = c->N, D = c->D, C = c->C;
    lb_hq_config cfg;
    if (c->code_config) lb_hq_config_code(&cfg);
    else lb_hq_config_default(&cfg);
    cfg.sampling = (lb_lss_mode)c->lss;
    cfg.block = c->block;
    cfg.seed = 3;
    cfg.layer = 2;
    if (c->budget_small) cfg.lss_budget = (double)N / 3.0;
    if (c->cpu_gemm) cfg.gemm.fn = cpu_gemm;
    float *x = lb_alloc((size_t)(N * D) * 4), *w = lb_alloc((size_t)(C * D) * 4);
    float *b = lb_alloc((size_t)C * 4), *dy = lb_alloc((size_t)(N * C) * 4);
    fill(x, N * D, 21, 0), fill(w, C * D, 22, 0), fill(b, C, 23, 0), fill(dy, N * C, 24, c->zero_grad);
    if (c->spiky) { /* uniform in [-½, ½), scaled on the outlier columns */
        const uint64_t sx = lb_rng_stream("srch", 1), sw = lb_rng_stream("srch", 2);
        for (int64_t i = 0; i < N * D; i++)
            x[i] = (lb_rng_uniform_f32(1, sx, (uint64_t)i) - 0.5f) * ((i % D) % 8 == 0 ? 20.0f : 1.0f);
        for (int64_t i = 0; i < C * D; i++)
            w[i] = (lb_rng_uniform_f32(2, sw, (uint64_t)i) - 0.5f) * ((i % D) % 4 == 0 ? 5.0f : 1.0f);
    }
    hq_out o[2];
    for (int k = 0; k < 2; k++) {
        hq_out *h = &o[k];
        assert_int_equal(lb_hq_state_create(ctx, &h->st), LB_OK);
        if (c->learned) {
            h->st->initialized = 1, h->st->step_x = -0.11f, h->st->step_w = 0.05f;
        }
        h->y = lb_alloc((size_t)(N * C) * 4), h->z = lb_alloc((size_t)(N * C) * 4);
        h->dx = lb_alloc((size_t)(N * D) * 4), h->dw = lb_alloc((size_t)(C * D) * 4);
        h->db = lb_alloc((size_t)C * 4);
        h->gxh = lb_alloc((size_t)(N * D) * 4), h->gwh = lb_alloc((size_t)(C * D) * 4);
        h->hi = lb_alloc((size_t)(N * C)), h->lo = lb_alloc((size_t)(N * C));
        h->pw = lb_alloc((size_t)(2 * N) * 8), h->px = lb_alloc((size_t)(2 * N) * 8);
        h->mw = lb_alloc((size_t)(2 * N)), h->mx = lb_alloc((size_t)(2 * N));
        memset(&h->tr, 0, sizeof h->tr);
        h->tr.hi = h->hi, h->tr.lo = h->lo, h->tr.p_weight = h->pw, h->tr.p_input = h->px;
        h->tr.mask_weight = h->mw, h->tr.mask_input = h->mx;
        h->tr.grad_x_hadamard = h->gxh, h->tr.grad_w_hadamard = h->gwh;
        /* two steps: the second forward reuses the block and the steps */
        for (uint64_t stp = 0; stp < 2; stp++) {
            lb_status st = (k == 0 ? lb_qlinear_hq_forward_ref : lb_qlinear_hq_forward_cpu)(
                ctx, &cfg, h->st, N, D, C, x, w, b, h->y, h->z);
            assert_int_equal(st, LB_OK);
            st = (k == 0 ? lb_qlinear_hq_backward_ref : lb_qlinear_hq_backward_cpu)(
                ctx, &cfg, h->st, 7 + stp, dy, h->dx, h->dw, h->db, &h->gsx, &h->gsw, &h->tr);
            assert_int_equal(st, LB_OK);
        }
    }
    const size_t nd = (size_t)(N * D), cd = (size_t)(C * D), nc = (size_t)(N * C);
    hq_check(o[0].y, o[1].y, nc * 4, "Y", c);
    hq_check(o[0].z, o[1].z, nc * 4, "Z", c);
    hq_check(o[0].st->x_codes, o[1].st->x_codes, nd, "X codes", c);
    hq_check(o[0].st->w_codes, o[1].st->w_codes, cd, "W codes", c);
    hq_check(o[0].st->x_quotient, o[1].st->x_quotient, nd * 4, "X quotients", c);
    hq_check(o[0].st->w_quotient, o[1].st->w_quotient, cd * 4, "W quotients", c);
    hq_check(&o[0].st->block, &o[1].st->block, sizeof o[0].st->block, "block", c);
    hq_check(&o[0].st->used_step_x, &o[1].st->used_step_x, 4, "step x", c);
    hq_check(&o[0].st->used_step_w, &o[1].st->used_step_w, 4, "step w", c);
    hq_check(o[0].dx, o[1].dx, nd * 4, "dX", c);
    hq_check(o[0].dw, o[1].dw, cd * 4, "dW", c);
    hq_check(o[0].db, o[1].db, (size_t)C * 4, "db", c);
    hq_check(&o[0].gsx, &o[1].gsx, 4, "grad step x", c);
    hq_check(&o[0].gsw, &o[1].gsw, 4, "grad step w", c);
    hq_check(o[0].gxh, o[1].gxh, nd * 4, "G_X (Hadamard domain)", c);
    hq_check(o[0].gwh, o[1].gwh, cd * 4, "G_W (Hadamard domain)", c);
    hq_check(o[0].hi, o[1].hi, nc, "hi", c);
    hq_check(o[0].lo, o[1].lo, nc, "lo", c);
    hq_check(o[0].pw, o[1].pw, (size_t)(2 * N) * 8, "p_weight", c);
    hq_check(o[0].px, o[1].px, (size_t)(2 * N) * 8, "p_input", c);
    hq_check(o[0].mw, o[1].mw, (size_t)(2 * N), "mask_weight", c);
    hq_check(o[0].mx, o[1].mx, (size_t)(2 * N), "mask_input", c);
    hq_check(&o[0].tr.fine_scale, &o[1].tr.fine_scale, 4, "fine scale", c);
    if (c->spiky) {
        /* the searched block must depend on both errors, so that a search
         * that weighs only one of them would pick another block */
        int64_t bx = 0, bw = 0;
        assert_int_equal(lb_hq_search_block_ref(NULL, cfg.range, cfg.rounding, D, N, x, 0, NULL,
                                                0, &bx, NULL),
                         LB_OK);
        assert_int_equal(lb_hq_search_block_ref(NULL, cfg.range, cfg.rounding, D, C, w, 0, NULL,
                                                0, &bw, NULL),
                         LB_OK);
        if (o[0].st->block == bx || o[0].st->block == bw)
            fail_msg("hq search case does not discriminate: block %lld, x alone %lld, w alone %lld",
                     (long long)o[0].st->block, (long long)bx, (long long)bw);
    }
    for (int k = 0; k < 2; k++) {
        hq_out *h = &o[k];
        lb_hq_state_free(h->st);
        lb_free(h->y), lb_free(h->z), lb_free(h->dx), lb_free(h->dw), lb_free(h->db);
        lb_free(h->gxh), lb_free(h->gwh), lb_free(h->hi), lb_free(h->lo), lb_free(h->pw);
        lb_free(h->px), lb_free(h->mw), lb_free(h->mx);
    }
    lb_free(x), lb_free(w), lb_free(b), lb_free(dy);
    lb_ctx_free(ctx);
}

static void test_hq_matches_ref(void **state)
{
    (void)state;
    static const int64_t shapes[][4] = {{1, 1, 1, 1},     {5, 4, 3, 2},      {33, 16, 17, 8},
                                        {64, 64, 64, 16},  {130, 96, 40, 32}, {300, 64, 130, 64}};
    int n = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 8; v++) {
            hq_case c = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
                         v & 1,                       /* paper / code config */
                         (int)((s + (size_t)v) % 3),  /* bernoulli, nonzero, all */
                         (v >> 1) & 1,                /* budget N/3: rows with p < 1 */
                         (v >> 2) & 1,                /* learned steps */
                         (int)((s + (size_t)v) & 1),  /* ref / cpu GEMM */
                         1 + (int)((s + (size_t)(v >> 1)) & 1), 0, 0};
            hq_run(&c);
            n++;
        }
    hq_case z = {64, 32, 48, 8, 0, 0, 0, 0, 1, 2, 1, 0}; /* all-zero ∇Y */
    hq_run(&z);
    /* block 0: the block search of the first forward (errors of every
     * candidate block, first minimum), paper and code configs */
    static const int64_t searched[][3] = {{33, 48, 17}, {130, 256, 40}, {7, 96, 5}};
    for (size_t s = 0; s < sizeof searched / sizeof searched[0]; s++) {
        hq_case c = {searched[s][0], searched[s][1], searched[s][2], 0, (int)(s & 1), 0, 0, 0, 1,
                     1 + (int)(s & 1), 0, 0};
        hq_run(&c);
        n++;
    }
    hq_case sp = {96, 64, 40, 0, 0, 0, 0, 0, 1, 2, 0, 1}; /* a search that weighs both errors */
    hq_run(&sp);
    assert_true(n == 51);
}

/* Bad input: the reference's status and detail (HQ: a NaN input and a NaN
 * gradient). */
static void test_hq_errors_match_ref(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    enum { N = 6, D = 8, C = 5 };
    float x[N * D], w[C * D], y[N * C], dy[N * C], dx[N * D], dw[C * D];
    fill(x, N * D, 1, 0), fill(w, C * D, 2, 0), fill(dy, N * C, 3, 0);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    cfg.block = 4;
    char detail[2][256];
    lb_status st[2];
    lb_hq_state *hs[2];
    for (int bad = 0; bad < 2; bad++) {
        for (int k = 0; k < 2; k++) {
            assert_int_equal(lb_hq_state_create(ctx, &hs[k]), LB_OK);
            lb_ctx_clear_error(ctx);
            if (bad == 0) x[9] = NAN;
            st[k] = (k == 0 ? lb_qlinear_hq_forward_ref : lb_qlinear_hq_forward_cpu)(
                ctx, &cfg, hs[k], N, D, C, x, w, NULL, y, NULL);
            x[9] = 0.5f;
            if (bad == 1) {
                assert_int_equal(st[k], LB_OK);
                dy[4] = INFINITY;
                st[k] = (k == 0 ? lb_qlinear_hq_backward_ref : lb_qlinear_hq_backward_cpu)(
                    ctx, &cfg, hs[k], 0, dy, dx, dw, NULL, NULL, NULL, NULL);
                dy[4] = 0.5f;
            }
            snprintf(detail[k], sizeof detail[k], "%s", lb_ctx_error(ctx));
            lb_hq_state_free(hs[k]);
        }
        assert_int_equal(st[0], LB_ERR_NUMERIC);
        assert_int_equal(st[0], st[1]);
        assert_string_equal(detail[0], detail[1]);
    }
    lb_ctx_free(ctx);
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
        cmocka_unit_test(test_hq_matches_ref),
        cmocka_unit_test(test_hq_errors_match_ref),
        cmocka_unit_test(test_luq_matches_ref),
        cmocka_unit_test(test_luq_errors_match_ref),
    };
    return LB_RUN_TESTS(tests);
}

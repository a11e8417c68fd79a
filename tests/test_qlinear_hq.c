/* tests/test_qlinear_hq.c — the HQ + BS + LSS quantized linear layer
 * (ref/qlinear_hq.c): spec int4_training.md A.2–A.6 —
 *  - forward: Z is exactly the integer product of the saved codes, Y follows
 *    the documented float formula bit for bit and a double computation within
 *    float rounding; block search and step init on the first call; |s| rule;
 *  - backward without sampling on an on-grid ∇Y equals a double reference of
 *    A.3 built from the same codes, finite differences of the straight-through
 *    surrogate, and PyTorch autograd (fixture);
 *  - with random ∇Y the GEMM results equal the single int8 GEMM on 14·hi + lo;
 *    "non-zero" equals "all"; Bernoulli LSS is unbiased (5 standard errors from
 *    the exact per-element variance);
 *  - edge cases: zeros, a huge outlier, NaN/Inf, misuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/int_gemm.h"
#include "test_util.h"
#include "xi_test.h"

enum { N = 8, D = 32, C = 6 };

typedef struct layer_data {
    float x[N * D], w[C * D], b[C], dy[N * C];
} layer_data;

static void make_data(layer_data *t, uint64_t seed)
{
    xi_fill_normal_f32(t->x, N * D, seed, 1.0);
    xi_fill_normal_f32(t->w, C * D, seed + 1, 0.2);
    xi_fill_normal_f32(t->b, C, seed + 2, 0.1);
    t->x[2 * D + 9] = 9.0f; /* an activation outlier */
    /* ∇Y on the BS grid: n/128 with max |n| = 98, so BS (clean) is exact */
    for (int i = 0; i < N * C; i++)
        t->dy[i] = (float)((int)(lb_rng_u32(seed, 5, (uint64_t)i) % 195) - 97) * 0x1p-7f;
    t->dy[5 * C + 1] = -98 * 0x1p-7f;
}

static lb_hq_state *new_state(void)
{
    lb_hq_state *s = NULL;
    assert_int_equal(lb_hq_state_create(NULL, &s), LB_OK);
    return s;
}

/* Forward: codes = HQ codes, Z = X̂Ŵ^T exactly (double check of the oracle),
 * Y = (s_X s_W)·Z + b in float bit for bit and within 2 float roundings of
 * the double value. */
static void test_forward_exact(void **state)
{
    (void)state;
    static layer_data t;
    make_data(&t, 10);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    cfg.block = 8;
    lb_hq_state *st = new_state();
    float y[N * C];
    int32_t z[N * C];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, z), LB_OK);
    assert_int_equal(st->block, 8);
    float sx, sw;
    assert_int_equal(lb_hq_init_step_ref(NULL, N, D, 8, t.x, &sx), LB_OK);
    assert_int_equal(lb_hq_init_step_ref(NULL, C, D, 8, t.w, &sw), LB_OK);
    assert_true(st->step_x == sx && st->step_w == sw && st->initialized);
    int8_t qx[N * D], qw[C * D];
    float vx[N * D];
    assert_int_equal(lb_hq_quantize_ref(NULL, cfg.range, cfg.rounding, N, D, 8, t.x, sx, qx, vx, NULL), LB_OK);
    assert_int_equal(lb_hq_quantize_ref(NULL, cfg.range, cfg.rounding, C, D, 8, t.w, sw, qw, NULL, NULL), LB_OK);
    assert_memory_equal(st->x_codes, qx, sizeof qx);
    assert_memory_equal(st->w_codes, qw, sizeof qw);
    assert_memory_equal(st->x_quotient, vx, sizeof vx);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            double zz = 0;
            for (int d = 0; d < D; d++) zz += (double)qx[i * D + d] * qw[c * D + d];
            assert_true((double)z[i * C + c] == zz);
            assert_true(y[i * C + c] == (sx * sw) * (float)z[i * C + c] + t.b[c]);
            double yd = (double)sx * sw * zz + t.b[c];
            assert_true(fabs(y[i * C + c] - yd) <= 3 * 0x1p-24 * (fabs(yd) + fabs((double)sx * sw * zz)));
        }
    /* no bias, no z */
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, NULL, y, NULL), LB_OK);
    assert_true(y[0] == (sx * sw) * (float)z[0]);
    lb_hq_state_free(st);
}

/* First forward with block 0 runs the search over X and W; later forwards keep
 * the block and the learned steps, taking |s|. */
static void test_forward_search_and_steps(void **state)
{
    (void)state;
    static layer_data t;
    make_data(&t, 20);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    lb_hq_state *st = new_state();
    float y[N * C], y2[N * C];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    int64_t best;
    assert_int_equal(lb_hq_search_block_ref(NULL, cfg.range, cfg.rounding, D, N, t.x, C, t.w, 0, &best, NULL), LB_OK);
    assert_int_equal(st->block, best);
    /* negative learned steps are used as |s| and written back */
    float sx = st->step_x;
    st->step_x = -sx;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y2, NULL), LB_OK);
    assert_memory_equal(y, y2, sizeof y);
    assert_true(st->step_x == sx && st->used_step_x == sx);
    /* new data: block and steps stay (no re-init) */
    static layer_data u;
    make_data(&u, 21);
    float sw = st->step_w;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, u.x, u.w, u.b, y2, NULL), LB_OK);
    assert_true(st->block == best && st->step_x == sx && st->step_w == sw);
    lb_hq_state_free(st);
}

/* Double-precision reference of spec A.3 from the saved codes, for a ∇Y
 * given in double (dq: the dequantized BS value or an on-grid ∇Y). */
typedef struct grads {
    double dx[N * D], dw[C * D], db[C], dsx, dsw;
} grads;

static void reference_backward(const lb_hq_state *st, const float *dy, const double *dq, lb_lsq_range range, grads *g)
{
    const double sx = st->used_step_x, sw = st->used_step_w;
    const int qn = lb_lsq_qn(range);
    double sum_x = 0, sum_w = 0;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) {
            double gx = 0;
            for (int c = 0; c < C; c++) gx += dq[i * C + c] * sw * st->w_codes[c * D + d];
            double v = st->x_quotient[i * D + d];
            int inside = v >= -qn && v <= 7;
            sum_x += gx * (v < -qn ? -qn : (v > 7 ? 7 : nearbyint(v) - v));
            g->dx[i * D + d] = inside ? gx : 0.0;
        }
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) {
            double gw = 0;
            for (int i = 0; i < N; i++) gw += dq[i * C + c] * sx * st->x_codes[i * D + d];
            double v = st->w_quotient[c * D + d];
            int inside = v >= -qn && v <= 7;
            sum_w += gw * (v < -qn ? -qn : (v > 7 ? 7 : nearbyint(v) - v));
            g->dw[c * D + d] = inside ? gw : 0.0;
        }
    g->dsx = sum_x / sqrt(N * D * 7.0);
    g->dsw = sum_w / sqrt(C * D * 7.0);
    assert_int_equal(lb_hadamard_f64_ref(NULL, N, D, st->block, g->dx, g->dx), LB_OK);
    assert_int_equal(lb_hadamard_f64_ref(NULL, C, D, st->block, g->dw, g->dw), LB_OK);
    for (int c = 0; c < C; c++) {
        g->db[c] = 0;
        for (int i = 0; i < N; i++) g->db[c] += dy[i * C + c];
    }
}

typedef struct outs {
    float dx[N * D], dw[C * D], db[C], dsx, dsw;
    int8_t hi[N * C], lo[N * C];
    double pw[2 * N], px[2 * N];
    uint8_t mw[2 * N], mx[2 * N];
    float gxh[N * D], gwh[C * D];
    lb_hq_backward_trace tr;
} outs;

static void run_backward(const lb_hq_config *cfg, const lb_hq_state *st, uint64_t step, const float *dy, outs *o)
{
    memset(&o->tr, 0, sizeof o->tr);
    o->tr.hi = o->hi, o->tr.lo = o->lo, o->tr.p_weight = o->pw, o->tr.p_input = o->px;
    o->tr.mask_weight = o->mw, o->tr.mask_input = o->mx;
    o->tr.grad_x_hadamard = o->gxh, o->tr.grad_w_hadamard = o->gwh;
    assert_int_equal(lb_qlinear_hq_backward_ref(NULL, cfg, st, step, dy, o->dx, o->dw, o->db, &o->dsx, &o->dsw, &o->tr),
                     LB_OK);
}

static void compare_grads(const outs *o, const grads *g, double rtol)
{
    /* float32 results of double sums: tolerances relative to the largest entry */
    double mx = 0, mw = 0;
    for (int i = 0; i < N * D; i++) mx = fmax(mx, fabs(g->dx[i]));
    for (int i = 0; i < C * D; i++) mw = fmax(mw, fabs(g->dw[i]));
    assert_int_equal(xi_check_close_f32("dX", N * D, o->dx, g->dx, rtol * mx, rtol), 0);
    assert_int_equal(xi_check_close_f32("dW", C * D, o->dw, g->dw, rtol * mw, rtol), 0);
    assert_int_equal(xi_check_close_f32("db", C, o->db, g->db, 1e-6, 1e-6), 0);
    assert_true(fabs(o->dsx - g->dsx) <= rtol * (fabs(g->dsx) + 1e-3 * mx));
    assert_true(fabs(o->dsw - g->dsw) <= rtol * (fabs(g->dsw) + 1e-3 * mw));
}

/* No sampling (LB_LSS_ALL) and an on-grid ∇Y: BS is exact, the backward is
 * the straight-through gradient of A.3 up to float rounding, for both range
 * modes and several blocks. */
static void test_backward_deterministic(void **state)
{
    (void)state;
    static layer_data t;
    static outs o;
    static grads g;
    make_data(&t, 30);
    const int64_t blocks[3] = {1, 8, 32};
    for (int mode = 0; mode < 2; mode++)
        for (int bi = 0; bi < 3; bi++) {
            lb_hq_config cfg;
            lb_hq_config_default(&cfg);
            cfg.block = blocks[bi];
            cfg.sampling = LB_LSS_ALL;
            cfg.range = mode ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
            lb_hq_state *st = new_state();
            float y[N * C];
            assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
            run_backward(&cfg, st, 0, t.dy, &o);
            assert_true(o.tr.fine_scale == 0x1p-7f);
            double dq[N * C];
            for (int i = 0; i < N * C; i++) {
                assert_int_equal(14 * o.hi[i] + o.lo[i], (int)(t.dy[i] * 128.0f));
                dq[i] = t.dy[i];
            }
            for (int i = 0; i < 2 * N; i++) assert_true(o.pw[i] == 1.0 && o.mw[i] == 1 && o.mx[i] == 1);
            reference_backward(st, t.dy, dq, cfg.range, &g);
            compare_grads(&o, &g, 1e-5);
            lb_hq_state_free(st);
        }
}

/* Straight-through surrogate of the layer in double:
 * F = Σ ∇Y ⊙ (X̃ W̃^T + b), X̃ = s_X (clamp((XH)/s_X) + c_X), c frozen at the base
 * point (c = q − clamp(v)); likewise W̃. Its exact gradient is what LSQ's STE
 * computes (the step gradients without LSQ's scale g). */
typedef struct surrogate_point {
    double x[N * D], w[C * D], sx, sw;
} surrogate_point;

static double surrogate(const surrogate_point *p, const double *cx, const double *cw, const float *dy,
                        const float *b, int64_t block, int qn)
{
    static double a[N * D], bw[C * D];
    assert_int_equal(lb_hadamard_f64_ref(NULL, N, D, block, p->x, a), LB_OK);
    assert_int_equal(lb_hadamard_f64_ref(NULL, C, D, block, p->w, bw), LB_OK);
    for (int i = 0; i < N * D; i++) {
        double v = a[i] / p->sx;
        v = v < -qn ? -qn : (v > 7 ? 7 : v);
        a[i] = p->sx * (v + cx[i]);
    }
    for (int i = 0; i < C * D; i++) {
        double v = bw[i] / p->sw;
        v = v < -qn ? -qn : (v > 7 ? 7 : v);
        bw[i] = p->sw * (v + cw[i]);
    }
    double f = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            double yv = b[c];
            for (int d = 0; d < D; d++) yv += a[i * D + d] * bw[c * D + d];
            f += dy[i * C + c] * yv;
        }
    return f;
}

static void test_finite_differences(void **state)
{
    (void)state;
    static layer_data t;
    static outs o;
    static surrogate_point p;
    static double cx[N * D], cw[C * D], a[N * D], bw[C * D];
    make_data(&t, 40);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    cfg.block = 16;
    cfg.sampling = LB_LSS_ALL;
    lb_hq_state *st = new_state();
    float y[N * C];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    run_backward(&cfg, st, 3, t.dy, &o);
    for (int i = 0; i < N * D; i++) p.x[i] = t.x[i];
    for (int i = 0; i < C * D; i++) p.w[i] = t.w[i];
    p.sx = st->used_step_x, p.sw = st->used_step_w;
    const int qn = 7;
    assert_int_equal(lb_hadamard_f64_ref(NULL, N, D, 16, p.x, a), LB_OK);
    assert_int_equal(lb_hadamard_f64_ref(NULL, C, D, 16, p.w, bw), LB_OK);
    for (int i = 0; i < N * D; i++) {
        double v = a[i] / p.sx;
        cx[i] = st->x_codes[i] - (v < -qn ? -qn : (v > 7 ? 7 : v));
    }
    for (int i = 0; i < C * D; i++) {
        double v = bw[i] / p.sw;
        cw[i] = st->w_codes[i] - (v < -qn ? -qn : (v > 7 ? 7 : v));
    }
    const double h = 1e-6;
    double maxg = 0;
    for (int i = 0; i < N * D; i++) maxg = fmax(maxg, fabs(o.dx[i]));
    for (int i = 0; i < N * D; i += 5) {
        double keep = p.x[i];
        p.x[i] = keep + h;
        double fp = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
        p.x[i] = keep - h;
        double fm = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
        p.x[i] = keep;
        assert_true(fabs((fp - fm) / (2 * h) - o.dx[i]) <= 1e-4 * maxg);
    }
    maxg = 0;
    for (int i = 0; i < C * D; i++) maxg = fmax(maxg, fabs(o.dw[i]));
    for (int i = 0; i < C * D; i += 3) {
        double keep = p.w[i];
        p.w[i] = keep + h;
        double fp = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
        p.w[i] = keep - h;
        double fm = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
        p.w[i] = keep;
        assert_true(fabs((fp - fm) / (2 * h) - o.dw[i]) <= 1e-4 * maxg);
    }
    double base = p.sx, hs = 1e-7 * base;
    p.sx = base + hs;
    double fp = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
    p.sx = base - hs;
    double fm = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
    p.sx = base;
    double fd = (fp - fm) / (2 * hs), an = o.dsx * sqrt(N * D * 7.0);
    assert_true(fabs(fd - an) <= 1e-4 * (fabs(fd) + 1));
    base = p.sw, hs = 1e-7 * base;
    p.sw = base + hs;
    fp = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
    p.sw = base - hs;
    fm = surrogate(&p, cx, cw, t.dy, t.b, 16, qn);
    p.sw = base;
    fd = (fp - fm) / (2 * hs), an = o.dsw * sqrt(C * D * 7.0);
    assert_true(fabs(fd - an) <= 1e-4 * (fabs(fd) + 1));
    lb_hq_state_free(st);
}

/* PyTorch: forward values and the float64 autograd backward (on-grid ∇Y,
 * block 8, paper range, LSS off). */
static void test_pytorch_fixture(void **state)
{
    (void)state;
    xi_npy fx, fw, fb, fdy, fz, fy, fsx, fsw, gdx, gdw, gdb, gsx, gsw;
    assert_int_equal(xi_npy_load("xi/ql_x.npy", &fx), 0);
    assert_int_equal(xi_npy_load("xi/ql_w.npy", &fw), 0);
    assert_int_equal(xi_npy_load("xi/ql_b.npy", &fb), 0);
    assert_int_equal(xi_npy_load("xi/ql_dy.npy", &fdy), 0);
    assert_int_equal(xi_npy_load("xi/ql_z.npy", &fz), 0);
    assert_int_equal(xi_npy_load("xi/ql_y.npy", &fy), 0);
    assert_int_equal(xi_npy_load("xi/ql_step_x.npy", &fsx), 0);
    assert_int_equal(xi_npy_load("xi/ql_step_w.npy", &fsw), 0);
    assert_int_equal(xi_npy_load("xi/ql_dx.npy", &gdx), 0);
    assert_int_equal(xi_npy_load("xi/ql_dw.npy", &gdw), 0);
    assert_int_equal(xi_npy_load("xi/ql_db.npy", &gdb), 0);
    assert_int_equal(xi_npy_load("xi/ql_dsx.npy", &gsx), 0);
    assert_int_equal(xi_npy_load("xi/ql_dsw.npy", &gsw), 0);
    assert_true(fx.shape[0] == N && fx.shape[1] == D && fw.shape[0] == C);
    float *x = xi_npy_f32(&fx), *w = xi_npy_f32(&fw), *b = xi_npy_f32(&fb), *dy = xi_npy_f32(&fdy);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    cfg.block = 8;
    cfg.sampling = LB_LSS_ALL;
    lb_hq_state *st = new_state();
    float y[N * C];
    int32_t z[N * C];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, x, w, b, y, z), LB_OK);
    assert_true(st->step_x == (float)fsx.data[0] && st->step_w == (float)fsw.data[0]);
    for (int i = 0; i < N * C; i++) assert_int_equal(z[i], (int32_t)fz.data[i]);
    assert_int_equal(xi_check_close_f32("Y", N * C, y, fy.data, 1e-6, 1e-6), 0);
    static outs o;
    run_backward(&cfg, st, 0, dy, &o);
    double mx = 0, mw = 0;
    for (int i = 0; i < N * D; i++) mx = fmax(mx, fabs(gdx.data[i]));
    for (int i = 0; i < C * D; i++) mw = fmax(mw, fabs(gdw.data[i]));
    assert_int_equal(xi_check_close_f32("dX", N * D, o.dx, gdx.data, 1e-5 * mx, 1e-5), 0);
    assert_int_equal(xi_check_close_f32("dW", C * D, o.dw, gdw.data, 1e-5 * mw, 1e-5), 0);
    assert_int_equal(xi_check_close_f32("db", C, o.db, gdb.data, 1e-6, 1e-6), 0);
    assert_true(fabs(o.dsx - gsx.data[0]) <= 1e-5 * fabs(gsx.data[0]) + 1e-6);
    assert_true(fabs(o.dsw - gsw.data[0]) <= 1e-5 * fabs(gsw.data[0]) + 1e-6);
    lb_hq_state_free(st);
    free(x), free(w), free(b), free(dy);
    xi_npy *all[] = {&fx, &fw, &fb, &fdy, &fz, &fy, &fsx, &fsw, &gdx, &gdw, &gdb, &gsx, &gsw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xi_npy_free(all[i]);
}

/* Random (off-grid) ∇Y without sampling: G_W and G_X (Hadamard domain) equal,
 * bit for bit, the single int8 GEMM on n = 14·hi + lo (spec A.4 CPU note);
 * the "non-zero" rule gives the same bits; the code preset stays in range. */
static void test_backward_int8_equivalence(void **state)
{
    (void)state;
    static layer_data t;
    static outs o, o2;
    make_data(&t, 50);
    xi_fill_normal_f32(t.dy, N * C, 51, 1e-3);
    for (int preset = 0; preset < 2; preset++) {
        lb_hq_config cfg;
        if (preset) lb_hq_config_code(&cfg);
        else lb_hq_config_default(&cfg);
        cfg.sampling = LB_LSS_ALL;
        cfg.seed = 1234;
        lb_hq_state *st = new_state();
        float y[N * C];
        assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
        run_backward(&cfg, st, 7, t.dy, &o);
        int8_t nn[N * C];
        for (int i = 0; i < N * C; i++) {
            int v = 14 * o.hi[i] + o.lo[i];
            assert_true(v >= -105 && v <= 105);
            nn[i] = (int8_t)v;
        }
        int32_t zw[C * D], zx[N * D];
        assert_int_equal(lb_gemm_i8_ref(NULL, 1, 0, C, D, N, nn, st->x_codes, zw), LB_OK);
        assert_int_equal(lb_gemm_i8_ref(NULL, 0, 0, N, D, C, nn, st->w_codes, zx), LB_OK);
        const double sxs = (double)st->used_step_x * o.tr.fine_scale, sws = (double)st->used_step_w * o.tr.fine_scale;
        for (int i = 0; i < C * D; i++) assert_true(o.gwh[i] == (float)(sxs * zw[i]));
        for (int i = 0; i < N * D; i++) assert_true(o.gxh[i] == (float)(sws * zx[i]));
        /* same step, non-zero rule: identical bits */
        lb_hq_config cfg2 = cfg;
        cfg2.sampling = LB_LSS_NONZERO;
        run_backward(&cfg2, st, 7, t.dy, &o2);
        assert_memory_equal(o.dx, o2.dx, sizeof o.dx);
        assert_memory_equal(o.dw, o2.dw, sizeof o.dw);
        assert_true(o.dsx == o2.dsx && o.dsw == o2.dsw);
        /* a different step draws different BS noise */
        run_backward(&cfg, st, 8, t.dy, &o2);
        assert_true(memcmp(o.lo, o2.lo, sizeof o.lo) != 0);
        if (preset) {
            for (int i = 0; i < N * C; i++) assert_true(o.hi[i] >= -6 && o.hi[i] <= 6 && o.lo[i] >= -6 && o.lo[i] <= 6);
        }
        lb_hq_state_free(st);
    }
}

/* Bernoulli LSS with an on-grid ∇Y (BS exact, only the masks are random):
 * over K steps the mean of G_W and G_X is within 5 SE of the exact product,
 * SE from the exact per-element variance
 *   Var G_W[c][d] = (s_X s↓)² Σ_r (1/p_r − 1) (mult_r · nib_r[c] · X̂_r[d])²,
 *   Var G_X[i][d] = (s_W s↓)² Σ_{r ∈ {i, N+i}} (1/p_r − 1) (mult_r · (nib_r Ŵ)[d])²,
 * plus a float-rounding allowance; Σp = N on both GEMMs. */
static void test_bernoulli_unbiased(void **state)
{
    (void)state;
    static layer_data t;
    static outs o;
    make_data(&t, 60);
    /* leave some rows of ∇Y zero so that budget and zero-row handling matter */
    for (int c = 0; c < C; c++) t.dy[3 * C + c] = 0.0f;
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    cfg.block = 4;
    cfg.seed = 77;
    lb_hq_state *st = new_state();
    float y[N * C];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    enum { K = 3000 };
    static double mean_w[C * D], mean_x[N * D];
    for (int k = 0; k < K; k++) {
        run_backward(&cfg, st, (uint64_t)k, t.dy, &o);
        for (int i = 0; i < C * D; i++) mean_w[i] += o.gwh[i] / (double)K;
        for (int i = 0; i < N * D; i++) mean_x[i] += o.gxh[i] / (double)K;
    }
    /* p and the BS codes are the same at every step (on-grid ∇Y) */
    double sum_pw = 0, sum_px = 0;
    for (int r = 0; r < 2 * N; r++) sum_pw += o.pw[r], sum_px += o.px[r];
    assert_true(fabs(sum_pw - N) < 1e-9 && fabs(sum_px - N) < 1e-9);
    assert_true(o.pw[3] == 0.0 && o.pw[N + 3] == 0.0);
    const double fine = o.tr.fine_scale, sx = st->used_step_x, sw = st->used_step_w;
    int sampled = 0;
    for (int r = 0; r < 2 * N; r++) sampled += o.pw[r] > 0 && o.pw[r] < 1;
    assert_true(sampled > 0);
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) {
            double exact = 0, var = 0;
            for (int r = 0; r < 2 * N; r++) {
                int i = r % N, mult = r < N ? 14 : 1;
                double term = sx * fine * mult * (r < N ? o.hi : o.lo)[i * C + c] * st->x_codes[i * D + d];
                exact += term;
                if (o.pw[r] > 0) var += (1 / o.pw[r] - 1) * term * term;
            }
            double tol = 5 * sqrt(var / K) + 1e-6 * fabs(exact) + 1e-9;
            if (fabs(mean_w[c * D + d] - exact) > tol)
                fprintf(stderr, "G_W[%d][%d]: mean %.9g exact %.9g tol %.3g\n", c, d, mean_w[c * D + d], exact, tol);
            assert_true(fabs(mean_w[c * D + d] - exact) <= tol);
        }
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) {
            double exact = 0, var = 0;
            for (int h = 0; h < 2; h++) {
                int r = h * N + i, mult = h == 0 ? 14 : 1;
                double z = 0;
                for (int c = 0; c < C; c++) z += (h == 0 ? o.hi : o.lo)[i * C + c] * st->w_codes[c * D + d];
                double term = sw * fine * mult * z;
                exact += term;
                if (o.px[r] > 0) var += (1 / o.px[r] - 1) * term * term;
            }
            double tol = 5 * sqrt(var / K) + 1e-6 * fabs(exact) + 1e-9;
            assert_true(fabs(mean_x[i * D + d] - exact) <= tol);
        }
    lb_hq_state_free(st);
}

/* Zeros, an outlier, non-finite values and misuse. */
static void test_edge_cases(void **state)
{
    (void)state;
    static layer_data t;
    static outs o;
    make_data(&t, 70);
    lb_hq_config cfg;
    lb_hq_config_default(&cfg);
    lb_hq_state *st = new_state();
    float y[N * C];
    /* backward before any forward */
    float dx[N * D], dw[C * D];
    assert_int_equal(lb_qlinear_hq_backward_ref(NULL, &cfg, st, 0, t.dy, dx, dw, NULL, NULL, NULL, NULL), LB_ERR_ARG);
    /* all-zero X: step 1e-10, codes 0, Y = b; the backward is finite */
    static float zx[N * D];
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, zx, t.w, t.b, y, NULL), LB_OK);
    assert_true(st->step_x == 1e-10f && st->block == 1);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) assert_true(y[i * C + c] == t.b[c]);
    run_backward(&cfg, st, 0, t.dy, &o);
    for (int i = 0; i < C * D; i++) assert_true(o.dw[i] == 0.0f);
    for (int i = 0; i < N * D; i++) assert_true(isfinite(o.dx[i]));
    /* all-zero ∇Y: zero gradients, no NaN (Σ scores = 0) */
    static float zdy[N * C];
    run_backward(&cfg, st, 1, zdy, &o);
    for (int i = 0; i < N * D; i++) assert_true(o.dx[i] == 0.0f);
    for (int i = 0; i < C; i++) assert_true(o.db[i] == 0.0f);
    assert_true(o.dsx == 0.0f && o.dsw == 0.0f);
    lb_hq_state_free(st);
    /* one huge outlier: finite outputs, the outlier's codes clip */
    st = new_state();
    t.x[7] = 1e30f;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    for (int i = 0; i < N * C; i++) assert_true(isfinite(y[i]));
    run_backward(&cfg, st, 0, t.dy, &o);
    for (int i = 0; i < N * D; i++) assert_true(isfinite(o.dx[i]));
    lb_hq_state_free(st);
    /* NaN / Inf anywhere: LB_ERR_NUMERIC, learned fields untouched */
    st = new_state();
    t.x[7] = NAN;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_ERR_NUMERIC);
    assert_true(st->initialized == 0 && st->block == 0 && st->has_forward == 0);
    t.x[7] = 0.5f;
    t.w[3] = -INFINITY;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_ERR_NUMERIC);
    t.w[3] = 0.5f;
    t.b[1] = NAN;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_ERR_NUMERIC);
    t.b[1] = 0.0f;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    t.dy[4] = INFINITY;
    assert_int_equal(lb_qlinear_hq_backward_ref(NULL, &cfg, st, 0, t.dy, dx, dw, NULL, NULL, NULL, NULL), LB_ERR_NUMERIC);
    t.dy[4] = 0.0f;
    /* a learned step that became NaN is reported */
    st->step_x = NAN;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_ERR_NUMERIC);
    /* a block that does not divide D */
    lb_hq_state_free(st);
    st = new_state();
    cfg.block = 3;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_ERR_ARG);
    cfg.block = 0;
    cfg.lss_budget = 3 * N; /* more than 2N rows */
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, D, C, t.x, t.w, t.b, y, NULL), LB_OK);
    assert_int_equal(lb_qlinear_hq_backward_ref(NULL, &cfg, st, 0, t.dy, dx, dw, NULL, NULL, NULL, NULL), LB_ERR_ARG);
    lb_hq_state_free(st);
    lb_hq_state_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_exact),
        cmocka_unit_test(test_forward_search_and_steps),
        cmocka_unit_test(test_backward_deterministic),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_pytorch_fixture),
        cmocka_unit_test(test_backward_int8_equivalence),
        cmocka_unit_test(test_bernoulli_unbiased),
        cmocka_unit_test(test_edge_cases),
    };
    return LB_RUN_TESTS(tests);
}

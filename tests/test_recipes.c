/* tests/test_recipes.c — the quantized training recipes (lowbit/recipe.h):
 *   - hq and luq on the ref backend give exactly the oracle layers'
 *     results (lb_qlinear_hq_*_ref, lb_qlinear_luq_*_ref) for every mode;
 *     int8 gives exactly a hand-written int8 layer (RTN / SR codes, int64
 *     products, the documented float32 scaling);
 *   - every recipe on the cpu backend (fast integer kernels, packed weights,
 *     threads) equals the ref backend bit for bit, on awkward shapes;
 *   - the LSQ steps follow AdamW; evaluation never changes the training
 *     state; the state round-trips and malformed states are rejected;
 *   - a tiny gpt trains with every recipe to a loss well below its start,
 *     and a run resumed from a checkpoint (hq, luq across the FNT boundary,
 *     int8) repeats the uninterrupted one bit for bit;
 *   - a checkpoint evaluated with its recipe (lb_ptq_model_load_recipe, what
 *     `lowbit eval` does) gives training's own evaluation bit for bit;
 *   - options (text forms, errors), the FNT learning-rate schedule,
 *     statistics, non-finite inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/recipe.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/train.h"
#include "lowbit/ptq.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/ref/qlinear_luq.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "test_util.h"

/* Uniform values in [-scale, scale) with one outlier (x[3] = 20 scale). */
static void fill(float *x, int64_t n, uint64_t seed, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * (2.0f * lb_rng_uniform_f32(seed, 5, (uint64_t)i) - 1.0f);
    if (n > 3) x[3] = 20.0f * scale;
}

/* A recipe with options given as "key", "value" pairs (NULL-terminated). */
static lb_recipe *make_recipe(const char *name, uint64_t seed, int64_t steps, int64_t warmup,
                              const char *const *kv)
{
    lb_recipe_options o;
    lb_recipe_options_default(&o);
    for (int i = 0; kv && kv[i]; i += 2)
        assert_int_equal(lb_recipe_option_set(NULL, &o, kv[i], kv[i + 1]), LB_OK);
    const lb_recipe_run run = {seed, steps, warmup};
    lb_recipe *r = NULL;
    assert_int_equal(lb_recipe_create_ex(NULL, name, &o, &run, &r), LB_OK);
    return r;
}

/* a == b element by element (+0 == -0), with the first mismatch printed. */
static void assert_same(const float *a, const float *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) {
            fprintf(stderr, "%s: first mismatch at %lld: %.9g vs %.9g\n", what, (long long)i,
                    (double)a[i], (double)b[i]);
            fail();
        }
}

typedef struct layer_io {
    int64_t N, C, OC;
    float *x, *w, *b, *dy;  // (N, C), (OC, C), (OC), (N, OC)
    float *y, *dx, *dw, *db; // outputs
} layer_io;

static void io_init(layer_io *io, int64_t N, int64_t C, int64_t OC, uint64_t seed)
{
    io->N = N, io->C = C, io->OC = OC;
    io->x = malloc((size_t)(N * C) * sizeof(float));
    io->w = malloc((size_t)(OC * C) * sizeof(float));
    io->b = malloc((size_t)OC * sizeof(float));
    io->dy = malloc((size_t)(N * OC) * sizeof(float));
    io->y = malloc((size_t)(N * OC) * sizeof(float));
    io->dx = calloc((size_t)(N * C), sizeof(float));
    io->dw = calloc((size_t)(OC * C), sizeof(float));
    io->db = calloc((size_t)OC, sizeof(float));
    fill(io->x, N * C, seed, 1.0f);
    fill(io->w, OC * C, seed + 1, 0.05f);
    fill(io->b, OC, seed + 2, 0.1f);
    fill(io->dy, N * OC, seed + 3, 1e-3f);
}

static void io_zero_grads(layer_io *io)
{
    memset(io->dx, 0, (size_t)(io->N * io->C) * sizeof(float));
    memset(io->dw, 0, (size_t)(io->OC * io->C) * sizeof(float));
    memset(io->db, 0, (size_t)io->OC * sizeof(float));
}

static void io_free(layer_io *io)
{
    free(io->x), free(io->w), free(io->b), free(io->dy);
    free(io->y), free(io->dx), free(io->dw), free(io->db);
}

/* One training forward + backward of the recipe at site (role, layer, step). */
static void run_layer(lb_recipe *r, const lb_backend *be, layer_io *io, lb_linear_role role,
                      int layer, int64_t step)
{
    const lb_linear_site site = {role, layer, step, 1};
    assert_int_equal(r->linear_forward(r, NULL, be, &site, io->y, io->x, io->w, io->b, io->N,
                                       io->C, io->OC),
                     LB_OK);
    io_zero_grads(io);
    assert_int_equal(r->linear_backward(r, NULL, be, &site, io->dx, io->dw, io->db, io->dy, io->x,
                                        io->w, io->N, io->C, io->OC),
                     LB_OK);
}

static uint32_t site_id(lb_linear_role role, int layer)
{
    return 4096u * role + (uint32_t)(layer + 1);
}

/* ------------------------------------------------ hq == the oracle layer */

static void hq_case(const char *lss, const char *bs, const char *range, int64_t N, int64_t C,
                    int64_t OC)
{
    const char *kv[] = {"fp-layers", "none", "lss", lss, "bit-split", bs, "lsq-range", range,
                        "lsq-cold-steps", "0", "lsq-lr", "0.5", NULL};
    lb_recipe *r = make_recipe("hq", 7, 10, 0, kv);
    layer_io io;
    io_init(&io, N, C, OC, 100);
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_FC1, 2, 3);

    lb_hq_config cfg;
    if (strcmp(range, "code") == 0) {
        lb_hq_config_default(&cfg);
        cfg.range = LB_LSQ_RANGE_CODE;
        cfg.rounding = LB_ROUND_HALF_AWAY;
    } else {
        lb_hq_config_default(&cfg);
    }
    cfg.bit_split = strcmp(bs, "code") == 0 ? LB_BS_CODE : LB_BS_CLEAN;
    cfg.sampling = strcmp(lss, "bernoulli") == 0 ? LB_LSS_BERNOULLI
                   : strcmp(lss, "nonzero") == 0 ? LB_LSS_NONZERO
                                                 : LB_LSS_ALL;
    cfg.seed = 7;
    cfg.layer = site_id(LB_LINEAR_FC1, 2);
    lb_hq_state *st = NULL;
    assert_int_equal(lb_hq_state_create(NULL, &st), LB_OK);
    float *y = malloc((size_t)(N * OC) * sizeof(float));
    float *gx = malloc((size_t)(N * C) * sizeof(float));
    float *gw = malloc((size_t)(OC * C) * sizeof(float));
    float *gb = malloc((size_t)OC * sizeof(float));
    float gsx, gsw;
    assert_int_equal(lb_qlinear_hq_forward_ref(NULL, &cfg, st, N, C, OC, io.x, io.w, io.b, y, NULL),
                     LB_OK);
    assert_int_equal(lb_qlinear_hq_backward_ref(NULL, &cfg, st, 3, io.dy, gx, gw, gb, &gsx, &gsw,
                                                NULL),
                     LB_OK);
    assert_same(io.y, y, N * OC, "hq forward");
    assert_same(io.dx, gx, N * C, "hq dX");
    assert_same(io.dw, gw, OC * C, "hq dW");
    assert_same(io.db, gb, OC, "hq db");

    /* The LSQ steps take one AdamW step: with t = 1, s − lr·g / (|g| + eps). */
    /* the first optimizer step (t = 1) */
    const lb_recipe_update u = {0, 1e-3, 0.9, 0.999, 1e-8, 1.0};
    assert_int_equal(lb_recipe_optimizer_step(r, NULL, &u), LB_OK);
    lb_tensor *state = NULL;
    assert_int_equal(lb_recipe_get_state(r, NULL, &state), LB_OK);
    assert_int_equal(state->shape[0], 2);
    const double *row = (const double *)state->data + 12;
    assert_true(row[0] == LB_LINEAR_FC1 && row[1] == 2 && row[2] == (double)st->block);
    /* AdamW in double as documented: m = 0.1 g, v = 0.001 g², bias corrections for t = 1 */
    const double bc1 = 1.0 - 0.9, bc2 = 1.0 - 0.999;
    const double mx = 0.1 * (double)gsx, vx = 0.001 * (double)gsx * (double)gsx;
    const double mw = 0.1 * (double)gsw, vw = 0.001 * (double)gsw * (double)gsw;
    const double lr = 1e-3 * 0.5; /* lsq-lr 0.5 */
    const float ex = (float)((double)st->step_x - lr * (mx / bc1) / (sqrt(vx / bc2) + 1e-8));
    const float ew = (float)((double)st->step_w - lr * (mw / bc1) / (sqrt(vw / bc2) + 1e-8));
    assert_true(row[4] == (double)ex);
    assert_true(row[5] == (double)ew);
    assert_true(fabsf(ex - (st->step_x - 5e-4f * (gsx > 0 ? 1.0f : -1.0f))) < 1e-6f);
    assert_true(((const double *)state->data)[1] == 1.0); /* steps done */
    lb_tensor_free(state);
    free(y), free(gx), free(gw), free(gb);
    lb_hq_state_free(st);
    io_free(&io);
    lb_recipe_free(r);
}

static void test_hq_matches_oracle(void **state)
{
    (void)state;
    hq_case("bernoulli", "clean", "paper", 24, 32, 16);
    hq_case("nonzero", "code", "code", 24, 32, 16);
    hq_case("all", "clean", "paper", 17, 48, 8);
    hq_case("bernoulli", "code", "paper", 9, 20, 5);
}

/* ------------------------------------------------ luq == the oracle layer */

static void luq_case(int smp, int levels, int64_t N, int64_t C, int64_t OC)
{
    char s_smp[16], s_lev[16];
    snprintf(s_smp, sizeof s_smp, "%d", smp);
    snprintf(s_lev, sizeof s_lev, "%d", levels);
    const char *kv[] = {"fp-layers", "none", "smp", s_smp, "luq-levels", s_lev, NULL};
    lb_recipe *r = make_recipe("luq", 11, 10, 0, kv);
    layer_io io;
    io_init(&io, N, C, OC, 200);
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_QKV, 0, 5);

    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    cfg.samples = smp;
    cfg.luq.levels = levels;
    cfg.luq.seed = 11;
    cfg.luq.sample = ((uint64_t)site_id(LB_LINEAR_QKV, 0) << 48) + ((uint64_t)5 << 12);
    int8_t *xc = malloc((size_t)(N * C)), *wc = malloc((size_t)(OC * C));
    float sx, sw, alpha;
    int sgn = 0;
    float *y = malloc((size_t)(N * OC) * sizeof(float));
    float *gx = malloc((size_t)(N * C) * sizeof(float));
    float *gw = malloc((size_t)(OC * C) * sizeof(float));
    float *gb = malloc((size_t)OC * sizeof(float));
    assert_int_equal(lb_qlinear_luq_forward_ref(NULL, &cfg, N, C, OC, io.x, io.w, io.b, &sgn, xc,
                                                &sx, wc, &sw, NULL, y),
                     LB_OK);
    assert_int_equal(lb_qlinear_luq_backward_ref(NULL, &cfg, N, C, OC, io.dy, xc, sx, wc, sw, gx,
                                                 gw, gb, &alpha),
                     LB_OK);
    assert_same(io.y, y, N * OC, "luq forward");
    assert_same(io.dx, gx, N * C, "luq dX");
    assert_same(io.dw, gw, OC * C, "luq dW");
    assert_same(io.db, gb, OC, "luq db");
    free(xc), free(wc), free(y), free(gx), free(gw), free(gb);
    io_free(&io);
    lb_recipe_free(r);
}

static void test_luq_matches_oracle(void **state)
{
    (void)state;
    luq_case(1, 8, 24, 32, 16);
    luq_case(2, 8, 13, 20, 7);
    luq_case(3, 7, 16, 16, 16);
}

/* ------------------------------------------ int8 == a hand-written layer */

static void test_int8_by_hand(void **state)
{
    (void)state;
    const int64_t N = 19, C = 23, OC = 11;
    const char *kv[] = {"fp-layers", "none", NULL};
    lb_recipe *r = make_recipe("int8", 3, 10, 0, kv);
    layer_io io;
    io_init(&io, N, C, OC, 300);
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_PROJ, 1, 4);
    /* per-tensor symmetric int8: Δ = max|t| / 127 (the ranges include 0) */
    float mx = 0, mw = 0, mg = 0;
    for (int64_t i = 0; i < N * C; i++) mx = fmaxf(mx, fabsf(io.x[i]));
    for (int64_t i = 0; i < OC * C; i++) mw = fmaxf(mw, fabsf(io.w[i]));
    for (int64_t i = 0; i < N * OC; i++) mg = fmaxf(mg, fabsf(io.dy[i]));
    const float sx = mx / 127.0f, sw = mw / 127.0f, sg = mg / 127.0f;
    int *qx = malloc((size_t)(N * C) * sizeof(int)), *qw = malloc((size_t)(OC * C) * sizeof(int));
    int *qg = malloc((size_t)(N * OC) * sizeof(int));
    for (int64_t i = 0; i < N * C; i++) qx[i] = (int)nearbyintf(io.x[i] / sx);
    for (int64_t i = 0; i < OC * C; i++) qw[i] = (int)nearbyintf(io.w[i] / sw);
    const uint64_t stream =
        lb_rng_stream("int8.grad", ((uint64_t)site_id(LB_LINEAR_PROJ, 1) << 32) + 4);
    for (int64_t i = 0; i < N * OC; i++) {
        const float u = lb_rng_uniform_f32(3, stream, (uint64_t)i);
        qg[i] = (int)floorf(io.dy[i] / sg + u);
        if (qg[i] > 127) qg[i] = 127;
        if (qg[i] < -127) qg[i] = -127;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            int64_t z = 0;
            for (int64_t c = 0; c < C; c++) z += (int64_t)qx[n * C + c] * qw[o * C + c];
            const float y = (sx * sw) * (float)z + io.b[o];
            assert_true(io.y[n * OC + o] == y);
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t z = 0;
            for (int64_t o = 0; o < OC; o++) z += (int64_t)qg[n * OC + o] * qw[o * C + c];
            assert_true(io.dx[n * C + c] == (sg * sw) * (float)z);
        }
    for (int64_t o = 0; o < OC; o++) {
        for (int64_t c = 0; c < C; c++) {
            int64_t z = 0;
            for (int64_t n = 0; n < N; n++) z += (int64_t)qg[n * OC + o] * qx[n * C + c];
            assert_true(io.dw[o * C + c] == (sg * sx) * (float)z);
        }
        double sum = 0;
        for (int64_t n = 0; n < N; n++) sum += (double)io.dy[n * OC + o];
        assert_true(io.db[o] == (float)sum);
    }
    free(qx), free(qw), free(qg);
    io_free(&io);
    lb_recipe_free(r);
}

/* ------------------------------------------------------ cpu == ref */

static void cpu_ref_case(const char *name, const char *const *kv, int64_t N, int64_t C, int64_t OC)
{
    lb_recipe *rr = make_recipe(name, 21, 10, 0, kv), *rc = make_recipe(name, 21, 10, 0, kv);
    layer_io a, b;
    io_init(&a, N, C, OC, 400);
    io_init(&b, N, C, OC, 400);
    for (int64_t step = 0; step < 3; step++) {
        /* weights change between steps; evaluation batches in between reuse
         * the packed weights on cpu */
        for (int64_t i = 0; i < OC * C; i++) a.w[i] = b.w[i] = a.w[i] * 1.01f + 1e-4f;
        run_layer(rr, lb_backend_ref(), &a, LB_LINEAR_FC2, 0, step);
        run_layer(rc, lb_backend_cpu(), &b, LB_LINEAR_FC2, 0, step);
        assert_same(b.y, a.y, N * OC, name);
        assert_same(b.dx, a.dx, N * C, name);
        assert_same(b.dw, a.dw, OC * C, name);
        assert_same(b.db, a.db, OC, name);
        const lb_linear_site ev = {LB_LINEAR_FC2, 0, 0, 0};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(rr->linear_forward(rr, NULL, lb_backend_ref(), &ev, a.y, a.x, a.w,
                                                a.b, N, C, OC),
                             LB_OK);
            assert_int_equal(rc->linear_forward(rc, NULL, lb_backend_cpu(), &ev, b.y, b.x, b.w,
                                                b.b, N, C, OC),
                             LB_OK);
            assert_same(b.y, a.y, N * OC, name);
        }
        const lb_recipe_update u = {step, 1e-3, 0.9, 0.999, 1e-8, 1.0};
        assert_int_equal(lb_recipe_optimizer_step(rr, NULL, &u), LB_OK);
        assert_int_equal(lb_recipe_optimizer_step(rc, NULL, &u), LB_OK);
    }
    io_free(&a);
    io_free(&b);
    lb_recipe_free(rr);
    lb_recipe_free(rc);
}

static void test_cpu_equals_ref(void **state)
{
    (void)state;
    const char *none[] = {"fp-layers", "none", NULL};
    const char *hq_nz[] = {"fp-layers", "none", "lss", "nonzero", "lsq-cold-steps", "1", NULL};
    const char *hq_bern[] = {"fp-layers", "none", "lsq-cold-steps", "1", NULL};
    const char *hq_nobs[] = {"fp-layers", "none", "bit-split", "none", "hq-block", "8", NULL};
    const char *hq_code[] = {"fp-layers", "none", "lsq-range", "code", "bit-split", "code",
                             "lsq-cold-steps", "1", NULL};
    const char *luq2[] = {"fp-layers", "none", "smp", "2", NULL};
    const char *luq7[] = {"fp-layers", "none", "luq-levels", "7", "luq-underflow", "flush", NULL};
    const char *luq_rtn[] = {"fp-layers", "none", "sawb-grid", "code", "luq-underflow", "nearest",
                             "luq-rounding", "nearest", NULL};
    const int64_t shapes[][3] = {{37, 48, 24}, {65, 64, 33}, {8, 7, 129}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int64_t N = shapes[k][0], C = shapes[k][1], OC = shapes[k][2];
        cpu_ref_case("int8", none, N, C, OC);
        cpu_ref_case("hq", hq_nz, N, C, OC);
        cpu_ref_case("hq", hq_bern, N, C, OC);
        cpu_ref_case("hq", hq_nobs, N, C, OC);
        cpu_ref_case("hq", hq_code, N, C, OC);
        cpu_ref_case("luq", none, N, C, OC);
        cpu_ref_case("luq", luq2, N, C, OC);
        cpu_ref_case("luq", luq7, N, C, OC);
        cpu_ref_case("luq", luq_rtn, N, C, OC);
    }
    /* the integer GEMMs on oneDNN (gemm onednn): the same bits where oneDNN is
     * exact (VNNI); refused with a clear error elsewhere */
    const char *dnn_int8[] = {"fp-layers", "none", "gemm", "onednn", NULL};
    const char *dnn_hq[] = {"fp-layers", "none", "lss", "nonzero", "lsq-cold-steps", "1", "gemm",
                            "onednn", NULL};
    const char *dnn_luq[] = {"fp-layers", "none", "smp", "2", "gemm", "onednn", NULL};
    if (lb_onednn_available() && lb_onednn_int8_exact()) {
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            const int64_t N = shapes[k][0], C = shapes[k][1], OC = shapes[k][2];
            cpu_ref_case("int8", dnn_int8, N, C, OC);
            cpu_ref_case("hq", dnn_hq, N, C, OC);
            cpu_ref_case("luq", dnn_luq, N, C, OC);
        }
    } else {
        lb_recipe_options o;
        lb_recipe_options_default(&o);
        assert_int_equal(lb_recipe_option_set(NULL, &o, "gemm", "onednn"), LB_OK);
        lb_ctx *ctx;
        assert_int_equal(lb_ctx_create(&ctx), LB_OK);
        assert_int_equal(lb_recipe_options_check(ctx, "hq", &o), LB_ERR_UNSUPPORTED);
        assert_non_null(strstr(lb_ctx_error(ctx), "gemm onednn"));
        lb_ctx_free(ctx);
    }
}

/* ------------------------------- cpu LSQ backward and Hadamard == ref */

/* The LSQ backward and Hadamard transform the hq recipe calls on the cpu
 * backend (lb_lsq_backward_cpu, lb_hadamard_cpu) against the references, bit
 * for bit (memcmp: signed zeros count), on rounding ties, range edges, ±0
 * and sizes around the 8-lane and 1024-element steps; in place as the
 * recipe calls them. */
static void test_cpu_quant_hooks(void **state)
{
    (void)state;
    const int64_t sizes[] = {1, 3, 4, 5, 17, 1023, 1024, 1025, 2051};
    enum { nmax = 2051 };
    float *v = malloc(nmax * sizeof *v), *g = malloc(nmax * sizeof *g);
    float *a = malloc(nmax * sizeof *a), *b = malloc(nmax * sizeof *b);
    for (int64_t i = 0; i < nmax; i++) {
        const float u = lb_rng_uniform_f32(9, 1, (uint64_t)i);
        switch (i % 6) {
        case 0: v[i] = (float)((int)(u * 20.0f) - 10) + 0.5f; break;  /* ties, in and out */
        case 1: v[i] = (float)((int)(u * 20.0f) - 10); break;         /* integers, edges */
        case 2: v[i] = (i & 8) ? -0.0f : 0.0f; break;
        case 3: v[i] = (i & 8) ? -8.5f : 7.5f; break;
        case 4: v[i] = -0.49999997f + (float)((int)(u * 16.0f) - 8); break;
        default: v[i] = 20.0f * u - 10.0f; break;
        }
        g[i] = (i % 7 == 0) ? -0.0f : 2.0f * lb_rng_uniform_f32(9, 2, (uint64_t)i) - 1.0f;
    }
    for (int range = 0; range < 2; range++)
        for (int rounding = 0; rounding < 2; rounding++)
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                const int64_t n = sizes[k];
                float sa = 1.0f, sb = 2.0f;
                memcpy(a, g, (size_t)n * sizeof *a);
                memcpy(b, g, (size_t)n * sizeof *b);
                assert_int_equal(lb_lsq_backward_ref(NULL, (lb_lsq_range)range,
                                                     (lb_rounding)rounding, n, v, a, a, &sa),
                                 LB_OK);
                assert_int_equal(lb_lsq_backward_cpu(NULL, (lb_lsq_range)range,
                                                     (lb_rounding)rounding, n, v, b, b, &sb),
                                 LB_OK);
                assert_memory_equal(a, b, (size_t)n * sizeof *a);
                assert_memory_equal(&sa, &sb, sizeof sa);
            }
    /* a non-finite quotient: the reference's error */
    v[5] = NAN;
    assert_int_equal(lb_lsq_backward_cpu(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 9, v, g, b,
                                         NULL),
                     LB_ERR_NUMERIC);
    /* Hadamard: every block of D = 64, out of place and in place */
    const int64_t rows = 31, D = 64;
    for (int64_t block = 1; block <= D; block *= 2) {
        fill(v, rows * D, 30 + (uint64_t)block, 1.0f);
        assert_int_equal(lb_hadamard_ref(NULL, rows, D, block, v, a), LB_OK);
        assert_int_equal(lb_hadamard_cpu(NULL, rows, D, block, v, b), LB_OK);
        assert_memory_equal(a, b, (size_t)(rows * D) * sizeof *a);
        assert_int_equal(lb_hadamard_cpu(NULL, rows, D, block, v, v), LB_OK);
        assert_memory_equal(a, v, (size_t)(rows * D) * sizeof *a);
    }
    free(v), free(g), free(a), free(b);
}

/* ------------------------------------ evaluation leaves training alone */

static void test_eval_does_not_disturb(void **state)
{
    (void)state;
    const char *kv[] = {"fp-layers", "none", "lsq-cold-steps", "0", NULL};
    for (int kind = 0; kind < 2; kind++) {
        const char *name = kind ? "luq" : "hq";
        lb_recipe *r1 = make_recipe(name, 5, 10, 0, kv), *r2 = make_recipe(name, 5, 10, 0, kv);
        layer_io a, b, e;
        io_init(&a, 20, 16, 12, 500);
        io_init(&b, 20, 16, 12, 500);
        io_init(&e, 20, 16, 12, 600);
        for (int64_t i = 0; i < 20 * 16; i++) a.x[i] = b.x[i] = fabsf(a.x[i]); /* luq: unsigned */
        const lb_linear_site train = {LB_LINEAR_QKV, 1, 0, 1}, ev = {LB_LINEAR_QKV, 1, 0, 0};
        /* r1: eval first (a never-trained layer), then train forward, eval
         * with signed data, backward */
        assert_int_equal(r1->linear_forward(r1, NULL, lb_backend_ref(), &ev, e.y, e.x, e.w, e.b,
                                            20, 16, 12),
                         LB_OK);
        assert_int_equal(r1->linear_forward(r1, NULL, lb_backend_ref(), &train, a.y, a.x, a.w,
                                            a.b, 20, 16, 12),
                         LB_OK);
        assert_int_equal(r1->linear_forward(r1, NULL, lb_backend_ref(), &ev, e.y, e.x, e.w, e.b,
                                            20, 16, 12),
                         LB_OK);
        io_zero_grads(&a);
        assert_int_equal(r1->linear_backward(r1, NULL, lb_backend_ref(), &train, a.dx, a.dw, a.db,
                                             a.dy, a.x, a.w, 20, 16, 12),
                         LB_OK);
        run_layer(r2, lb_backend_ref(), &b, LB_LINEAR_QKV, 1, 0);
        assert_same(a.y, b.y, 20 * 12, name);
        assert_same(a.dx, b.dx, 20 * 16, name);
        assert_same(a.dw, b.dw, 12 * 16, name);
        lb_tensor *s1 = NULL, *s2 = NULL;
        assert_int_equal(lb_recipe_get_state(r1, NULL, &s1), LB_OK);
        assert_int_equal(lb_recipe_get_state(r2, NULL, &s2), LB_OK);
        assert_int_equal(s1->numel, s2->numel);
        assert_memory_equal(s1->data, s2->data, s1->nbytes);
        lb_tensor_free(s1);
        lb_tensor_free(s2);
        io_free(&a), io_free(&b), io_free(&e);
        lb_recipe_free(r1);
        lb_recipe_free(r2);
    }
}

/* --------------------------------------------------- state round trip */

static void test_state(void **state)
{
    (void)state;
    const char *kv[] = {"fp-layers", "none", "lsq-cold-steps", "0", NULL};
    lb_recipe *r = make_recipe("hq", 9, 10, 0, kv);
    layer_io io;
    io_init(&io, 16, 32, 8, 700);
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_FC1, 0, 0);
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_FC2, 0, 0);
    const lb_recipe_update u = {0, 1e-2, 0.9, 0.999, 1e-8, 1.0};
    assert_int_equal(lb_recipe_optimizer_step(r, NULL, &u), LB_OK);
    lb_tensor *s = NULL, *s2 = NULL;
    assert_int_equal(lb_recipe_get_state(r, NULL, &s), LB_OK);
    assert_int_equal(s->shape[0], 3);
    /* a fresh recipe restored before its first forward continues identically */
    lb_recipe *q = make_recipe("hq", 9, 10, 0, kv);
    assert_int_equal(lb_recipe_set_state(q, NULL, s), LB_OK);
    assert_int_equal(lb_recipe_get_state(q, NULL, &s2), LB_OK); /* pending rows kept */
    assert_memory_equal(s->data, s2->data, s->nbytes);
    lb_tensor_free(s2);
    layer_io a;
    io_init(&a, 16, 32, 8, 800);
    memcpy(io.x, a.x, 16 * 32 * sizeof(float));
    memcpy(io.w, a.w, 8 * 32 * sizeof(float));
    memcpy(io.b, a.b, 8 * sizeof(float));
    memcpy(io.dy, a.dy, 16 * 8 * sizeof(float));
    run_layer(r, lb_backend_ref(), &io, LB_LINEAR_FC1, 0, 1);
    run_layer(q, lb_backend_ref(), &a, LB_LINEAR_FC1, 0, 1);
    assert_same(a.y, io.y, 16 * 8, "resumed forward");
    assert_same(a.dw, io.dw, 8 * 32, "resumed backward");
    /* malformed states */
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    double *d = (double *)s->data;
    d[12 + 0] = 9; /* role out of range */
    assert_int_equal(lb_recipe_set_state(q, ctx, s), LB_ERR_FORMAT);
    d[12 + 0] = LB_LINEAR_FC1;
    d[12 + 4] = NAN;
    assert_int_equal(lb_recipe_set_state(q, ctx, s), LB_ERR_FORMAT);
    d[12 + 4] = 0.5;
    d[0] = 0; /* header */
    assert_int_equal(lb_recipe_set_state(q, ctx, s), LB_ERR_FORMAT);
    lb_tensor *bad = NULL;
    assert_int_equal(lb_tensor_create(NULL, LB_F32, 2, (const int64_t[]){1, 12}, &bad), LB_OK);
    assert_int_equal(lb_recipe_set_state(q, ctx, bad), LB_ERR_FORMAT);
    assert_non_null(strstr(lb_ctx_error(ctx), "F64"));
    lb_tensor_free(bad);
    lb_tensor_free(s);
    /* fp32 has no state */
    lb_recipe *f = NULL;
    assert_int_equal(lb_recipe_create(NULL, "fp32", &f), LB_OK);
    assert_int_equal(lb_recipe_get_state(f, NULL, &s), LB_OK);
    assert_null(s);
    lb_recipe_free(f);
    lb_ctx_free(ctx);
    io_free(&io), io_free(&a);
    lb_recipe_free(r);
    lb_recipe_free(q);
}

/* ------------------------------------------- statistics, errors, options */

static void test_stats_and_errors(void **state)
{
    (void)state;
    const char *names[] = {"int8", "hq", "luq"};
    const char *keys[] = {"g_zero", "lss_kept_w", "underflow"};
    for (int k = 0; k < 3; k++) {
        lb_recipe *r = make_recipe(names[k], 1, 10, 0, NULL);
        layer_io io;
        io_init(&io, 16, 32, 8, 900);
        run_layer(r, lb_backend_ref(), &io, LB_LINEAR_FC1, 0, 0);
        run_layer(r, lb_backend_ref(), &io, LB_LINEAR_HEAD, -1, 0); /* fp32 in hq/luq */
        char buf[2048];
        const size_t n = lb_recipe_stats_json(r, buf, sizeof buf);
        assert_true(n < sizeof buf);
        assert_non_null(strstr(buf, "\"layer\":\"blocks.0.mlp.fc1\""));
        assert_non_null(strstr(buf, keys[k]));
        assert_true((strstr(buf, "\"head\"") != NULL) == (k == 0));
        lb_recipe_stats_json(r, buf, sizeof buf); /* reset: no numbers left */
        assert_null(strstr(buf, keys[k]));
        /* non-finite input */
        lb_ctx *ctx;
        assert_int_equal(lb_ctx_create(&ctx), LB_OK);
        io.x[5] = NAN;
        const lb_linear_site site = {LB_LINEAR_FC1, 0, 1, 1};
        assert_int_equal(r->linear_forward(r, ctx, lb_backend_ref(), &site, io.y, io.x, io.w,
                                           io.b, 16, 32, 8),
                         LB_ERR_NUMERIC);
        lb_ctx_free(ctx);
        io_free(&io);
        lb_recipe_free(r);
    }
}

static void test_options(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_recipe_options o, p;
    lb_recipe_options_default(&o);
    /* every key's text form reads back */
    assert_int_equal(lb_recipe_option_set(ctx, &o, "lss", "nonzero"), LB_OK);
    assert_int_equal(lb_recipe_option_set(ctx, &o, "fnt-lr", "0.0003"), LB_OK);
    assert_int_equal(lb_recipe_option_set(ctx, &o, "fp-layers", "patch,head"), LB_OK);
    lb_recipe_options_default(&p);
    for (size_t i = 0; i < lb_recipe_option_count(); i++) {
        char v[128];
        const char *key = lb_recipe_option_key(i);
        assert_int_equal(lb_recipe_option_get(ctx, &o, key, v, sizeof v), LB_OK);
        assert_int_equal(lb_recipe_option_set(ctx, &p, key, v), LB_OK);
    }
    assert_memory_equal(&o, &p, sizeof o);
    assert_int_equal(lb_recipe_option_set(ctx, &o, "lss", "maybe"), LB_ERR_ARG);
    assert_non_null(strstr(lb_ctx_error(ctx), "bernoulli"));
    assert_int_equal(lb_recipe_option_set(ctx, &o, "smp", "65"), LB_ERR_ARG);
    assert_int_equal(lb_recipe_option_set(ctx, &o, "smp", "2x"), LB_ERR_ARG);
    assert_int_equal(lb_recipe_option_set(ctx, &o, "no-such", "1"), LB_ERR_NOT_FOUND);
    assert_int_equal(lb_recipe_options_check(ctx, "hq", &o), LB_OK);
    snprintf(o.fp_layers, sizeof o.fp_layers, "head,mlp");
    assert_int_equal(lb_recipe_options_check(ctx, "hq", &o), LB_ERR_ARG);
    assert_non_null(strstr(lb_ctx_error(ctx), "mlp"));
    lb_recipe_options_default(&o);
    o.hq_block = 24;
    assert_int_equal(lb_recipe_options_check(ctx, "hq", &o), LB_ERR_ARG);
    lb_recipe_options_default(&o);
    assert_int_equal(lb_recipe_options_check(ctx, "int4", &o), LB_ERR_ARG);
    lb_recipe *r = NULL;
    assert_int_equal(lb_recipe_create(ctx, "int4", &r), LB_ERR_ARG);
    /* FNT must leave low-bit steps */
    o.fnt_steps = 10;
    const lb_recipe_run run = {1, 10, 0};
    assert_int_equal(lb_recipe_create_ex(ctx, "luq", &o, &run, &r), LB_ERR_ARG);
    /* an all-zero struct is valid */
    memset(&o, 0, sizeof o);
    assert_int_equal(lb_recipe_options_check(ctx, "luq", &o), LB_OK);
    char line[300];
    lb_recipe_options_describe("hq", NULL, line, sizeof line);
    assert_non_null(strstr(line, "LSS bernoulli"));
    assert_non_null(strstr(line, "fp32 layers head,lm"));
    lb_ctx_free(ctx);
}

/* FNT schedule: up from the final rate to the peak over T/2 steps, down again. */
static void test_fnt_schedule(void **state)
{
    (void)state;
    assert_true(lb_fnt_lr(0, 10, 0.0, 1.0) == 0.2);
    assert_true(lb_fnt_lr(4, 10, 0.0, 1.0) == 1.0);
    assert_true(lb_fnt_lr(5, 10, 0.0, 1.0) == 1.0);
    assert_true(fabs(lb_fnt_lr(9, 10, 0.0, 1.0) - 0.2) < 1e-15);
    assert_true(lb_fnt_lr(0, 1, 0.5, 1.0) == 1.0);
    lb_train_config c;
    lb_train_config_default(LB_MODEL_GPT, &c);
    c.steps = 110, c.warmup_steps = 10, c.lr = 1e-3, c.min_lr = 1e-4;
    snprintf(c.recipe, sizeof c.recipe, "luq");
    c.recipe_opt.fnt_steps = 10;
    c.recipe_opt.fnt_lr = 5e-4;
    lb_train_config low = c;
    low.steps = 100;
    low.recipe_opt.fnt_steps = 0;
    for (int64_t s = 0; s < 100; s++) assert_true(lb_train_lr(&c, s) == lb_train_lr(&low, s));
    assert_true(lb_train_lr(&c, 100) == lb_fnt_lr(0, 10, 1e-4, 5e-4));
    assert_true(fabs(lb_train_lr(&c, 104) - 5e-4) < 1e-15);
    assert_true(lb_train_lr(&c, 109) < 5e-4 && lb_train_lr(&c, 109) > 1e-4);
    /* other recipes ignore fnt-steps: the cosine over all 110 steps */
    lb_train_config all = c;
    all.recipe_opt.fnt_steps = 0;
    snprintf(c.recipe, sizeof c.recipe, "hq");
    for (int64_t s = 0; s < 110; s++) assert_true(lb_train_lr(&c, s) == lb_train_lr(&all, s));
}

/* ------------------------------------------------ training and resume */

static char g_text[400];

static const char *text_file(void)
{
    if (g_text[0]) return g_text;
    lb_test_path(g_text, sizeof g_text, lb_test_tmp_dir(), "recipes_text.txt");
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then",
                                        "ran", "to", "its", "home"};
    char *buf = malloc(20000);
    size_t n = 0;
    for (uint64_t i = 0; n < 19900; i++) {
        const char *w = words[lb_rng_u32(7, 2, i) % 12];
        n += (size_t)snprintf(buf + n, 20000 - n, "%s%s", w, i % 9 == 8 ? ".\n" : " ");
    }
    assert_int_equal(lb_test_write_file(g_text, buf, n), 0);
    free(buf);
    return g_text;
}

static void tiny_config(lb_train_config *c, const char *recipe, const char *const *kv)
{
    lb_train_config_default(LB_MODEL_GPT, c);
    c->model.n_layer = 1;
    c->model.d_model = 32;
    c->model.n_head = 2;
    c->model.d_ff = 64;
    c->model.max_seq_len = 16;
    snprintf(c->data, sizeof c->data, "text:%s", text_file());
    snprintf(c->recipe, sizeof c->recipe, "%s", recipe);
    for (int i = 0; kv && kv[i]; i += 2)
        assert_int_equal(lb_recipe_option_set(NULL, &c->recipe_opt, kv[i], kv[i + 1]), LB_OK);
    c->batch_size = 8;
    c->steps = 60;
    c->warmup_steps = 5;
    c->lr = 1e-2;
    c->eval_limit = 8;
    c->seed = 42;
}

/* Each recipe learns: the validation loss drops by more than 1.5 bits per
 * byte from the untrained ~8 bits (fp32 gets about 4 bits lower). */
static void test_tiny_training(void **state)
{
    (void)state;
    const char *fnt[] = {"fnt-steps", "10", NULL};
    const char *smp[] = {"smp", "2", NULL};
    const char *nz[] = {"lss", "nonzero", NULL};
    const struct {
        const char *name;
        const char *const *kv;
    } cases[] = {{"int8", NULL}, {"hq", NULL}, {"hq", nz}, {"luq", fnt}, {"luq", smp}};
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const int threads = lb_ctx_threads(ctx);
    assert_int_equal(lb_ctx_set_threads(ctx, 1), LB_OK);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lb_train_config c;
        tiny_config(&c, cases[k].name, cases[k].kv);
        lb_trainer *tr = NULL;
        assert_int_equal(lb_trainer_create(ctx, &c, &tr), LB_OK);
        lb_eval_result before, after;
        assert_int_equal(lb_trainer_evaluate(ctx, tr, &before), LB_OK);
        double first = 0, last = 0;
        for (int64_t s = 0; s < c.steps; s++) {
            lb_step_info info;
            assert_int_equal(lb_trainer_step(ctx, tr, &info), LB_OK);
            if (s < 5) first += info.loss / 5;
            if (s >= c.steps - 5) last += info.loss / 5;
        }
        assert_int_equal(lb_trainer_evaluate(ctx, tr, &after), LB_OK);
        if (getenv("LB_TEST_VERBOSE"))
            fprintf(stderr, "%s: bits/byte %.3f -> %.3f, train loss %.3f -> %.3f\n",
                    cases[k].name, before.bits_per_byte, after.bits_per_byte, first, last);
        if (!(after.bits_per_byte < before.bits_per_byte - 1.5 && last < first - 1.0)) {
            fprintf(stderr, "%s: bits/byte %.3f -> %.3f, train loss %.3f -> %.3f\n",
                    cases[k].name, before.bits_per_byte, after.bits_per_byte, first, last);
            fail();
        }
        lb_trainer_free(tr);
    }
    assert_int_equal(lb_ctx_set_threads(ctx, threads), LB_OK);
    lb_ctx_free(ctx);
}

/* N steps straight == N/2 + checkpoint + resume + N/2, bit for bit. */
static void resume_case(const char *recipe, const char *const *kv, int64_t n)
{
    lb_train_config c;
    tiny_config(&c, recipe, kv);
    c.steps = n;
    c.warmup_steps = 2;
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "recipes_resume.safetensors");
    lb_trainer *a = NULL, *b = NULL, *b2 = NULL;
    assert_int_equal(lb_trainer_create(NULL, &c, &a), LB_OK);
    assert_int_equal(lb_trainer_create(NULL, &c, &b), LB_OK);
    double la[32], lb[32];
    for (int64_t s = 0; s < n; s++) {
        lb_step_info info;
        assert_int_equal(lb_trainer_step(NULL, a, &info), LB_OK);
        la[s] = info.loss;
    }
    for (int64_t s = 0; s < n / 2; s++) {
        lb_step_info info;
        assert_int_equal(lb_trainer_step(NULL, b, &info), LB_OK);
        lb[s] = info.loss;
    }
    lb_eval_result ev;
    assert_int_equal(lb_trainer_evaluate(NULL, b, &ev), LB_OK); /* must not matter */
    assert_int_equal(lb_trainer_save(NULL, b, path), LB_OK);
    lb_trainer_free(b);
    assert_int_equal(lb_trainer_resume(NULL, path, 0, &b2), LB_OK);
    assert_string_equal(lb_trainer_config(b2)->recipe, recipe);
    assert_memory_equal(&lb_trainer_config(b2)->recipe_opt, &c.recipe_opt, sizeof c.recipe_opt);
    for (int64_t s = n / 2; s < n; s++) {
        lb_step_info info;
        assert_int_equal(lb_trainer_step(NULL, b2, &info), LB_OK);
        lb[s] = info.loss;
    }
    for (int64_t s = 0; s < n; s++) assert_true(la[s] == lb[s]);
    lb_model *ma = lb_trainer_model(a), *mb = lb_trainer_model(b2);
    assert_memory_equal(lb_model_params(ma), lb_model_params(mb),
                        (size_t)lb_model_num_params(ma) * sizeof(float));
    lb_tensor *sa = NULL, *sb = NULL;
    assert_int_equal(lb_recipe_get_state(lb_trainer_recipe(a), NULL, &sa), LB_OK);
    assert_int_equal(lb_recipe_get_state(lb_trainer_recipe(b2), NULL, &sb), LB_OK);
    assert_int_equal(sa->numel, sb->numel);
    assert_memory_equal(sa->data, sb->data, sa->nbytes);
    lb_tensor_free(sa);
    lb_tensor_free(sb);
    lb_trainer_free(a);
    lb_trainer_free(b2);
}

static void test_resume(void **state)
{
    (void)state;
    const char *hq[] = {"lsq-cold-steps", "2", NULL};
    const char *luq[] = {"fnt-steps", "3", "smp", "2", NULL};
    resume_case("hq", hq, 8);
    resume_case("luq", luq, 8); /* the FNT phase starts after the resume */
    resume_case("int8", NULL, 6);
    /* a quantized checkpoint without its recipe state cannot be resumed */
    char path[512], bad[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "recipes_resume.safetensors");
    lb_test_path(bad, sizeof bad, lb_test_tmp_dir(), "recipes_nostate.safetensors");
    lb_safetensors *st = NULL;
    assert_int_equal(lb_safetensors_read(NULL, path, &st), LB_OK);
    lb_safetensors_writer *w = NULL;
    assert_int_equal(lb_safetensors_writer_create(NULL, &w), LB_OK);
    for (size_t i = 0; i < lb_safetensors_metadata_count(st); i++) {
        const char *k = lb_safetensors_metadata_key(st, i);
        const char *v = lb_safetensors_metadata(st, k);
        assert_int_equal(lb_safetensors_writer_set_metadata(NULL, w, k, v), LB_OK);
    }
    for (size_t i = 0; i < lb_safetensors_count(st); i++) {
        const char *name = lb_safetensors_name(st, i);
        if (strcmp(name, "recipe.state") == 0) continue;
        lb_tensor *t = NULL;
        assert_int_equal(lb_safetensors_get(NULL, st, name, &t), LB_OK);
        assert_int_equal(lb_safetensors_writer_add(NULL, w, name, t), LB_OK);
        lb_tensor_free(t);
    }
    assert_int_equal(lb_safetensors_writer_save(NULL, w, bad), LB_OK);
    lb_safetensors_writer_free(w);
    lb_safetensors_free(st);
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_trainer *tr = NULL;
    assert_int_equal(lb_trainer_resume(ctx, bad, 0, &tr), LB_ERR_FORMAT);
    assert_non_null(strstr(lb_ctx_error(ctx), "recipe.state"));
    /* nor evaluated with its recipe */
    const lb_model_options opts = {0, 0, 0};
    lb_ptq_model *qm = NULL;
    assert_int_equal(lb_ptq_model_load_recipe(ctx, bad, lb_backend_ref(), &opts, &qm),
                     LB_ERR_FORMAT);
    assert_null(qm);
    assert_non_null(strstr(lb_ctx_error(ctx), "recipe.state"));
    lb_ctx_free(ctx);
}

/* Training's evaluation after n steps == the saved checkpoint loaded with
 * its recipe and evaluated, bit for bit; float32 layers give another loss. */
static void eval_case(const char *recipe, const char *const *kv, int64_t n)
{
    lb_train_config c;
    tiny_config(&c, recipe, kv);
    c.steps = n;
    c.warmup_steps = 2;
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "recipes_eval.safetensors");
    lb_trainer *tr = NULL;
    assert_int_equal(lb_trainer_create(NULL, &c, &tr), LB_OK);
    for (int64_t s = 0; s < n; s++) {
        lb_step_info info;
        assert_int_equal(lb_trainer_step(NULL, tr, &info), LB_OK);
    }
    lb_eval_result want, got, fp;
    assert_int_equal(lb_trainer_evaluate(NULL, tr, &want), LB_OK);
    assert_int_equal(lb_trainer_save(NULL, tr, path), LB_OK);
    lb_trainer_free(tr);
    const lb_backend *be = NULL;
    assert_int_equal(lb_backend_find(NULL, c.backend, &be), LB_OK);
    const lb_model_options opts = {0, 0, 0};
    lb_ptq_model *qm = NULL;
    assert_int_equal(lb_ptq_model_load_recipe(NULL, path, be, &opts, &qm), LB_OK);
    assert_int_equal(lb_evaluate(NULL, lb_ptq_model_get(qm), c.data, c.val_fraction, c.eval_limit,
                                 &got),
                     LB_OK);
    lb_ptq_model_free(qm);
    assert_true(got.loss == want.loss);
    assert_true(got.accuracy == want.accuracy);
    assert_int_equal(lb_ptq_model_load(NULL, path, be, &opts, &qm), LB_OK);
    assert_int_equal(lb_evaluate(NULL, lb_ptq_model_get(qm), c.data, c.val_fraction, c.eval_limit,
                                 &fp),
                     LB_OK);
    lb_ptq_model_free(qm);
    assert_true(fp.loss != want.loss);
}

static void test_eval_checkpoint(void **state)
{
    (void)state;
    const char *hq[] = {"lsq-cold-steps", "2", NULL};
    const char *luq[] = {"fnt-steps", "3", NULL};
    eval_case("hq", hq, 6);
    eval_case("luq", luq, 6); /* evaluated in the FNT phase's forward */
    eval_case("luq", NULL, 4);
    eval_case("int8", NULL, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hq_matches_oracle),
        cmocka_unit_test(test_luq_matches_oracle),
        cmocka_unit_test(test_int8_by_hand),
        cmocka_unit_test(test_cpu_equals_ref),
        cmocka_unit_test(test_cpu_quant_hooks),
        cmocka_unit_test(test_eval_does_not_disturb),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_stats_and_errors),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_fnt_schedule),
        cmocka_unit_test(test_tiny_training),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_eval_checkpoint),
    };
    return LB_RUN_TESTS(tests);
}

/* tests/test_gptq.c — GPTQ / OPTQ of ref/gptq.c: PyTorch fixtures of the
 * authors' fasterquant loop (tests/gen/gptq_fixtures.py), GPTQ beats RTN on
 * the layer objective for correlated inputs (over seeds, 5 standard errors),
 * an identity / diagonal Hessian gives RTN, act-order's permutation is undone
 * (equivariance under column permutations), dead columns, group scales, the
 * power grid at a = 1 equals the uniform grid, block-size invariance, the
 * loss identity ½ Σ d^T H d, the Hessian accumulator, and edge cases (zeros,
 * NaN/Inf, singular H, Cholesky failure). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/npy.h"
#include "lowbit/rng.h"
#include "lowbit/tensor.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/ref/weight_quant.h"
#include "lowbit/ref/gptq.h"
#include "test_fixture.h"

static lb_tensor *load(const char *name) { return lb_test_fixture("gptq", name, 0); }

/* Standard normal from the counter RNG (Box-Muller), stream `s`. */
static double gauss(uint64_t seed, uint64_t s, uint64_t i)
{
    double u1 = lb_rng_uniform_f64(seed, s, 2 * i) + 0x1p-54, u2 = lb_rng_uniform_f64(seed, s, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Correlated inputs X (n, C): iid noise plus a rank-6 shared part, with
 * log-normal column scales (so that H's diagonal varies). */
static void correlated_inputs(uint64_t seed, int n, int C, float *X)
{
    enum { RANK = 6 };
    double *u = malloc((size_t)n * RANK * sizeof(double)), *v = malloc((size_t)RANK * C * sizeof(double));
    double *col = malloc((size_t)C * sizeof(double));
    for (int i = 0; i < n * RANK; i++) u[i] = gauss(seed, 1, (uint64_t)i);
    for (int i = 0; i < RANK * C; i++) v[i] = gauss(seed, 2, (uint64_t)i);
    for (int k = 0; k < C; k++) col[k] = exp(0.5 * gauss(seed, 3, (uint64_t)k));
    for (int t = 0; t < n; t++)
        for (int k = 0; k < C; k++) {
            double low = 0.0;
            for (int r = 0; r < RANK; r++) low += u[t * RANK + r] * v[r * C + k];
            X[t * C + k] = (float)((gauss(seed, 4, (uint64_t)(t * C + k)) + 0.8 * low) * col[k]);
        }
    free(u);
    free(v);
    free(col);
}

static void gauss_weights(uint64_t seed, int R, int C, float *W)
{
    for (int i = 0; i < R * C; i++) W[i] = (float)(0.05 * gauss(seed, 5, (uint64_t)i));
}

static double *hessian_of(int n, int C, const float *X)
{
    lb_gptq_hessian *h = NULL;
    assert_int_equal(lb_gptq_hessian_create(NULL, C, &h), LB_OK);
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, h, n, X), LB_OK);
    double *H = malloc((size_t)C * C * sizeof(double));
    assert_int_equal(lb_gptq_hessian_get(NULL, h, H), LB_OK);
    lb_gptq_hessian_free(h);
    return H;
}

static double rel_error(int n, int R, int C, const float *X, const float *W, const float *What)
{
    double e, y;
    assert_int_equal(lb_weight_recon_error_ref(NULL, n, R, C, X, W, What, &e, &y), LB_OK);
    return lb_weight_relative_error(e, y);
}

/* All outputs of one GPTQ run, sized for (R, C). */
typedef struct run {
    int32_t *codes, *zero, *gidx, *perm;
    float *scale, *what;
    lb_gptq_info info;
} run;

static run run_alloc(int R, int C)
{
    run r;
    r.codes = calloc((size_t)R * C, sizeof(int32_t));
    r.zero = calloc((size_t)R * C + 1, sizeof(int32_t));
    r.scale = calloc((size_t)R * C + 1, sizeof(float));
    r.what = calloc((size_t)R * C, sizeof(float));
    r.gidx = calloc((size_t)C, sizeof(int32_t));
    r.perm = calloc((size_t)C, sizeof(int32_t));
    return r;
}

static void run_free(run *r)
{
    free(r->codes);
    free(r->zero);
    free(r->scale);
    free(r->what);
    free(r->gidx);
    free(r->perm);
}

static lb_status gptq(const lb_gptq_config *c, int R, int C, const float *W, const double *H, run *r)
{
    return lb_gptq_quantize_ref(NULL, c, R, C, W, H, r->codes, r->scale, r->zero, r->what, r->gidx, r->perm,
                                &r->info);
}

static void assert_codes_equal(const int32_t *a, const int32_t *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            fprintf(stderr, "%s: mismatch at %lld: %d vs %d\n", what, (long long)i, (int)a[i], (int)b[i]);
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

static void assert_rel(double a, double b, double tol, const char *what)
{
    if (!(fabs(a - b) <= tol * fabs(b))) {
        fprintf(stderr, "%s: %.17g vs %.17g (rel %g > %g)\n", what, a, b, fabs(a - b) / fabs(b), tol);
        fail();
    }
}

/* ---- PyTorch fixtures ---------------------------------------------------- */

typedef struct gptq_case {
    const char *name;
    int bits, sym;
    lb_wq_granularity gran;
    int64_t group;
    lb_range_method range;
    lb_wq_grid grid;
    double a;
    int batches;
    int64_t block;
    int act, stat;
} gptq_case;

/* Must match GPTQ_CASES in tests/gen/gptq_fixtures.py. */
static const gptq_case gptq_cases[] = {
    {"c0", 4, 1, LB_WQ_CHANNEL, 128, LB_RANGE_MINMAX, LB_WQ_GRID_UNIFORM, 1.0, 2, 32, 0, 0},
    {"c1", 3, 0, LB_WQ_GROUP, 24, LB_RANGE_MINMAX, LB_WQ_GRID_UNIFORM, 1.0, 2, 32, 1, 0},
    {"c2", 4, 1, LB_WQ_GROUP, 16, LB_RANGE_MINMAX, LB_WQ_GRID_UNIFORM, 1.0, 1, 32, 1, 1},
    {"c3", 3, 1, LB_WQ_CHANNEL, 128, LB_RANGE_MINMAX, LB_WQ_GRID_POWER, 0.6, 3, 128, 0, 0},
    {"c4", 4, 1, LB_WQ_TENSOR, 128, LB_RANGE_MSE, LB_WQ_GRID_UNIFORM, 1.0, 1, 16, 0, 0},
    {"c5", 4, 1, LB_WQ_GROUP, 32, LB_RANGE_MINMAX, LB_WQ_GRID_POWER, 0.5, 2, 64, 1, 0},
};

/* Codes, zero points, g_idx and perm exact (the generator keeps every
 * quantized value > 1e-5 away from a rounding boundary, more than the float32
 * ulp that the different double summation orders could move it); scales and
 * Ŵ within 1 float32 ulp (2.4e-7 relative) for the same reason plus libm pow;
 * ERR, loss and λ within 1e-9 relative (double arithmetic in other orders). */
static void test_gptq_fixtures(void **state)
{
    (void)state;
    char name[64];
    for (size_t k = 0; k < sizeof gptq_cases / sizeof gptq_cases[0]; k++) {
        const gptq_case *gc = &gptq_cases[k];
        snprintf(name, sizeof name, "%s_W", gc->name);
        lb_tensor *W = load(name);
        const int R = (int)W->shape[0], C = (int)W->shape[1];
        lb_gptq_hessian *h = NULL;
        assert_int_equal(lb_gptq_hessian_create(NULL, C, &h), LB_OK);
        lb_tensor *X[3] = {NULL, NULL, NULL};
        for (int b = 0; b < gc->batches; b++) {
            snprintf(name, sizeof name, "%s_X%d", gc->name, b);
            X[b] = load(name);
            assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, h, (int64_t)X[b]->shape[0], lb_tensor_f32(X[b])),
                             LB_OK);
        }
        double *H = malloc((size_t)C * C * sizeof(double));
        assert_int_equal(lb_gptq_hessian_get(NULL, h, H), LB_OK);
        if (gc->batches > 2) { /* the reference's running rescale agrees to double rounding */
            snprintf(name, sizeof name, "%s_H", gc->name);
            lb_tensor *eh = load(name);
            for (int i = 0; i < C * C; i++) assert_true(fabs(H[i] - lb_tensor_f64(eh)[i]) <= 1e-12 * (1.0 + fabs(H[i])));
            lb_tensor_free(eh);
        }
        lb_gptq_config c = lb_gptq_config_default();
        c.quant.bits = gc->bits;
        c.quant.symmetric = gc->sym;
        c.quant.granularity = gc->gran;
        c.quant.group_size = gc->group;
        c.quant.range.method = gc->range;
        c.quant.grid = gc->grid;
        c.quant.power_a = gc->a;
        c.block_size = gc->block;
        c.act_order = gc->act;
        c.static_groups = gc->stat;
        run r = run_alloc(R, C);
        assert_int_equal(gptq(&c, R, C, lb_tensor_f32(W), H, &r), LB_OK);
        int64_t rows, cols;
        assert_int_equal(lb_weight_scale_shape(NULL, &c.quant, R, C, &rows, &cols), LB_OK);

        const char *parts[] = {"codes", "what", "scale", "zero", "gidx", "perm", "info"};
        lb_tensor *e[7];
        for (int p = 0; p < 7; p++) {
            snprintf(name, sizeof name, "%s_%s", gc->name, parts[p]);
            e[p] = load(name);
        }
        assert_int_equal((int64_t)e[2]->numel, rows * cols);
        assert_codes_equal(r.codes, lb_tensor_s32(e[0]), (int64_t)R * C, gc->name);
        assert_codes_equal(r.zero, lb_tensor_s32(e[3]), rows * cols, gc->name);
        assert_codes_equal(r.perm, lb_tensor_s32(e[5]), C, gc->name);
        if (gc->gran == LB_WQ_GROUP) assert_codes_equal(r.gidx, lb_tensor_s32(e[4]), C, gc->name);
        assert_close(r.scale, lb_tensor_f32(e[2]), rows * cols, 1.2e-7, gc->name);
        assert_close(r.what, lb_tensor_f32(e[1]), (int64_t)R * C, 2.4e-7, gc->name);

        /* Ŵ = dequantize(codes, scales, zeros, g_idx) exactly. */
        float *d = malloc((size_t)R * C * sizeof(float));
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c.quant, R, C, r.codes, r.scale, r.zero, r.gidx, d), LB_OK);
        for (int i = 0; i < R * C; i++) assert_true(d[i] == r.what[i]);
        free(d);

        double e2 = 0.0, y2 = 0.0;
        for (int b = 0; b < gc->batches; b++) {
            double eb, yb;
            assert_int_equal(lb_weight_recon_error_ref(NULL, (int64_t)X[b]->shape[0], R, C, lb_tensor_f32(X[b]),
                                                       lb_tensor_f32(W), r.what, &eb, &yb),
                             LB_OK);
            e2 += eb;
            y2 += yb;
        }
        const double *info = lb_tensor_f64(e[6]);
        assert_rel(lb_weight_relative_error(e2, y2), info[0], 1e-9, gc->name);
        assert_rel(r.info.loss, info[1], 1e-9, gc->name);
        assert_rel(r.info.damp, info[2], 1e-12, gc->name);

        for (int p = 0; p < 7; p++) lb_tensor_free(e[p]);
        for (int b = 0; b < 3; b++) lb_tensor_free(X[b]);
        run_free(&r);
        free(H);
        lb_gptq_hessian_free(h);
        lb_tensor_free(W);
    }
}

/* ---- GPTQ never worse than RTN on the layer objective --------------------- */

/* For S seeds, correlated X (n = 192, C_in = 48), Gaussian W (24, 48): the
 * ratio ρ_s = ERR(GPTQ) / ERR(RTN) on the calibration inputs. The mean ratio
 * plus 5 standard errors must stay below 1 (a broken update — wrong sign,
 * wrong factor, wrong order — gives ratios >= 1). Uniform W4, W3 and the power
 * grid at W3, a = 0.6, per channel and per group (g = 16, act-order). */
static void test_gptq_beats_rtn(void **state)
{
    (void)state;
    enum { S = 10, N = 192, R = 24, C = 48 };
    static float X[N * C], W[R * C], wr[R * C], sr[R * C];
    static int32_t qr[R * C], zr[R * C];
    struct {
        int bits;
        lb_wq_granularity gran;
        lb_wq_grid grid;
        int act;
    } cfgs[] = {
        {4, LB_WQ_CHANNEL, LB_WQ_GRID_UNIFORM, 0},
        {3, LB_WQ_CHANNEL, LB_WQ_GRID_UNIFORM, 1},
        {3, LB_WQ_CHANNEL, LB_WQ_GRID_POWER, 0},
        {4, LB_WQ_GROUP, LB_WQ_GRID_UNIFORM, 1},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        lb_gptq_config c = lb_gptq_config_default();
        c.quant.bits = cfgs[k].bits;
        c.quant.granularity = cfgs[k].gran;
        c.quant.group_size = 16;
        c.quant.grid = cfgs[k].grid;
        c.quant.power_a = cfgs[k].grid == LB_WQ_GRID_POWER ? 0.6 : 1.0;
        c.act_order = cfgs[k].act;
        double sum = 0.0, sum2 = 0.0, worst = 0.0;
        for (int s = 0; s < S; s++) {
            correlated_inputs((uint64_t)(100 + s), N, C, X);
            gauss_weights((uint64_t)(200 + s), R, C, W);
            double *H = hessian_of(N, C, X);
            run r = run_alloc(R, C);
            assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
            assert_int_equal(lb_weight_rtn_ref(NULL, &c.quant, R, C, W, qr, sr, zr, wr), LB_OK);
            const double rho = rel_error(N, R, C, X, W, r.what) / rel_error(N, R, C, X, W, wr);
            sum += rho;
            sum2 += rho * rho;
            if (rho > worst) worst = rho;
            run_free(&r);
            free(H);
        }
        const double mean = sum / S, sd = sqrt(fmax(0.0, (sum2 - S * mean * mean) / (S - 1)));
        printf("# GPTQ/RTN error ratio, config %zu: mean %.4f, sd %.4f, worst %.4f\n", k, mean, sd, worst);
        assert_true(mean + 5.0 * sd / sqrt((double)S) < 1.0);
    }
}

/* ---- identity-like Hessians give RTN ------------------------------------- */

/* Sylvester Hadamard rows (n = C = 64, entries ±1): X^T X = 64 I, H = 2 I. */
static void hadamard_inputs(int C, float *X, const double *col_scale)
{
    for (int t = 0; t < C; t++)
        for (int k = 0; k < C; k++)
            X[t * C + k] = (float)((__builtin_popcount((unsigned)(t & k)) & 1 ? -1.0 : 1.0) *
                                   (col_scale ? col_scale[k] : 1.0));
}

/* H = 2 I: no error is propagated (U is diagonal), so GPTQ equals RTN bit for
 * bit for every granularity, grid and range, with and without act-order (all
 * H_jj tie, so the order is the identity). */
static void test_identity_hessian_equals_rtn(void **state)
{
    (void)state;
    enum { R = 8, C = 64 };
    static float X[C * C], W[R * C], wr[R * C];
    static int32_t qr[R * C], zr[R * C];
    static float sr[R * C];
    hadamard_inputs(C, X, NULL);
    double *H = hessian_of(C, C, X);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) assert_true(H[i * C + j] == (i == j ? 2.0 : 0.0));
    gauss_weights(9, R, C, W);
    W[3] = 0.4f;
    for (int gi = 0; gi < 3; gi++) {
        for (int mode = 0; mode < 4; mode++) {
            for (int act = 0; act <= 1; act++) {
                lb_gptq_config c = lb_gptq_config_default();
                c.quant.bits = 3;
                c.quant.granularity = (lb_wq_granularity)gi;
                c.quant.group_size = 16;
                c.quant.symmetric = mode != 1;
                c.quant.range.method = mode == 3 ? LB_RANGE_MSE : LB_RANGE_MINMAX;
                c.quant.grid = mode == 2 ? LB_WQ_GRID_POWER : LB_WQ_GRID_UNIFORM;
                c.quant.power_a = 0.6;
                c.act_order = act;
                c.block_size = 24;
                run r = run_alloc(R, C);
                assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
                assert_int_equal(lb_weight_rtn_ref(NULL, &c.quant, R, C, W, qr, sr, zr, wr), LB_OK);
                assert_codes_equal(r.codes, qr, R * C, "identity H");
                for (int i = 0; i < R * C; i++) assert_true(r.what[i] == wr[i]);
                int64_t rows, cols;
                assert_int_equal(lb_weight_scale_shape(NULL, &c.quant, R, C, &rows, &cols), LB_OK);
                for (int64_t i = 0; i < rows * cols; i++) assert_true(r.scale[i] == sr[i]);
                for (int j = 0; j < C; j++) assert_int_equal(r.perm[j], j);
                assert_rel(r.info.damp, 0.02, 1e-15, "damp");
                run_free(&r);
            }
        }
    }
    free(H);
}

/* H = 2 diag(c²) with distinct c: act-order processes columns by decreasing
 * c and, U being diagonal, the codes put back in original order equal RTN's;
 * PERM is the sort of c. */
static void test_act_order_diagonal(void **state)
{
    (void)state;
    enum { R = 5, C = 32 };
    static float X[C * C], W[R * C], wr[R * C], sr[R];
    static int32_t qr[R * C];
    double cs[C];
    for (int k = 0; k < C; k++) cs[k] = 1.0 + (double)((k * 13) % C) / 8.0; /* a permutation of 1..4.875 */
    hadamard_inputs(C, X, cs);
    double *H = hessian_of(C, C, X);
    gauss_weights(17, R, C, W);
    lb_gptq_config c = lb_gptq_config_default();
    c.act_order = 1;
    c.block_size = 7;
    run r = run_alloc(R, C);
    assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
    assert_int_equal(lb_weight_rtn_ref(NULL, &c.quant, R, C, W, qr, sr, NULL, wr), LB_OK);
    assert_codes_equal(r.codes, qr, R * C, "diagonal H act-order");
    for (int j = 1; j < C; j++) assert_true(cs[r.perm[j - 1]] > cs[r.perm[j]]);
    run_free(&r);
    free(H);
}

/* Permuting W's and X's columns by π permutes GPTQ's act-order output by π
 * exactly (same processing order, bitwise the same matrices): the
 * permutation is undone correctly. */
static void test_act_order_equivariance(void **state)
{
    (void)state;
    enum { N = 128, R = 10, C = 40 };
    static float X[N * C], Xp[N * C], W[R * C], Wp[R * C];
    int pi[C];
    for (int k = 0; k < C; k++) pi[k] = (k * 17 + 5) % C; /* 17 is coprime to 40 */
    correlated_inputs(33, N, C, X);
    gauss_weights(34, R, C, W);
    for (int t = 0; t < N; t++)
        for (int k = 0; k < C; k++) Xp[t * C + k] = X[t * C + pi[k]];
    for (int o = 0; o < R; o++)
        for (int k = 0; k < C; k++) Wp[o * C + k] = W[o * C + pi[k]];
    double *H = hessian_of(N, C, X), *Hp = hessian_of(N, C, Xp);
    for (int gi = 1; gi <= 2; gi++) {
        lb_gptq_config c = lb_gptq_config_default();
        c.quant.bits = 3;
        c.quant.granularity = (lb_wq_granularity)gi;
        c.quant.group_size = 8; /* dynamic groups follow the processing order, so they permute too */
        c.act_order = 1;
        c.block_size = 16;
        run a = run_alloc(R, C), b = run_alloc(R, C);
        assert_int_equal(gptq(&c, R, C, W, H, &a), LB_OK);
        assert_int_equal(gptq(&c, R, C, Wp, Hp, &b), LB_OK);
        int identity = 1;
        for (int j = 0; j < C; j++) identity &= a.perm[j] == j;
        assert_false(identity); /* act-order did reorder */
        for (int o = 0; o < R; o++)
            for (int k = 0; k < C; k++) {
                assert_int_equal(b.codes[o * C + k], a.codes[o * C + pi[k]]);
                assert_true(b.what[o * C + k] == a.what[o * C + pi[k]]);
            }
        for (int j = 0; j < C; j++) assert_int_equal(pi[b.perm[j]], a.perm[j]);
        for (int k = 0; k < C; k++) assert_int_equal(b.gidx[k], a.gidx[pi[k]]);
        assert_true(a.info.loss == b.info.loss);
        run_free(&a);
        run_free(&b);
    }
    free(H);
    free(Hp);
}

/* ---- dead columns ---------------------------------------------------------- */

/* Inputs that are always 0 (columns 2, 9, 30): those weights become exactly 0,
 * the count is reported, and with percdamp = 0 the other columns are
 * quantized exactly as the layer without the dead inputs (the dead rows and
 * columns of H decouple; their weights are kept small so that the per-channel
 * ranges agree). */
static void test_dead_columns(void **state)
{
    (void)state;
    enum { N = 96, R = 6, C = 36, CL = 33 };
    static float X[N * C], XL[N * CL], W[R * C], WL[R * CL];
    const int dead[3] = {2, 9, 30};
    correlated_inputs(41, N, C, X);
    gauss_weights(42, R, C, W);
    for (int t = 0; t < N; t++)
        for (int k = 0; k < 3; k++) X[t * C + dead[k]] = 0.0f;
    for (int o = 0; o < R; o++)
        for (int k = 0; k < 3; k++) W[o * C + dead[k]] *= 0.01f;
    int live[CL], nl = 0;
    for (int k = 0; k < C; k++)
        if (k != 2 && k != 9 && k != 30) live[nl++] = k;
    for (int t = 0; t < N; t++)
        for (int k = 0; k < CL; k++) XL[t * CL + k] = X[t * C + live[k]];
    for (int o = 0; o < R; o++)
        for (int k = 0; k < CL; k++) WL[o * CL + k] = W[o * C + live[k]];
    double *H = hessian_of(N, C, X), *HL = hessian_of(N, CL, XL);
    for (int act = 0; act <= 1; act++) {
        lb_gptq_config c = lb_gptq_config_default();
        c.act_order = act;
        c.block_size = 8;
        run a = run_alloc(R, C), b = run_alloc(R, CL);
        assert_int_equal(gptq(&c, R, C, W, H, &a), LB_OK);
        assert_int_equal(a.info.dead_columns, 3);
        for (int o = 0; o < R; o++)
            for (int k = 0; k < 3; k++) {
                assert_true(a.what[o * C + dead[k]] == 0.0f);
                assert_int_equal(a.codes[o * C + dead[k]], 0);
            }
        for (int i = 0; i < R * C; i++) assert_true(isfinite(a.what[i]));
        c.percdamp = 0.0;
        assert_int_equal(gptq(&c, R, C, W, H, &a), LB_OK);
        assert_int_equal(gptq(&c, R, CL, WL, HL, &b), LB_OK);
        assert_int_equal(b.info.dead_columns, 0);
        for (int o = 0; o < R; o++)
            for (int k = 0; k < CL; k++) assert_int_equal(a.codes[o * C + live[k]], b.codes[o * CL + k]);
        run_free(&a);
        run_free(&b);
    }
    free(H);
    free(HL);
}

/* ---- group scales ------------------------------------------------------- */

/* Static groups are RTN's per-group scales (from the original W); dynamic
 * groups: g_idx is c / g without act-order and g consecutive processing steps
 * with it (each group has g columns, the last C mod g); a group whose
 * parameters are computed at a block start (g = B) sees the updated W, so its
 * scales differ from RTN's while the first group's agree. */
static void test_group_scales(void **state)
{
    (void)state;
    enum { N = 160, R = 7, C = 52, G = 16, NG = 4 };
    static float X[N * C], W[R * C], wr[R * C], sr[R * NG];
    static int32_t qr[R * C];
    correlated_inputs(51, N, C, X);
    gauss_weights(52, R, C, W);
    double *H = hessian_of(N, C, X);
    lb_gptq_config c = lb_gptq_config_default();
    c.quant.granularity = LB_WQ_GROUP;
    c.quant.group_size = G;
    c.block_size = G;
    assert_int_equal(lb_weight_rtn_ref(NULL, &c.quant, R, C, W, qr, sr, NULL, wr), LB_OK);
    for (int act = 0; act <= 1; act++) {
        c.act_order = act;
        c.static_groups = 1;
        run r = run_alloc(R, C);
        assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
        for (int i = 0; i < R * NG; i++) assert_true(r.scale[i] == sr[i]);
        for (int k = 0; k < C; k++) assert_int_equal(r.gidx[k], k / G);

        c.static_groups = 0;
        assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
        int count[NG] = {0};
        for (int k = 0; k < C; k++) {
            assert_true(r.gidx[k] >= 0 && r.gidx[k] < NG);
            count[r.gidx[k]]++;
            if (!act) assert_int_equal(r.gidx[k], k / G);
        }
        for (int g = 0; g < NG; g++) assert_int_equal(count[g], g < NG - 1 ? G : C - (NG - 1) * G);
        for (int j = 0; j < C; j++) assert_int_equal(r.gidx[r.perm[j]], j / G);
        if (!act) {
            int later_differ = 0;
            for (int o = 0; o < R; o++) {
                assert_true(r.scale[o * NG] == sr[o * NG]);
                for (int g = 1; g < NG; g++) later_differ |= r.scale[o * NG + g] != sr[o * NG + g];
            }
            assert_true(later_differ);
        }
        float *d = malloc((size_t)R * C * sizeof(float));
        assert_int_equal(lb_weight_dequantize_ref(NULL, &c.quant, R, C, r.codes, r.scale, r.zero, r.gidx, d), LB_OK);
        for (int i = 0; i < R * C; i++) assert_true(d[i] == r.what[i]);
        free(d);
        run_free(&r);
    }
    free(H);
}

/* ---- power grid at a = 1 is the uniform grid ---------------------------- */

static void test_power_a1_equals_uniform(void **state)
{
    (void)state;
    enum { N = 128, R = 9, C = 44 };
    static float X[N * C], W[R * C];
    correlated_inputs(61, N, C, X);
    gauss_weights(62, R, C, W);
    double *H = hessian_of(N, C, X);
    for (int bits = 3; bits <= 4; bits++) {
        for (int gi = 0; gi < 3; gi++) {
            lb_gptq_config c = lb_gptq_config_default();
            c.quant.bits = bits;
            c.quant.granularity = (lb_wq_granularity)gi;
            c.quant.group_size = 12;
            c.act_order = gi == 2;
            c.block_size = 20;
            run u = run_alloc(R, C), p = run_alloc(R, C);
            assert_int_equal(gptq(&c, R, C, W, H, &u), LB_OK);
            c.quant.grid = LB_WQ_GRID_POWER;
            c.quant.power_a = 1.0;
            assert_int_equal(gptq(&c, R, C, W, H, &p), LB_OK);
            assert_codes_equal(p.codes, u.codes, R * C, "power a=1");
            for (int i = 0; i < R * C; i++) assert_true(p.what[i] == u.what[i]);
            int64_t rows, cols;
            assert_int_equal(lb_weight_scale_shape(NULL, &c.quant, R, C, &rows, &cols), LB_OK);
            for (int64_t i = 0; i < rows * cols; i++) assert_true(lb_power_delta(p.scale[i], bits) == u.scale[i]);
            assert_true(p.info.loss == u.info.loss);
            /* a = 0.6 is a different grid */
            c.quant.power_a = 0.6;
            assert_int_equal(gptq(&c, R, C, W, H, &p), LB_OK);
            int differ = 0;
            for (int i = 0; i < R * C; i++) differ |= p.codes[i] != u.codes[i];
            assert_true(differ);
            run_free(&u);
            run_free(&p);
        }
    }
    free(H);
}

/* ---- block size, loss identity, Hessian error ---------------------------- */

/* The lazy batch updates only regroup the same sums: codes do not depend on B
 * (per channel; here no value is near a rounding boundary). The loss is
 * ½ Σ_r d_r^T (H + λI) d_r (gptq.h), and the Hessian form of the error equals
 * the one from X. */
static void test_blocksize_and_loss(void **state)
{
    (void)state;
    enum { N = 200, R = 8, C = 70 };
    static float X[N * C], W[R * C];
    correlated_inputs(71, N, C, X);
    gauss_weights(72, R, C, W);
    double *H = hessian_of(N, C, X);
    lb_gptq_config c = lb_gptq_config_default();
    c.quant.bits = 3;
    c.act_order = 1;
    run ref = run_alloc(R, C);
    assert_int_equal(gptq(&c, R, C, W, H, &ref), LB_OK);
    const int64_t blocks[] = {1, 3, 16, 64, 1000};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        c.block_size = blocks[b];
        run r = run_alloc(R, C);
        assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
        assert_codes_equal(r.codes, ref.codes, R * C, "block size");
        assert_rel(r.info.loss, ref.info.loss, 1e-10, "loss vs B");
        run_free(&r);
    }
    /* loss = ½ Σ d^T (H + λI) d */
    double quad = 0.0;
    for (int o = 0; o < R; o++)
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) {
                double di = (double)W[o * C + i] - ref.what[o * C + i], dj = (double)W[o * C + j] - ref.what[o * C + j];
                quad += di * (H[i * C + j] + (i == j ? ref.info.damp : 0.0)) * dj;
            }
    assert_rel(ref.info.loss, 0.5 * quad, 1e-9, "loss identity");
    double eh, yh, ex, yx;
    assert_int_equal(lb_gptq_hessian_error_ref(NULL, R, C, H, W, ref.what, &eh, &yh), LB_OK);
    assert_int_equal(lb_weight_recon_error_ref(NULL, N, R, C, X, W, ref.what, &ex, &yx), LB_OK);
    assert_rel(eh, 2.0 * ex / N, 1e-10, "hessian error");
    assert_rel(yh, 2.0 * yx / N, 1e-10, "hessian ref");
    run_free(&ref);
    free(H);
}

/* ---- the Hessian accumulator -------------------------------------------- */

static void test_hessian_accumulator(void **state)
{
    (void)state;
    enum { N = 90, C = 20 };
    static float X[N * C];
    correlated_inputs(81, N, C, X);
    lb_gptq_hessian *a = NULL, *b = NULL;
    assert_int_equal(lb_gptq_hessian_create(NULL, C, &a), LB_OK);
    assert_int_equal(lb_gptq_hessian_create(NULL, C, &b), LB_OK);
    double Ha[C * C], Hb[C * C];
    assert_int_equal(lb_gptq_hessian_get(NULL, a, Ha), LB_ERR_ARG); /* no rows yet */
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, a, N, X), LB_OK);
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, b, 30, X), LB_OK);
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, b, 0, NULL), LB_OK);
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, b, 60, X + 30 * C), LB_OK);
    assert_int_equal(lb_gptq_hessian_get(NULL, a, Ha), LB_OK);
    assert_int_equal(lb_gptq_hessian_get(NULL, b, Hb), LB_OK);
    assert_int_equal(b->n_samples, N);
    for (int i = 0; i < C * C; i++) assert_true(Ha[i] == Hb[i]); /* same sums, same order */
    /* H = 2 X^T X / n, symmetric, direct check of one entry */
    double s = 0.0;
    for (int t = 0; t < N; t++) s += (double)X[t * C + 3] * (double)X[t * C + 7];
    assert_rel(Ha[3 * C + 7], 2.0 * s / N, 1e-14, "H entry");
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) assert_true(Ha[i * C + j] == Ha[j * C + i]);
    /* a non-finite batch is rejected and leaves the state unchanged */
    float bad[C];
    memcpy(bad, X, sizeof bad);
    bad[4] = INFINITY;
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, a, 1, bad), LB_ERR_NUMERIC);
    bad[4] = NAN;
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, a, 1, bad), LB_ERR_NUMERIC);
    assert_int_equal(a->n_samples, N);
    assert_int_equal(lb_gptq_hessian_get(NULL, a, Hb), LB_OK);
    for (int i = 0; i < C * C; i++) assert_true(Ha[i] == Hb[i]);
    lb_gptq_hessian_free(a);
    lb_gptq_hessian_free(b);
    lb_gptq_hessian_free(NULL);
    lb_gptq_hessian *z = NULL;
    assert_int_equal(lb_gptq_hessian_create(NULL, 0, &z), LB_ERR_ARG);
    assert_null(z);
}

/* ---- edge cases ------------------------------------------------------------ */

static void test_edge_cases(void **state)
{
    (void)state;
    enum { N = 40, R = 4, C = 12 };
    static float X[N * C], W[R * C];
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    correlated_inputs(91, N, C, X);
    double *H = hessian_of(N, C, X);
    lb_gptq_config c = lb_gptq_config_default();
    run r = run_alloc(R, C);

    /* zeros */
    memset(W, 0, sizeof W);
    for (int sym = 0; sym <= 1; sym++) {
        c.quant.symmetric = sym;
        assert_int_equal(gptq(&c, R, C, W, H, &r), LB_OK);
        for (int i = 0; i < R * C; i++) {
            assert_true(r.what[i] == 0.0f);
            assert_int_equal(r.codes[i], r.zero[i / C]);
        }
        assert_true(r.info.loss == 0.0);
    }
    c.quant.symmetric = 1;

    /* NaN / Inf */
    gauss_weights(92, R, C, W);
    W[5] = NAN;
    assert_int_equal(gptq(&c, R, C, W, H, &r), LB_ERR_NUMERIC);
    W[5] = INFINITY;
    assert_int_equal(gptq(&c, R, C, W, H, &r), LB_ERR_NUMERIC);
    W[5] = 0.01f;
    H[7] = NAN;
    assert_int_equal(gptq(&c, R, C, W, H, &r), LB_ERR_NUMERIC);
    H[7] = H[7 * C];

    /* a singular H (one sample: rank 1) is handled by the dampening */
    double *H1 = hessian_of(1, C, X);
    assert_int_equal(gptq(&c, R, C, W, H1, &r), LB_OK);
    for (int i = 0; i < R * C; i++) assert_true(isfinite(r.what[i]));
    {
        static float wr[R * C], sr[R];
        static int32_t qr[R * C];
        assert_int_equal(lb_weight_rtn_ref(NULL, &c.quant, R, C, W, qr, sr, NULL, wr), LB_OK);
        assert_true(rel_error(1, R, C, X, W, r.what) < rel_error(1, R, C, X, W, wr));
    }
    free(H1);

    /* Cholesky failure: singular without dampening, indefinite with it */
    double Hs[4] = {1, 1, 1, 1}, Hi[4] = {1, 2, 2, 1};
    float w2[2] = {0.5f, -0.25f}, wh2[2], s2[1];
    int32_t q2[2];
    lb_gptq_config c2 = lb_gptq_config_default();
    c2.percdamp = 0.0;
    assert_int_equal(lb_gptq_quantize_ref(ctx, &c2, 1, 2, w2, Hs, q2, s2, NULL, wh2, NULL, NULL, NULL),
                     LB_ERR_NUMERIC);
    assert_non_null(strstr(lb_ctx_error(ctx), "percdamp"));
    c2.percdamp = 0.01;
    assert_int_equal(lb_gptq_quantize_ref(ctx, &c2, 1, 2, w2, Hs, q2, s2, NULL, wh2, NULL, NULL, NULL), LB_OK);
    assert_int_equal(lb_gptq_quantize_ref(ctx, &c2, 1, 2, w2, Hi, q2, s2, NULL, wh2, NULL, NULL, NULL),
                     LB_ERR_NUMERIC);
    assert_non_null(strstr(lb_ctx_error(ctx), "not positive definite"));

    /* bad arguments */
    c2 = lb_gptq_config_default();
    c2.percdamp = -0.1;
    assert_int_equal(gptq(&c2, R, C, W, H, &r), LB_ERR_ARG);
    c2.percdamp = NAN;
    assert_int_equal(gptq(&c2, R, C, W, H, &r), LB_ERR_ARG);
    c2 = lb_gptq_config_default();
    c2.block_size = 0;
    assert_int_equal(gptq(&c2, R, C, W, H, &r), LB_ERR_ARG);
    c2 = lb_gptq_config_default();
    c2.quant.bits = 9;
    assert_int_equal(gptq(&c2, R, C, W, H, &r), LB_ERR_ARG);
    c2 = lb_gptq_config_default();
    c2.quant.symmetric = 0;
    assert_int_equal(lb_gptq_quantize_ref(NULL, &c2, R, C, W, H, r.codes, r.scale, NULL, NULL, NULL, NULL, NULL),
                     LB_ERR_ARG);
    assert_int_equal(lb_gptq_quantize_ref(NULL, &c, 0, C, NULL, H, NULL, NULL, NULL, NULL, NULL, NULL, NULL), LB_OK);
    /* 1 x 1 */
    double h11 = 3.0;
    float w11 = -0.2f, wh11, s11;
    int32_t q11;
    assert_int_equal(lb_gptq_quantize_ref(NULL, &c, 1, 1, &w11, &h11, &q11, &s11, NULL, &wh11, NULL, NULL, NULL),
                     LB_OK);
    assert_int_equal(q11, -7);
    run_free(&r);
    free(H);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gptq_fixtures),
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_identity_hessian_equals_rtn),
        cmocka_unit_test(test_act_order_diagonal),
        cmocka_unit_test(test_act_order_equivariance),
        cmocka_unit_test(test_dead_columns),
        cmocka_unit_test(test_group_scales),
        cmocka_unit_test(test_power_a1_equals_uniform),
        cmocka_unit_test(test_blocksize_and_loss),
        cmocka_unit_test(test_hessian_accumulator),
        cmocka_unit_test(test_edge_cases),
    };
    return LB_RUN_TESTS(tests);
}

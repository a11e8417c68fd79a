/* tests/test_layers.c — every layer of the backend table:
 *   1. finite-difference gradient checks in double precision of the
 *      reference layers (models/layers_impl.h instantiated in double, the
 *      same source as the float "ref" backend): for a random input x and a
 *      random projection r, L(x) = sum r . layer(x); the backward with
 *      dout = r must match central differences (h = 1e-6) to 1e-6 relative;
 *   2. the "cpu" backend against "ref" in float: bit-identical for the ops
 *      that keep ref's summation order (LayerNorm, embeddings, pooling,
 *      cross-entropy, AdamW, reductions), within 1e-5 + 1e-4 |ref| for the
 *      sgemm-based linear layers (OpenBLAS sums in blocked order) and the
 *      vectorised attention, 1e-6 for the polynomial-erf GELU;
 *   3. edge cases: fully masked attention rows, clipped entries, huge logits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/backend.h"
#include "layers_f64.h"
#include "test_util.h"

/* ----------------------------------------------------------------- helpers */

static uint64_t g_rng_index;

/* Uniform in [-a, a) from the counter RNG (stream "test-layers"). */
static double rnd(double a)
{
    return (2.0 * lb_rng_uniform_f64(7, 11, g_rng_index++) - 1.0) * a;
}

static double *dvec(int64_t n, double a)
{
    double *x = lb_alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) x[i] = rnd(a);
    return x;
}

static double *dzeros(int64_t n)
{
    return lb_calloc((size_t)(n > 0 ? n : 1), sizeof(double));
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *state);

/* Compares g (n) with central differences of f over every entry of x (or
 * every `stride`-th); fails with the worst entry. */
static void check_grad(const char *what, double *x, int64_t n, const double *g, loss_fn f,
                       void *state, double tol)
{
    const double h = 1e-6;
    double worst = 0;
    int64_t worst_i = -1;
    double worst_num = 0;
    const int64_t stride = n > 400 ? n / 200 : 1;
    for (int64_t i = 0; i < n; i += stride) {
        const double v = x[i];
        x[i] = v + h;
        const double lp = f(state);
        x[i] = v - h;
        const double lm = f(state);
        x[i] = v;
        const double num = (lp - lm) / (2 * h);
        const double err = fabs(num - g[i]) / fmax(1.0, fmax(fabs(num), fabs(g[i])));
        if (err > worst) {
            worst = err;
            worst_i = i;
            worst_num = num;
        }
    }
    if (worst > tol) {
        fprintf(stderr, "%s: gradient mismatch at %lld: analytic %.10g numeric %.10g (rel %.3g)\n",
                what, (long long)worst_i, g[worst_i], worst_num, worst);
        fail();
    }
}

/* ------------------------------------------------------- linear (double) */

typedef struct {
    int64_t N, C, OC;
    double *x, *w, *b, *r, *out;
} linear_case;

static double linear_loss(void *p)
{
    linear_case *s = p;
    lb_linear_forward_f64(s->out, s->x, s->w, s->b, s->N, s->C, s->OC);
    return dot(s->out, s->r, s->N * s->OC);
}

static void test_fd_linear(void **state)
{
    (void)state;
    linear_case s = {.N = 5, .C = 7, .OC = 3};
    s.x = dvec(s.N * s.C, 1);
    s.w = dvec(s.OC * s.C, 1);
    s.b = dvec(s.OC, 1);
    s.r = dvec(s.N * s.OC, 1);
    s.out = dzeros(s.N * s.OC);
    double *dx = dzeros(s.N * s.C), *dw = dzeros(s.OC * s.C), *db = dzeros(s.OC);
    linear_loss(&s);
    lb_linear_backward_f64(dx, dw, db, s.r, s.x, s.w, s.N, s.C, s.OC);
    check_grad("linear dx", s.x, s.N * s.C, dx, linear_loss, &s, 1e-6);
    check_grad("linear dw", s.w, s.OC * s.C, dw, linear_loss, &s, 1e-6);
    check_grad("linear db", s.b, s.OC, db, linear_loss, &s, 1e-6);
    lb_free(s.x), lb_free(s.w), lb_free(s.b), lb_free(s.r), lb_free(s.out);
    lb_free(dx), lb_free(dw), lb_free(db);
}

/* ---------------------------------------------------- layernorm (double) */

typedef struct {
    int64_t N, C;
    double *x, *w, *b, *r, *out, *mean, *rstd;
} ln_case;

static double ln_loss(void *p)
{
    ln_case *s = p;
    lb_layernorm_forward_f64(s->out, s->mean, s->rstd, s->x, s->w, s->b, s->N, s->C, 1e-5f);
    return dot(s->out, s->r, s->N * s->C);
}

static void test_fd_layernorm(void **state)
{
    (void)state;
    ln_case s = {.N = 4, .C = 9};
    s.x = dvec(s.N * s.C, 2);
    s.w = dvec(s.C, 1);
    s.b = dvec(s.C, 1);
    s.r = dvec(s.N * s.C, 1);
    s.out = dzeros(s.N * s.C);
    s.mean = dzeros(s.N);
    s.rstd = dzeros(s.N);
    double *dx = dzeros(s.N * s.C), *dw = dzeros(s.C), *db = dzeros(s.C);
    ln_loss(&s);
    lb_layernorm_backward_f64(dx, dw, db, s.r, s.x, s.w, s.mean, s.rstd, s.N, s.C);
    check_grad("layernorm dx", s.x, s.N * s.C, dx, ln_loss, &s, 1e-6);
    check_grad("layernorm dw", s.w, s.C, dw, ln_loss, &s, 1e-6);
    check_grad("layernorm db", s.b, s.C, db, ln_loss, &s, 1e-6);
    lb_free(s.x), lb_free(s.w), lb_free(s.b), lb_free(s.r), lb_free(s.out);
    lb_free(s.mean), lb_free(s.rstd), lb_free(dx), lb_free(dw), lb_free(db);
}

/* --------------------------------------------------------- GELU (double) */

typedef struct {
    int64_t n;
    double *x, *r, *out;
} gelu_case;

static double gelu_loss(void *p)
{
    gelu_case *s = p;
    lb_gelu_forward_f64(s->out, s->x, s->n);
    return dot(s->out, s->r, s->n);
}

static void test_fd_gelu(void **state)
{
    (void)state;
    gelu_case s = {.n = 33};
    s.x = dvec(s.n, 4);
    s.x[0] = 0; // GELU'(0) = 0.5
    s.r = dvec(s.n, 1);
    s.out = dzeros(s.n);
    double *dx = dzeros(s.n);
    gelu_loss(&s);
    lb_gelu_backward_f64(dx, s.x, s.r, s.n);
    check_grad("gelu dx", s.x, s.n, dx, gelu_loss, &s, 1e-6);
    assert_true(fabs(dx[0] - 0.5 * s.r[0]) < 1e-15);
    // known value: GELU(1) = 0.8413447460685429
    double one = 1, y;
    lb_gelu_forward_f64(&y, &one, 1);
    assert_true(fabs(y - 0.8413447460685429) < 1e-15);
    lb_free(s.x), lb_free(s.r), lb_free(s.out), lb_free(dx);
}

/* ---------------------------------------------- embedding, mean pooling */

typedef struct {
    int64_t N, V, C;
    int32_t *ids;
    double *table, *r, *out;
} emb_case;

static double emb_loss(void *p)
{
    emb_case *s = p;
    lb_embedding_forward_f64(s->out, s->ids, s->table, s->N, s->C);
    return dot(s->out, s->r, s->N * s->C);
}

static void test_fd_embedding(void **state)
{
    (void)state;
    int32_t ids[6] = {3, 0, 3, 1, 4, 3}; // repeated ids must add up
    emb_case s = {.N = 6, .V = 5, .C = 4, .ids = ids};
    s.table = dvec(s.V * s.C, 1);
    s.r = dvec(s.N * s.C, 1);
    s.out = dzeros(s.N * s.C);
    double *dt = dzeros(s.V * s.C);
    emb_loss(&s);
    lb_embedding_backward_f64(dt, s.r, s.ids, s.N, s.C);
    check_grad("embedding dtable", s.table, s.V * s.C, dt, emb_loss, &s, 1e-6);
    for (int64_t i = 0; i < s.C; i++) assert_true(dt[2 * s.C + i] == 0); // id 2 unused
    lb_free(s.table), lb_free(s.r), lb_free(s.out), lb_free(dt);
}

typedef struct {
    int64_t B, T, C;
    const uint8_t *mask;
    double *x, *r, *out;
} pool_case;

static double pool_loss(void *p)
{
    pool_case *s = p;
    lb_meanpool_forward_f64(s->out, s->x, s->mask, s->B, s->T, s->C);
    return dot(s->out, s->r, s->B * s->C);
}

static void test_fd_meanpool(void **state)
{
    (void)state;
    const uint8_t mask[3 * 4] = {1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1}; // row 1: no tokens
    for (int m = 0; m < 2; m++) {
        pool_case s = {.B = 3, .T = 4, .C = 5, .mask = m ? mask : NULL};
        s.x = dvec(s.B * s.T * s.C, 1);
        s.r = dvec(s.B * s.C, 1);
        s.out = dzeros(s.B * s.C);
        double *dx = dzeros(s.B * s.T * s.C);
        pool_loss(&s);
        lb_meanpool_backward_f64(dx, s.r, s.mask, s.B, s.T, s.C);
        check_grad("meanpool dx", s.x, s.B * s.T * s.C, dx, pool_loss, &s, 1e-6);
        if (m)
            for (int64_t i = 0; i < s.C; i++) assert_true(s.out[s.C + i] == 0);
        lb_free(s.x), lb_free(s.r), lb_free(s.out), lb_free(dx);
    }
}

/* --------------------------------------------------- attention (double) */

typedef struct {
    lb_attention_shape sh;
    const uint8_t *mask;
    double *qkv, *gin, *gw, *gb, *r;
    double *out, *probs, *ctxt, *gate;
} attn_case;

static double attn_loss(void *p)
{
    attn_case *s = p;
    lb_attention_forward_f64(s->out, s->probs, s->ctxt, s->gate, s->qkv, s->mask, s->gin, s->gw,
                             s->gb, &s->sh);
    return dot(s->out, s->r, s->sh.B * s->sh.T * s->sh.C);
}

/* One configuration: checks dqkv, and for gated dgate_in, dgate_w, dgate_b. */
static void attention_fd_case(int causal, int clipped, int gated, int masked)
{
    const int64_t B = 2, T = 5, C = 8, NH = 2;
    static const uint8_t mask[2 * 5] = {1, 1, 0, 1, 1, 1, 0, 1, 1, 0};
    attn_case s = {.sh = {B, T, C, NH, causal, clipped, gated, -0.08f, 1.1f}};
    s.mask = masked ? mask : NULL;
    s.qkv = dvec(B * T * 3 * C, 2.0); // peaky rows: some entries clip at 0 and 1
    s.gin = dvec(B * T * C, 1);
    s.gw = dvec(C, 1);
    s.gb = dvec(NH, 1);
    s.r = dvec(B * T * C, 1);
    s.out = dzeros(B * T * C);
    s.probs = dzeros(B * NH * T * T);
    s.ctxt = dzeros(B * T * C);
    s.gate = dzeros(B * NH * T);
    double *dqkv = dzeros(B * T * 3 * C), *dgin = dzeros(B * T * C), *dgw = dzeros(C),
           *dgb = dzeros(NH);
    double *scratch = dzeros(lb_attention_scratch_floats(&s.sh));
    attn_loss(&s);
    lb_attention_backward_f64(dqkv, dgin, dgw, dgb, scratch, s.r, s.qkv, s.probs, s.ctxt, s.gate,
                              s.mask, s.gin, s.gw, &s.sh);
    char what[96];
    snprintf(what, sizeof what, "attention causal=%d clipped=%d gated=%d masked=%d", causal,
             clipped, gated, masked);
    check_grad(what, s.qkv, B * T * 3 * C, dqkv, attn_loss, &s, 1e-6);
    if (gated) {
        check_grad(what, s.gin, B * T * C, dgin, attn_loss, &s, 1e-6);
        check_grad(what, s.gw, C, dgw, attn_loss, &s, 1e-6);
        check_grad(what, s.gb, NH, dgb, attn_loss, &s, 1e-6);
    }
    if (clipped) {
        // the clip is active somewhere (else this case tests nothing new)
        int zeros = 0;
        for (int64_t i = 0; i < B * NH * T * T; i++)
            zeros += s.probs[i] > 0 && 1.18 * s.probs[i] - 0.08 < 0;
        assert_true(zeros > 0);
    }
    lb_free(s.qkv), lb_free(s.gin), lb_free(s.gw), lb_free(s.gb), lb_free(s.r);
    lb_free(s.out), lb_free(s.probs), lb_free(s.ctxt), lb_free(s.gate);
    lb_free(dqkv), lb_free(dgin), lb_free(dgw), lb_free(dgb), lb_free(scratch);
}

static void test_fd_attention(void **state)
{
    (void)state;
    for (int causal = 0; causal < 2; causal++)
        for (int clipped = 0; clipped < 2; clipped++)
            for (int gated = 0; gated < 2; gated++)
                for (int masked = 0; masked < 2; masked++)
                    attention_fd_case(causal, clipped, gated, masked);
}

/* Properties of the variants: clipped with (zeta 1, gamma 0) is softmax bit
 * for bit; a row without valid keys gives exactly 0; gate bias 0 and zero
 * weights halve the output exactly. */
static void test_attention_properties(void **state)
{
    (void)state;
    const int64_t B = 1, T = 4, C = 4, NH = 1;
    float qkv[4 * 12], out1[16], out2[16], out3[16], probs[16], ctxt[16], gate[4];
    for (int i = 0; i < 48; i++) qkv[i] = (float)rnd(1.5);
    const lb_backend *ref = lb_backend_ref();
    lb_attention_shape soft = {B, T, C, NH, 0, 0, 0, 0.f, 1.f};
    lb_attention_shape clip = {B, T, C, NH, 0, 1, 0, 0.f, 1.f};
    ref->attention_forward(out1, probs, NULL, NULL, qkv, NULL, NULL, NULL, NULL, &soft);
    ref->attention_forward(out2, probs, NULL, NULL, qkv, NULL, NULL, NULL, NULL, &clip);
    assert_memory_equal(out1, out2, sizeof out1);
    // gate: w = 0, b = 0 -> pi = 0.5 exactly, out = 0.5 c
    float gin[16] = {0}, gw[4] = {0}, gb[1] = {0};
    lb_attention_shape gated = {B, T, C, NH, 0, 0, 1, 0.f, 1.f};
    ref->attention_forward(out3, probs, ctxt, gate, qkv, NULL, gin, gw, gb, &gated);
    for (int i = 0; i < 16; i++) assert_true(out3[i] == 0.5f * out1[i]);
    for (int i = 0; i < 4; i++) assert_true(gate[i] == 0.5f);
    // a fully masked batch row: zeros, no NaN
    const uint8_t none[4] = {0, 0, 0, 0};
    ref->attention_forward(out1, probs, NULL, NULL, qkv, none, NULL, NULL, NULL, &soft);
    for (int i = 0; i < 16; i++) assert_true(out1[i] == 0 && probs[i] == 0);
    // a uniform row with gamma = -alpha/T, alpha >= T/(T-1): exact zeros
    float flat[4 * 12] = {0};
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 4; i++) flat[t * 12 + 8 + i] = 1.0f; // v = 1, q = k = 0
    lb_attention_shape noop = {B, T, C, NH, 0, 1, 0, -2.0f / 4, 1.f};
    ref->attention_forward(out1, probs, NULL, NULL, flat, NULL, NULL, NULL, NULL, &noop);
    for (int i = 0; i < 16; i++) assert_true(out1[i] == 0);
}

/* ------------------------------------------------- cross-entropy (double) */

typedef struct {
    int64_t N, V;
    const int32_t *targets;
    double *x, *losses, *probs;
    double scale;
} ce_case;

static double ce_loss(void *p)
{
    ce_case *s = p;
    lb_crossentropy_forward_f64(s->losses, s->probs, s->x, s->targets, s->N, s->V);
    double l = 0;
    for (int64_t n = 0; n < s->N; n++) l += s->losses[n];
    return l * s->scale;
}

static void test_fd_crossentropy(void **state)
{
    (void)state;
    const int32_t targets[4] = {2, -1, 0, 5};
    ce_case s = {.N = 4, .V = 6, .targets = targets, .scale = 1.0 / 3};
    s.x = dvec(s.N * s.V, 3);
    s.losses = dzeros(s.N);
    s.probs = dzeros(s.N * s.V);
    double *dx = dzeros(s.N * s.V);
    ce_loss(&s);
    lb_crossentropy_backward_f64(dx, s.probs, s.targets, s.N, s.V, (float)s.scale);
    check_grad("crossentropy dlogits", s.x, s.N * s.V, dx, ce_loss, &s, 1e-6);
    assert_true(s.losses[1] == 0);
    // huge logits stay finite (logsumexp with max subtraction)
    float big[3] = {1e30f, -1e30f, 0}, p[3], loss;
    int32_t t = 1;
    lb_backend_ref()->crossentropy_forward(&loss, p, big, &t, 1, 3);
    assert_true(isfinite(loss) && loss > 1e30f);
    lb_free(s.x), lb_free(s.losses), lb_free(s.probs), lb_free(dx);
}

/* ---------------------------------------------------------- AdamW (double) */

static void test_adamw_formula(void **state)
{
    (void)state;
    double p = 0.5, g = 0.2, m = 0.01, v = 0.001;
    // hyper-parameters reach the kernel as floats: use the float values here
    const double lr = 0.1f, b1 = 0.9f, b2 = 0.99f, eps = 1e-8f, wd = 0.05f;
    const int t = 3;
    const double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    double em = b1 * m + (1 - b1) * g, ev = b2 * v + (1 - b2) * g * g;
    double ep = p - lr * ((em / (float)bc1) / (sqrt(ev / (float)bc2) + (float)eps) + (float)wd * p);
    lb_adamw_update_f64(&p, &g, &m, &v, 1, (float)lr, (float)b1, (float)b2, (float)bc1,
                        (float)bc2, (float)eps, (float)wd);
    assert_true(fabs(m - em) < 1e-9 && fabs(v - ev) < 1e-9);
    assert_true(fabs(p - ep) < 1e-9);
}

/* ------------------------------------------------------- cpu against ref */

static float *fvec(int64_t n, double a)
{
    if (a == 0) return lb_calloc((size_t)(n > 0 ? n : 1), sizeof(float)); // +0.0, never -0.0
    float *x = lb_alloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd(a);
    return x;
}

static float *fcopy(const float *x, int64_t n)
{
    float *y = lb_alloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

/* |a - b| <= atol + rtol |b| everywhere; prints the worst element. */
static void assert_close(const char *what, const float *a, const float *b, int64_t n,
                         double atol, double rtol)
{
    double worst = 0;
    int64_t wi = -1;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]) - (atol + rtol * fabs((double)b[i]));
        if (wi < 0 || e > worst) {
            worst = e;
            wi = i;
        }
    }
    if (worst > 0) {
        fprintf(stderr, "%s: cpu %.9g ref %.9g at %lld\n", what, (double)a[wi], (double)b[wi],
                (long long)wi);
        fail();
    }
}

static void test_cpu_linear(void **state)
{
    (void)state;
    const lb_backend *ref = lb_backend_ref(), *cpu = lb_backend_cpu();
    // odd sizes and one large enough for threads and BLAS blocking
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {17, 33, 65}, {300, 64, 192}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int64_t N = shapes[k][0], C = shapes[k][1], OC = shapes[k][2];
        float *x = fvec(N * C, 1), *w = fvec(OC * C, 1), *b = fvec(OC, 1), *dy = fvec(N * OC, 1);
        float *y1 = fvec(N * OC, 0), *y2 = fvec(N * OC, 0);
        float *dx1 = fvec(N * C, 1), *dw1 = fvec(OC * C, 1), *db1 = fvec(OC, 1);
        float *dx2 = fcopy(dx1, N * C), *dw2 = fcopy(dw1, OC * C), *db2 = fcopy(db1, OC);
        ref->linear_forward(y1, x, w, b, N, C, OC);
        cpu->linear_forward(y2, x, w, b, N, C, OC);
        // K-term dot products of values in [-1, 1]: error ~ K eps |terms|
        const double atol = 1e-6 * (double)(C > N ? C : N);
        assert_close("linear forward", y2, y1, N * OC, atol, 1e-4);
        ref->linear_backward(dx1, dw1, db1, dy, x, w, N, C, OC);
        cpu->linear_backward(dx2, dw2, db2, dy, x, w, N, C, OC);
        assert_close("linear dinp", dx2, dx1, N * C, atol, 1e-4);
        assert_close("linear dweight", dw2, dw1, OC * C, atol, 1e-4);
        assert_memory_equal(db2, db1, (size_t)OC * sizeof(float)); // same order
        lb_free(x), lb_free(w), lb_free(b), lb_free(dy), lb_free(y1), lb_free(y2);
        lb_free(dx1), lb_free(dw1), lb_free(db1), lb_free(dx2), lb_free(dw2), lb_free(db2);
    }
}

static void test_cpu_rowwise_exact(void **state)
{
    (void)state;
    const lb_backend *ref = lb_backend_ref(), *cpu = lb_backend_cpu();
    const int64_t N = 257, C = 48, V = 37;
    const size_t nc = (size_t)(N * C) * sizeof(float);
    float *x = fvec(N * C, 3), *w = fvec(C, 1), *b = fvec(C, 1), *dy = fvec(N * C, 1);
    float *y1 = fvec(N * C, 0), *y2 = fvec(N * C, 0), m1[257], m2[257], r1[257], r2[257];
    // LayerNorm
    ref->layernorm_forward(y1, m1, r1, x, w, b, N, C, 1e-5f);
    cpu->layernorm_forward(y2, m2, r2, x, w, b, N, C, 1e-5f);
    assert_memory_equal(y1, y2, nc);
    float *dx1 = fvec(N * C, 1), *dx2 = fcopy(dx1, N * C), *dw1 = fvec(C, 1),
          *dw2 = fcopy(dw1, C), *db1 = fvec(C, 1), *db2 = fcopy(db1, C);
    ref->layernorm_backward(dx1, dw1, db1, dy, x, w, m1, r1, N, C);
    cpu->layernorm_backward(dx2, dw2, db2, dy, x, w, m1, r1, N, C);
    assert_memory_equal(dx1, dx2, nc);
    assert_memory_equal(dw1, dw2, (size_t)C * sizeof(float));
    assert_memory_equal(db1, db2, (size_t)C * sizeof(float));
    // GELU: cpu uses a polynomial erf (|error| < 3e-7) -> 1e-6 abs + 1e-6 rel
    ref->gelu_forward(y1, x, N * C);
    cpu->gelu_forward(y2, x, N * C);
    assert_close("gelu forward", y2, y1, N * C, 1e-6, 1e-6);
    ref->gelu_backward(dx1, x, dy, N * C);
    cpu->gelu_backward(dx2, x, dy, N * C);
    assert_close("gelu backward", dx2, dx1, N * C, 2e-6, 1e-6);
    memcpy(dx2, dx1, nc);
    // large |x| (erf saturates), zero, NaN propagation
    float edge[6] = {-30.f, -9.5f, 0.f, 9.5f, 30.f, NAN}, e1[6], e2[6];
    ref->gelu_forward(e1, edge, 6);
    cpu->gelu_forward(e2, edge, 6);
    assert_close("gelu edges", e2, e1, 5, 1e-6, 1e-6);
    assert_true(isnan(e1[5]) && isnan(e2[5]));
    // embeddings with repeated ids, broadcast add and row sums
    int32_t ids[257];
    for (int i = 0; i < 257; i++) ids[i] = (int32_t)((i * 7) % V);
    float *table = fvec(V * C, 1), *dt1 = fvec(V * C, 1), *dt2 = fcopy(dt1, V * C);
    ref->embedding_forward(y1, ids, table, N, C);
    cpu->embedding_forward(y2, ids, table, N, C);
    assert_memory_equal(y1, y2, nc);
    ref->embedding_backward(dt1, dy, ids, N, C);
    cpu->embedding_backward(dt2, dy, ids, N, C);
    assert_memory_equal(dt1, dt2, (size_t)(V * C) * sizeof(float));
    ref->add_broadcast(y1, w, N, C);
    cpu->add_broadcast(y2, w, N, C);
    assert_memory_equal(y1, y2, nc);
    ref->sum_rows(dw1, dy, N, C);
    cpu->sum_rows(dw2, dy, N, C);
    assert_memory_equal(dw1, dw2, (size_t)C * sizeof(float));
    // mean pooling (B = 1, T = N)
    ref->meanpool_forward(m1, x, NULL, 1, N, C);
    cpu->meanpool_forward(m2, x, NULL, 1, N, C);
    assert_memory_equal(m1, m2, (size_t)C * sizeof(float));
    // cross-entropy over V classes
    int32_t tg[257];
    for (int i = 0; i < 257; i++) tg[i] = (int32_t)(i % 5 == 0 ? -1 : (i * 3) % V);
    float *lg = fvec(N * V, 4), *p1 = fvec(N * V, 0), *p2 = fvec(N * V, 0);
    float *dl1 = fvec(N * V, 1), *dl2 = fcopy(dl1, N * V);
    ref->crossentropy_forward(r1, p1, lg, tg, N, V);
    cpu->crossentropy_forward(r2, p2, lg, tg, N, V);
    assert_memory_equal(r1, r2, sizeof r1);
    assert_memory_equal(p1, p2, (size_t)(N * V) * sizeof(float));
    ref->crossentropy_backward(dl1, p1, tg, N, V, 0.01f);
    cpu->crossentropy_backward(dl2, p1, tg, N, V, 0.01f);
    assert_memory_equal(dl1, dl2, (size_t)(N * V) * sizeof(float));
    // AdamW, sum of squares, scale
    float *g = fvec(N * C, 1), *mo1 = fvec(N * C, 0.1), *mo2 = fcopy(mo1, N * C);
    float *v1 = fvec(N * C, 0), *v2;
    for (int64_t i = 0; i < N * C; i++) v1[i] = fabsf(v1[i]) + (float)fabs(rnd(0.01));
    v2 = fcopy(v1, N * C);
    float *p1b = fcopy(x, N * C), *p2b = fcopy(x, N * C);
    ref->adamw_update(p1b, g, mo1, v1, N * C, 1e-3f, 0.9f, 0.999f, 0.271f, 0.002997f, 1e-8f, 0.1f);
    cpu->adamw_update(p2b, g, mo2, v2, N * C, 1e-3f, 0.9f, 0.999f, 0.271f, 0.002997f, 1e-8f, 0.1f);
    assert_memory_equal(p1b, p2b, nc);
    assert_memory_equal(mo1, mo2, nc);
    assert_memory_equal(v1, v2, nc);
    float *big = fvec(3 * LB_REDUCE_BLOCK * 100 + 17, 1);
    const int64_t nb = 3 * LB_REDUCE_BLOCK * 100 + 17;
    const double s1 = ref->sum_squares(big, nb), s2 = cpu->sum_squares(big, nb);
    assert_true(s1 == s2);
    ref->scale(y1, N * C, 0.3f);
    cpu->scale(y2, N * C, 0.3f);
    assert_memory_equal(y1, y2, nc);
    lb_free(x), lb_free(w), lb_free(b), lb_free(dy), lb_free(y1), lb_free(y2);
    lb_free(dx1), lb_free(dx2), lb_free(dw1), lb_free(dw2), lb_free(db1), lb_free(db2);
    lb_free(table), lb_free(dt1), lb_free(dt2), lb_free(lg), lb_free(p1), lb_free(p2);
    lb_free(dl1), lb_free(dl2), lb_free(g), lb_free(mo1), lb_free(mo2), lb_free(v1);
    lb_free(v2), lb_free(p1b), lb_free(p2b), lb_free(big);
}

static void test_cpu_attention(void **state)
{
    (void)state;
    const lb_backend *ref = lb_backend_ref(), *cpu = lb_backend_cpu();
    // T = 9 takes the cpu backend's loop version, T = 40 its sgemm version
    for (int64_t T = 9; T <= 40; T += 31)
    for (int variant = 0; variant < 8; variant++) {
        const int64_t B = 3, C = 16, NH = 4;
        // batch row 0 all valid, row 1 every third key masked, row 2 only 4 keys
        uint8_t mask[3 * 40];
        for (int64_t j = 0; j < T; j++) {
            mask[j] = 1;
            mask[T + j] = j % 3 != 1;
            mask[2 * T + j] = j < 4;
        }
        lb_attention_shape s = {B, T, C, NH, variant & 1, (variant >> 1) & 1, (variant >> 2) & 1,
                                -0.05f, 1.02f};
        const int64_t n = B * T * C, np = B * NH * T * T;
        float *qkv = fvec(3 * n, 2), *gin = fvec(n, 1), *gw = fvec(C, 1), *gb = fvec(NH, 1);
        float *dout = fvec(n, 1);
        float *o1 = fvec(n, 0), *o2 = fvec(n, 0), *p1 = fvec(np, 0), *p2 = fvec(np, 0);
        float *c1 = fvec(n, 0), *c2 = fvec(n, 0), *g1 = fvec(B * NH * T, 0),
              *g2 = fvec(B * NH * T, 0);
        const uint8_t *km = (variant & 1) ? NULL : mask;
        // cpu: vectorised dot products and a polynomial exp -> 1e-5 + 1e-4 |ref|
        ref->attention_forward(o1, p1, c1, g1, qkv, km, gin, gw, gb, &s);
        cpu->attention_forward(o2, p2, c2, g2, qkv, km, gin, gw, gb, &s);
        assert_close("attention out", o2, o1, n, 1e-5, 1e-4);
        assert_close("attention probs", p2, p1, np, 1e-6, 1e-4);
        for (int64_t i = 0; i < np; i++) assert_true((p1[i] == 0) == (p2[i] == 0)); // masks
        float *dq1 = fvec(3 * n, 0), *dq2 = fvec(3 * n, 0), *dg1 = fvec(n, 0), *dg2 = fvec(n, 0);
        float *dw1 = fvec(C, 0), *dw2 = fvec(C, 0), *db1 = fvec(NH, 0), *db2 = fvec(NH, 0);
        float *sc = fvec(lb_attention_scratch_floats(&s), 0);
        ref->attention_backward(dq1, dg1, dw1, db1, sc, dout, qkv, p1, c1, g1, km, gin, gw, &s);
        cpu->attention_backward(dq2, dg2, dw2, db2, sc, dout, qkv, p1, c1, g1, km, gin, gw, &s);
        assert_close("attention dqkv", dq2, dq1, 3 * n, 1e-5, 1e-4);
        if (s.gated) {
            assert_close("attention dgate_in", dg2, dg1, n, 1e-5, 1e-4);
            assert_close("attention dgate_w", dw2, dw1, C, 1e-5, 1e-4);
            assert_close("attention dgate_b", db2, db1, NH, 1e-5, 1e-4);
        }
        lb_free(qkv), lb_free(gin), lb_free(gw), lb_free(gb), lb_free(dout), lb_free(o1);
        lb_free(o2), lb_free(p1), lb_free(p2), lb_free(c1), lb_free(c2), lb_free(g1);
        lb_free(g2), lb_free(dq1), lb_free(dq2), lb_free(dg1), lb_free(dg2), lb_free(dw1);
        lb_free(dw2), lb_free(db1), lb_free(db2), lb_free(sc);
    }
}

static void test_backend_find(void **state)
{
    (void)state;
    const lb_backend *be = NULL;
    assert_int_equal(lb_backend_find(NULL, "ref", &be), LB_OK);
    assert_string_equal(be->name, "ref");
    assert_int_equal(lb_backend_find(NULL, "cpu", &be), LB_OK);
    assert_string_equal(be->name, "cpu");
    assert_int_equal(lb_backend_find(NULL, "gpu", &be), LB_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_linear),
        cmocka_unit_test(test_fd_layernorm),
        cmocka_unit_test(test_fd_gelu),
        cmocka_unit_test(test_fd_embedding),
        cmocka_unit_test(test_fd_meanpool),
        cmocka_unit_test(test_fd_attention),
        cmocka_unit_test(test_attention_properties),
        cmocka_unit_test(test_fd_crossentropy),
        cmocka_unit_test(test_adamw_formula),
        cmocka_unit_test(test_cpu_linear),
        cmocka_unit_test(test_cpu_rowwise_exact),
        cmocka_unit_test(test_cpu_attention),
        cmocka_unit_test(test_backend_find),
    };
    return LB_RUN_TESTS(tests);
}

/* cli/check_layers.c — the `lowbit check` ops of the quantized layers'
 * pieces and of the layers themselves, cpu against ref, bit for bit:
 *   hadamard      lb_hadamard_cpu vs lb_hadamard_ref (shape rows, D, block)
 *   lsq-backward  lb_lsq_backward_cpu vs lb_lsq_backward_ref (rows·cols
 *                 elements; shape[2] = 1: the authors' range and tie rule)
 *   qlinear-hq    lb_qlinear_hq_{forward,backward}_cpu (cpu GEMM) vs the
 *                 oracle layer (ref GEMM), two training steps; param[0]:
 *                 0 paper config, 1 paper config with LSS budget N/3 (rows
 *                 with p < 1), 2 the authors' config (nonzero LSS)
 *   qlinear-luq   lb_qlinear_luq_{forward,backward}_cpu vs the oracle;
 *                 param[0]: 0 L = 8, 1 L = 16 (three exponent pieces),
 *                 2 L = 8 with 3 SMP samples
 * The layers compare Y, the int32 forward product, ∇X, ∇W, ∇b and the
 * learned-step gradients (hq) or α (luq).
 */
#include "config.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu.h"
#include "lowbit/cpu_qlinear.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/rng.h"

void check_describe_rows(const check_case *c, char *shape, size_t ns, char *params, size_t np)
{
    snprintf(shape, ns, "%" PRId64 "x%" PRId64, c->shape[0], c->shape[1]);
    if (!strcmp(c->op, "hadamard"))
        snprintf(params, np, "block=%" PRId64 " %s", c->shape[2], check_data_names[c->data]);
    else
        snprintf(params, np, "%s %s", c->shape[2] ? "code" : "paper", check_data_names[c->data]);
}

void check_run_hadamard(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t rows = c->shape[0], D = c->shape[1], block = c->shape[2], n = rows * D;
    float *x = lb_alloc((size_t)n * 4), *want = lb_alloc((size_t)n * 4), *got = lb_alloc((size_t)n * 4);
    lb_status st = x && want && got ? LB_OK : LB_ERR_NOMEM;
    if (st == LB_OK) {
        check_fill_f32(x, n, c->data, lb_rng_stream("check.hadamard", (uint64_t)n));
        st = lb_hadamard_ref(ctx, rows, D, block, x, want);
    }
    if (st == LB_OK) {
        memcpy(got, x, (size_t)n * 4);
        st = lb_hadamard_cpu(ctx, rows, D, block, got, got); /* in place */
    }
    if (st != LB_OK) check_set_error(r, ctx, st);
    else check_compare_bytes("transformed values", got, want, n, 4, r);
    lb_free(x), lb_free(want), lb_free(got);
}

void check_run_lsq_backward(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t n = c->shape[0] * c->shape[1];
    const lb_lsq_range range = c->shape[2] ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
    const lb_rounding rounding = c->shape[2] ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
    float *v = lb_alloc((size_t)n * 4), *g = lb_alloc((size_t)n * 4);
    float *want = lb_alloc((size_t)n * 4), *got = lb_alloc((size_t)n * 4);
    lb_status st = v && g && want && got ? LB_OK : LB_ERR_NOMEM;
    float ws = 0.0f, gs = 0.0f;
    if (st == LB_OK) {
        check_fill_f32(v, n, c->data, lb_rng_stream("check.lsq.v", (uint64_t)n));
        check_fill_f32(g, n, DATA_RANDOM, lb_rng_stream("check.lsq.g", (uint64_t)n));
        for (int64_t i = 0; i < n; i++) v[i] *= 10.0f; /* quotients inside and beyond the range */
        st = lb_lsq_backward_ref(ctx, range, rounding, n, v, g, want, &ws);
    }
    if (st == LB_OK) st = lb_lsq_backward_cpu(ctx, range, rounding, n, v, g, got, &gs);
    if (st != LB_OK) {
        check_set_error(r, ctx, st);
    } else {
        check_compare_bytes("step gradient", &gs, &ws, 1, 4, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("input gradient", got, want, n, 4, r);
    }
    lb_free(v), lb_free(g), lb_free(want), lb_free(got);
}

void check_describe_layer(const check_case *c, char *shape, size_t ns, char *params, size_t np)
{
    static const char *const hq_modes[] = {"paper", "budget/3", "code"};
    static const char *const luq_modes[] = {"L=8", "L=16", "L=8 S=3"};
    const int m = c->param[0] >= 0 && c->param[0] < 3 ? c->param[0] : 0;
    snprintf(shape, ns, "%" PRId64 "x%" PRId64 "x%" PRId64, c->shape[0], c->shape[1], c->shape[2]);
    if (!strcmp(c->op, "qlinear-hq"))
        snprintf(params, np, "block=%" PRId64 " %s %s", c->shape[3], hq_modes[m],
                 check_data_names[c->data]);
    else
        snprintf(params, np, "%s %s", luq_modes[m], check_data_names[c->data]);
}

static lb_status cpu_gemm(void *user, lb_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K,
                          const int8_t *A, const int8_t *B, int32_t *C)
{
    (void)user;
    return lb_gemm_i8(ctx, ta, tb, M, N, K, A, B, C);
}

/* One side's inputs and outputs of a layer check (k = 0 ref, 1 cpu). */
typedef struct layer_io {
    float *y, *dx, *dw, *db, extra[2];
    int32_t *z;
} layer_io;

static int layer_io_alloc(layer_io *o, int64_t N, int64_t D, int64_t C)
{
    memset(o, 0, sizeof *o);
    o->y = lb_alloc((size_t)(N * C) * 4), o->z = lb_alloc((size_t)(N * C) * 4);
    o->dx = lb_alloc((size_t)(N * D) * 4), o->dw = lb_alloc((size_t)(C * D) * 4);
    o->db = lb_alloc((size_t)C * 4);
    return o->y && o->z && o->dx && o->dw && o->db;
}

static void layer_io_free(layer_io *o)
{
    lb_free(o->y), lb_free(o->z), lb_free(o->dx), lb_free(o->dw), lb_free(o->db);
}

static void compare_layers(const layer_io *o, int64_t N, int64_t D, int64_t C, check_result *r)
{
    check_compare_bytes("Y", o[1].y, o[0].y, N * C, 4, r);
    if (r->outcome == CHECK_OK) check_compare_bytes("forward int32 product", o[1].z, o[0].z, N * C, 4, r);
    if (r->outcome == CHECK_OK) check_compare_bytes("input gradient", o[1].dx, o[0].dx, N * D, 4, r);
    if (r->outcome == CHECK_OK) check_compare_bytes("weight gradient", o[1].dw, o[0].dw, C * D, 4, r);
    if (r->outcome == CHECK_OK) check_compare_bytes("bias gradient", o[1].db, o[0].db, C, 4, r);
    if (r->outcome == CHECK_OK) check_compare_bytes("scalars", o[1].extra, o[0].extra, 2, 4, r);
}

/* x (N, D), w (C, D), b (C), dy (N, C) of the case. */
static int layer_inputs(const check_case *c, float **x, float **w, float **b, float **dy)
{
    const int64_t N = c->shape[0], D = c->shape[1], C = c->shape[2];
    *x = lb_alloc((size_t)(N * D) * 4), *w = lb_alloc((size_t)(C * D) * 4);
    *b = lb_alloc((size_t)C * 4), *dy = lb_alloc((size_t)(N * C) * 4);
    if (!*x || !*w || !*b || !*dy) return 0;
    check_fill_f32(*x, N * D, c->data, lb_rng_stream("check.layer.x", (uint64_t)N));
    check_fill_f32(*w, C * D, DATA_RANDOM, lb_rng_stream("check.layer.w", (uint64_t)C));
    check_fill_f32(*b, C, DATA_RANDOM, lb_rng_stream("check.layer.b", (uint64_t)C));
    check_fill_f32(*dy, N * C, DATA_RANDOM, lb_rng_stream("check.layer.dy", (uint64_t)N));
    return 1;
}

void check_run_qlinear_hq(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t N = c->shape[0], D = c->shape[1], C = c->shape[2];
    float *x, *w, *b, *dy;
    layer_io o[2];
    lb_hq_state *hs[2] = {NULL, NULL};
    int ok = layer_inputs(c, &x, &w, &b, &dy);
    for (int k = 0; k < 2; k++) ok = layer_io_alloc(&o[k], N, D, C) && ok;
    lb_status st = ok ? LB_OK : LB_ERR_NOMEM;
    for (int k = 0; k < 2 && st == LB_OK; k++) {
        lb_hq_config cfg;
        if (c->param[0] == 2) lb_hq_config_code(&cfg);
        else lb_hq_config_default(&cfg);
        if (c->param[0] == 1) cfg.lss_budget = (double)N / 3.0;
        cfg.block = c->shape[3];
        cfg.seed = 17;
        cfg.layer = 1;
        if (k == 1) cfg.gemm.fn = cpu_gemm;
        if ((st = lb_hq_state_create(ctx, &hs[k])) != LB_OK) break;
        for (uint64_t step = 0; step < 2 && st == LB_OK; step++) { /* init, then reuse */
            st = (k ? lb_qlinear_hq_forward_cpu : lb_qlinear_hq_forward_ref)(ctx, &cfg, hs[k], N, D, C,
                                                                           x, w, b, o[k].y, o[k].z);
            if (st == LB_OK)
                st = (k ? lb_qlinear_hq_backward_cpu : lb_qlinear_hq_backward_ref)(
                    ctx, &cfg, hs[k], step, dy, o[k].dx, o[k].dw, o[k].db, &o[k].extra[0],
                    &o[k].extra[1], NULL);
        }
    }
    if (st != LB_OK) check_set_error(r, ctx, st);
    else compare_layers(o, N, D, C, r);
    for (int k = 0; k < 2; k++) layer_io_free(&o[k]), lb_hq_state_free(hs[k]);
    lb_free(x), lb_free(w), lb_free(b), lb_free(dy);
}

void check_run_qlinear_luq(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t N = c->shape[0], D = c->shape[1], C = c->shape[2];
    float *x, *w, *b, *dy;
    layer_io o[2];
    int8_t *xc[2] = {lb_alloc((size_t)(N * D)), lb_alloc((size_t)(N * D))};
    int8_t *wc[2] = {lb_alloc((size_t)(C * D)), lb_alloc((size_t)(C * D))};
    int ok = layer_inputs(c, &x, &w, &b, &dy) && xc[0] && xc[1] && wc[0] && wc[1];
    for (int k = 0; k < 2; k++) ok = layer_io_alloc(&o[k], N, D, C) && ok;
    lb_status st = ok ? LB_OK : LB_ERR_NOMEM;
    for (int k = 0; k < 2 && st == LB_OK; k++) {
        lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
        if (c->param[0] == 1) cfg.luq.levels = 16;
        if (c->param[0] == 2) cfg.samples = 3;
        cfg.luq.seed = 17;
        if (k == 1) cfg.gemm.fn = cpu_gemm;
        int sign = 0;
        float sx = 0.0f, sw = 0.0f;
        st = (k ? lb_qlinear_luq_forward_cpu : lb_qlinear_luq_forward_ref)(
            ctx, &cfg, N, D, C, x, w, b, &sign, xc[k], &sx, wc[k], &sw, o[k].z, o[k].y);
        if (st == LB_OK)
            st = (k ? lb_qlinear_luq_backward_cpu : lb_qlinear_luq_backward_ref)(
                ctx, &cfg, N, D, C, dy, xc[k], sx, wc[k], sw, o[k].dx, o[k].dw, o[k].db,
                &o[k].extra[0]);
        o[k].extra[1] = sx * sw;
    }
    if (st != LB_OK) check_set_error(r, ctx, st);
    else compare_layers(o, N, D, C, r);
    for (int k = 0; k < 2; k++) layer_io_free(&o[k]), lb_free(xc[k]), lb_free(wc[k]);
    lb_free(x), lb_free(w), lb_free(b), lb_free(dy);
}

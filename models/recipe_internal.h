/* models/recipe_internal.h — what the quantized recipes (int8, hq, luq)
 * share: the per-layer ("site") table, the integer GEMM dispatch between the
 * oracle and the cpu kernels, scratch buffers, statistics and checkpoint
 * state. Not installed; lowbit/recipe.h is the public side.
 */
#ifndef LOWBIT_MODELS_RECIPE_INTERNAL_H
#define LOWBIT_MODELS_RECIPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lowbit/recipe.h"
#include "lowbit/backend.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/qlinear_hq.h"
#include "lowbit/ref/qlinear_luq.h"

typedef enum rc_kind { RC_INT8 = 1, RC_HQ = 2, RC_LUQ = 3 } rc_kind;

/* Statistics slots per site (names per kind: rc_ops.stat_names). */
#define RC_MAX_STATS 10

/* Columns of the checkpoint state tensor (F64, (1 + sites, RC_STATE_COLS)). */
#define RC_STATE_COLS 12

typedef struct rc_site {
    lb_linear_role role;
    int layer;
    uint32_t id;           /* 4096 role + layer + 1: part of every RNG stream id */
    int fp;                /* kept in float32 */
    /* integer GEMM dispatch (the user of the GEMM hooks) */
    int fast;              /* 1: the cpu kernels; 0: lb_gemm_i8_ref */
    int onednn;            /* fast, with the GEMMs on oneDNN (recipe option gemm onednn) */
    lb_packed_i8 *packed;  /* the forward weight codes packed for the cpu kernels */
    int8_t *packed_codes;  /* the codes they were packed from (packed_k * packed_n) */
    size_t packed_cap;
    int64_t packed_k, packed_n;
    /* saved forward (int8, luq) */
    int8_t *x_codes, *w_codes; // (N, D), (C, D)
    size_t x_cap, w_cap;
    float x_scale, w_scale;
    int64_t n, d, c;
    int has_forward;
    int act_signed;        /* luq: the layer has seen a negative input (sticky) */
    float *w_deq;          // luq FNT: (C, D) dequantized int4 weights
    size_t w_deq_cap;
    int fnt_forward;       /* luq: the saved forward ran in FNT mode */
    /* hq */
    lb_hq_state *hq;       /* learned steps, block, the saved forward */
    lb_hq_state *hq_eval;  /* scratch state of evaluation forwards */
    float grad_step_x, grad_step_w;
    int has_grad;
    double adam_mx, adam_vx, adam_mw, adam_vw; /* AdamW moments of the LSQ steps */
    /* statistics since the last report */
    double stat_sum[RC_MAX_STATS];
    int64_t stat_n[RC_MAX_STATS];
} rc_site;

typedef struct rc_recipe rc_recipe;

/* The kind-specific part. Shapes as lb_recipe (N rows, C in, OC out). */
typedef struct rc_ops {
    rc_kind kind;
    const char *name;
    const char *const *stat_names; /* RC_MAX_STATS entries, NULL-terminated early */
    unsigned default_fp_mask;      /* roles kept in float32 by default (bit = lb_linear_role) */
    lb_status (*forward)(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                         const lb_linear_site *where, rc_site *s, float *out, const float *inp,
                         const float *weight, const float *bias, int64_t N, int64_t C,
                         int64_t OC);
    lb_status (*backward)(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                          const lb_linear_site *where, rc_site *s, float *dinp, float *dweight,
                          float *dbias, const float *dout, const float *inp, const float *weight,
                          int64_t N, int64_t C, int64_t OC);
    /* optional: after the model's optimizer step */
    lb_status (*optimizer_step)(rc_recipe *r, lb_ctx *ctx, const lb_recipe_update *u);
} rc_ops;

extern const rc_ops rc_int8_ops, rc_hq_ops, rc_luq_ops;

#define RC_SCRATCH 6

struct rc_recipe {
    lb_recipe base;           /* first: an lb_recipe * is an rc_recipe * */
    const rc_ops *ops;
    lb_recipe_options opt;
    lb_recipe_run run;
    unsigned fp_mask;         /* roles kept in float32 */
    int64_t cold_steps;       /* hq: resolved lsq_cold_steps */
    int64_t fnt_start;        /* luq: first FNT step (INT64_MAX without FNT) */
    int64_t steps_done;       /* optimizer steps taken (optimizer_step / set_state) */
    rc_site **sites;
    size_t n_sites, cap_sites;
    double *pending;          /* state rows to apply to sites created later, (n_pending, COLS) */
    int64_t n_pending;
    void *scratch[RC_SCRATCH];
    size_t scratch_cap[RC_SCRATCH];
};

/* A scratch buffer of at least `bytes` (slot < RC_SCRATCH; contents lost on
 * growth); NULL and LB_ERR_NOMEM in *st when allocation fails. */
void *rc_scratch(rc_recipe *r, lb_ctx *ctx, int slot, size_t bytes, lb_status *st);

/* Grows an int8 buffer to n elements. */
lb_status rc_reserve_i8(lb_ctx *ctx, int8_t **buf, size_t *cap, size_t n);
lb_status rc_reserve_f32(lb_ctx *ctx, float **buf, size_t *cap, size_t n);

/* The GEMM hook of a site (user = the site; see models/recipe_common.c). */
lb_gemm_i8_hook rc_gemm_hook(rc_site *s);

/* dst (n) += src (n). */
void rc_accumulate(float *dst, const float *src, int64_t n);

/* dbias (OC) += fl32(Σ_n dout[n, o]) with each column summed in double in
 * increasing n (the oracle layers' ∇b), read row by row; threads over
 * column ranges, so the bits do not depend on the thread count. */
void rc_bias_grad(float *dbias, const float *dout, int64_t N, int64_t OC);

/* Adds one sample of statistic `k` of a site. */
static inline void rc_stat(rc_site *s, int k, double v)
{
    s->stat_sum[k] += v;
    s->stat_n[k]++;
}

/* Sets statistic `k` to v (reported as is, not averaged). */
static inline void rc_stat_last(rc_site *s, int k, double v)
{
    s->stat_sum[k] = v;
    s->stat_n[k] = 1;
}

/* Per-element stream offset of a site and step: id·2^32 + step. */
static inline uint64_t rc_site_step(const rc_site *s, int64_t step)
{
    return ((uint64_t)s->id << 32) + (uint64_t)step;
}

#endif

/* models/recipe_common.c — the machinery the quantized recipes share
 * (lowbit/recipe.h): options, creation, the per-layer site table, the
 * integer GEMM dispatch (oracle or cpu kernels, packed weights), statistics
 * and checkpoint state. The algorithms are in recipe_int8.c, recipe_hq.c and
 * recipe_luq.c.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "../runtime/clones.h"
#include "../cpu/loops.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/luq.h"
#include "lowbit/ref/sawb.h"
#include "recipe_internal.h"

/* ----------------------------------------------------------------- options */

void lb_recipe_options_default(lb_recipe_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->fp_layers, sizeof o->fp_layers, "default");
    o->hq_block = 0;
    o->lsq_range = LB_LSQ_RANGE_PAPER;
    o->lss = LB_LSS_BERNOULLI;
    o->bit_split = LB_RECIPE_BS_CLEAN;
    o->lsq_cold_steps = -1;
    o->lsq_lr = 1.0;
    o->smp = 1;
    o->luq_levels = LB_LUQ_LEVELS_DEFAULT;
    o->luq_underflow = LB_LUQ_UNDERFLOW_STOCHASTIC;
    o->luq_rounding = LB_LUQ_ROUND_STOCHASTIC;
    o->sawb_grid = LB_SAWB_GRID_INT4;
    o->fnt_steps = 0;
    o->fnt_lr = 0.0;
}

typedef enum opt_type { O_STR, O_INT, O_I64, O_DOUBLE, O_ENUM } opt_type;

typedef struct opt_def {
    const char *key;
    opt_type type;
    size_t offset;
    const char *const *names; /* O_ENUM: value i is names[i] */
    double min, max;          /* numeric range */
} opt_def;

static const char *const lsq_range_names[] = {"paper", "code", NULL};
static const char *const lss_names[] = {"bernoulli", "nonzero", "all", NULL};
static const char *const bs_names[] = {"clean", "code", "none", NULL};
static const char *const underflow_names[] = {"stochastic", "nearest", "flush", NULL};
static const char *const rounding_names[] = {"stochastic", "nearest", NULL};
static const char *const grid_names[] = {"int4", "code", NULL};
static const char *const gemm_names[] = {"lowbit", "onednn", NULL};

#define OFF(member) offsetof(lb_recipe_options, member)
static const opt_def opt_defs[] = {
    {"fp-layers", O_STR, OFF(fp_layers), NULL, 0, 0},
    {"hq-block", O_INT, OFF(hq_block), NULL, 0, 1024},
    {"lsq-range", O_ENUM, OFF(lsq_range), lsq_range_names, 0, 0},
    {"lss", O_ENUM, OFF(lss), lss_names, 0, 0},
    {"bit-split", O_ENUM, OFF(bit_split), bs_names, 0, 0},
    {"lsq-cold-steps", O_I64, OFF(lsq_cold_steps), NULL, -1, 1e15},
    {"lsq-lr", O_DOUBLE, OFF(lsq_lr), NULL, 0, 1e6},
    {"smp", O_INT, OFF(smp), NULL, 0, 64},
    {"luq-levels", O_INT, OFF(luq_levels), NULL, 0, LB_LUQ_MAX_LEVELS},
    {"luq-underflow", O_ENUM, OFF(luq_underflow), underflow_names, 0, 0},
    {"luq-rounding", O_ENUM, OFF(luq_rounding), rounding_names, 0, 0},
    {"sawb-grid", O_ENUM, OFF(sawb_grid), grid_names, 0, 0},
    {"fnt-steps", O_I64, OFF(fnt_steps), NULL, 0, 1e15},
    {"fnt-lr", O_DOUBLE, OFF(fnt_lr), NULL, 0, 1e6},
    {"gemm", O_ENUM, OFF(gemm), gemm_names, 0, 0},
};
#define N_OPTS (sizeof opt_defs / sizeof opt_defs[0])

size_t lb_recipe_option_count(void) { return N_OPTS; }

const char *lb_recipe_option_key(size_t i) { return i < N_OPTS ? opt_defs[i].key : NULL; }

static const opt_def *find_opt(const char *key)
{
    for (size_t i = 0; key && i < N_OPTS; i++)
        if (strcmp(opt_defs[i].key, key) == 0) return &opt_defs[i];
    return NULL;
}

static int enum_count(const char *const *names)
{
    int n = 0;
    while (names[n]) n++;
    return n;
}

lb_status lb_recipe_option_set(lb_ctx *ctx, lb_recipe_options *o, const char *key,
                               const char *value)
{
    if (!o || !key || !value) return lb_error(ctx, LB_ERR_ARG, "recipe option: NULL argument");
    const opt_def *d = find_opt(key);
    if (!d) return lb_error(ctx, LB_ERR_NOT_FOUND, "unknown recipe option '%s'", key);
    char *p = (char *)o + d->offset;
    char *end = NULL;
    switch (d->type) {
    case O_STR:
        if (strlen(value) >= sizeof o->fp_layers)
            return lb_error(ctx, LB_ERR_ARG, "%s: value too long", key);
        snprintf(p, sizeof o->fp_layers, "%s", value);
        return LB_OK;
    case O_ENUM:
        for (int i = 0; d->names[i]; i++)
            if (strcmp(d->names[i], value) == 0) {
                *(int *)p = i;
                return LB_OK;
            }
        {
            char list[128] = "";
            for (int i = 0; d->names[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         d->names[i]);
            return lb_error(ctx, LB_ERR_ARG, "%s: '%s' is not one of %s", key, value, list);
        }
    case O_INT:
    case O_I64: {
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || (double)v < d->min || (double)v > d->max)
            return lb_error(ctx, LB_ERR_ARG, "%s: bad value '%s' (an integer in [%.0f, %.0f])",
                            key, value, d->min, d->max);
        if (d->type == O_INT) *(int *)p = (int)v;
        else *(int64_t *)p = (int64_t)v;
        return LB_OK;
    }
    case O_DOUBLE: {
        double v = strtod(value, &end);
        if (!*value || *end || !isfinite(v) || v < d->min || v > d->max)
            return lb_error(ctx, LB_ERR_ARG, "%s: bad value '%s' (a number in [%g, %g])", key,
                            value, d->min, d->max);
        *(double *)p = v;
        return LB_OK;
    }
    }
    return lb_error(ctx, LB_ERR_INTERNAL, "recipe option %s", key);
}

lb_status lb_recipe_option_get(lb_ctx *ctx, const lb_recipe_options *o, const char *key,
                               char *buf, size_t size)
{
    if (!o || !key || !buf || !size)
        return lb_error(ctx, LB_ERR_ARG, "recipe option: NULL argument");
    const opt_def *d = find_opt(key);
    if (!d) return lb_error(ctx, LB_ERR_NOT_FOUND, "unknown recipe option '%s'", key);
    const char *p = (const char *)o + d->offset;
    switch (d->type) {
    case O_STR: snprintf(buf, size, "%s", p); break;
    case O_ENUM: {
        const int v = *(const int *)p;
        if (v < 0 || v >= enum_count(d->names))
            return lb_error(ctx, LB_ERR_ARG, "%s: invalid value %d", key, v);
        snprintf(buf, size, "%s", d->names[v]);
        break;
    }
    case O_INT: snprintf(buf, size, "%d", *(const int *)p); break;
    case O_I64: snprintf(buf, size, "%lld", (long long)*(const int64_t *)p); break;
    case O_DOUBLE: snprintf(buf, size, "%.17g", *(const double *)p); break;
    }
    return LB_OK;
}

static const rc_ops *find_ops(const char *name)
{
    if (!name) return NULL;
    if (strcmp(name, "int8") == 0) return &rc_int8_ops;
    if (strcmp(name, "hq") == 0) return &rc_hq_ops;
    if (strcmp(name, "luq") == 0) return &rc_luq_ops;
    return NULL;
}

/* The roles kept in float32: bit lb_linear_role. */
static lb_status parse_fp_layers(lb_ctx *ctx, const char *spec, unsigned dflt, unsigned *mask)
{
    if (!spec[0] || strcmp(spec, "default") == 0) {
        *mask = dflt;
        return LB_OK;
    }
    *mask = 0;
    if (strcmp(spec, "none") == 0) return LB_OK;
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int role = LB_LINEAR_PATCH; role <= LB_LINEAR_LM; role++) {
            const char *nm = lb_linear_role_name((lb_linear_role)role);
            if (len == strlen(nm) && strncmp(p, nm, len) == 0) {
                *mask |= 1u << role;
                found = 1;
            }
        }
        if (!found)
            return lb_error(ctx, LB_ERR_ARG,
                            "fp-layers: '%.*s' is not a layer (patch, qkv, proj, fc1, fc2, head, "
                            "lm; or default / none)",
                            (int)len, p);
        p += len;
        if (*p == ',') p++;
    }
    return LB_OK;
}

lb_status lb_recipe_options_check(lb_ctx *ctx, const char *name, const lb_recipe_options *o)
{
    if (!name || !o) return lb_error(ctx, LB_ERR_ARG, "recipe options: NULL argument");
    if (strcmp(name, "fp32") != 0 && !find_ops(name))
        return lb_error(ctx, LB_ERR_ARG, "unknown recipe '%s' (expected fp32, int8, hq or luq)",
                        name);
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *d = &opt_defs[i];
        const char *p = (const char *)o + d->offset;
        if (d->type == O_ENUM) {
            const int v = *(const int *)p;
            if (v < 0 || v >= enum_count(d->names))
                return lb_error(ctx, LB_ERR_ARG, "recipe option %s: invalid value %d", d->key, v);
        } else if (d->type == O_INT || d->type == O_I64 || d->type == O_DOUBLE) {
            const double v = d->type == O_INT    ? (double)*(const int *)p
                             : d->type == O_I64 ? (double)*(const int64_t *)p
                                                : *(const double *)p;
            if (!(v >= d->min && v <= d->max))
                return lb_error(ctx, LB_ERR_ARG, "recipe option %s: %g not in [%g, %g]", d->key, v,
                                d->min, d->max);
        }
    }
    if (!memchr(o->fp_layers, 0, sizeof o->fp_layers))
        return lb_error(ctx, LB_ERR_ARG, "recipe option fp-layers: not terminated");
    unsigned mask;
    lb_status st = parse_fp_layers(ctx, o->fp_layers, 0, &mask);
    if (st != LB_OK) return st;
    /* oneDNN's int8 matmul is only exact with VNNI (without it, u8·s8 products
     * saturate in vpmaddubsw): refuse rather than train on other bits */
    if (o->gemm == LB_RECIPE_GEMM_ONEDNN && !(lb_onednn_available() && lb_onednn_int8_exact()))
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "gemm onednn: %s", lb_onednn_available()
                                               ? "oneDNN's int8 matmul is not exact on this CPU "
                                                 "(no VNNI)"
                                               : "lowbit was built without oneDNN");
    if (o->hq_block > 0 && (o->hq_block & (o->hq_block - 1)) != 0)
        return lb_error(ctx, LB_ERR_ARG, "hq-block: %d is not a power of two", o->hq_block);
    return LB_OK;
}

static int opt_smp(const lb_recipe_options *o) { return o->smp > 0 ? o->smp : 1; }
static int opt_levels(const lb_recipe_options *o)
{
    return o->luq_levels > 0 ? o->luq_levels : LB_LUQ_LEVELS_DEFAULT;
}

static void describe_mask(unsigned mask, char *buf, size_t size)
{
    buf[0] = 0;
    for (int role = LB_LINEAR_PATCH; role <= LB_LINEAR_LM; role++)
        if (mask & (1u << role))
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "," : "",
                     lb_linear_role_name((lb_linear_role)role));
    if (!buf[0]) snprintf(buf, size, "none");
}

void lb_recipe_options_describe(const char *name, const lb_recipe_options *o, char *buf,
                                size_t size)
{
    if (!buf || !size) return;
    lb_recipe_options dflt;
    if (!o) {
        lb_recipe_options_default(&dflt);
        o = &dflt;
    }
    const rc_ops *ops = find_ops(name);
    if (!ops) {
        snprintf(buf, size, "%s: every linear layer in float32", name ? name : "?");
        return;
    }
    unsigned mask = 0;
    char fp[96];
    if (parse_fp_layers(NULL, o->fp_layers, ops->default_fp_mask, &mask) != LB_OK) mask = 0;
    describe_mask(mask, fp, sizeof fp);
    char block[32];
    if (o->hq_block > 0) snprintf(block, sizeof block, "block %d", o->hq_block);
    else snprintf(block, sizeof block, "block search");
    char cold[32];
    if (o->lsq_cold_steps < 0) snprintf(cold, sizeof cold, "warm-up");
    else snprintf(cold, sizeof cold, "%lld steps", (long long)o->lsq_cold_steps);
    switch (ops->kind) {
    case RC_INT8:
        snprintf(buf, size,
                 "int8: per-tensor int8 GEMMs (RTN forward, SR gradients); fp32 layers %s", fp);
        break;
    case RC_HQ:
        snprintf(buf, size,
                 "hq: Hadamard %s, LSQ %s (cold start %s, lr x%g), BS %s, LSS %s; fp32 layers %s",
                 block, lsq_range_names[o->lsq_range], cold, o->lsq_lr > 0 ? o->lsq_lr : 1.0,
                 bs_names[o->bit_split], lss_names[o->lss], fp);
        break;
    case RC_LUQ: {
        char fnt[64] = "no FNT";
        if (o->fnt_steps > 0) {
            if (o->fnt_lr > 0)
                snprintf(fnt, sizeof fnt, "FNT %lld steps, peak lr %g", (long long)o->fnt_steps,
                         o->fnt_lr);
            else
                snprintf(fnt, sizeof fnt, "FNT %lld steps, peak lr lr/10", (long long)o->fnt_steps);
        }
        snprintf(buf, size,
                 "luq: SAWB %s forward, LUQ L=%d (underflow %s, rounding %s), SMP %d, %s; fp32 "
                 "layers %s",
                 grid_names[o->sawb_grid], opt_levels(o), underflow_names[o->luq_underflow],
                 rounding_names[o->luq_rounding], opt_smp(o), fnt, fp);
        break;
    }
    }
    const size_t used = strlen(buf);
    if (o->gemm == LB_RECIPE_GEMM_ONEDNN && used + 1 < size)
        snprintf(buf + used, size - used, "; integer GEMMs on oneDNN");
}

double lb_fnt_lr(int64_t t, int64_t T, double lr_end, double lr_base)
{
    if (T < 1) return lr_end;
    if (t < 0) t = 0;
    if (t >= T) t = T - 1;
    const int64_t up = T / 2 > 0 ? T / 2 : 1, down = T - up;
    if (t < up) return lr_end + (lr_base - lr_end) * (double)(t + 1) / (double)up;
    return lr_end + (lr_base - lr_end) * (double)(T - t) / (double)(down > 0 ? down : 1);
}

/* ------------------------------------------------------------- scratch */

void *rc_scratch(rc_recipe *r, lb_ctx *ctx, int slot, size_t bytes, lb_status *st)
{
    if (bytes == 0) bytes = 1;
    if (r->scratch_cap[slot] < bytes) {
        lb_free(r->scratch[slot]);
        r->scratch[slot] = lb_alloc(bytes);
        r->scratch_cap[slot] = r->scratch[slot] ? bytes : 0;
        if (!r->scratch[slot]) {
            *st = lb_error(ctx, LB_ERR_NOMEM, "recipe %s: out of memory (%zu bytes)",
                           r->base.name, bytes);
            return NULL;
        }
    }
    return r->scratch[slot];
}

lb_status rc_reserve_i8(lb_ctx *ctx, int8_t **buf, size_t *cap, size_t n)
{
    if (n == 0) n = 1;
    if (*cap >= n && *buf) return LB_OK;
    int8_t *p = lb_alloc(n);
    if (!p) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory (%zu bytes)", n);
    lb_free(*buf);
    *buf = p;
    *cap = n;
    return LB_OK;
}

lb_status rc_reserve_f32(lb_ctx *ctx, float **buf, size_t *cap, size_t n)
{
    if (n == 0) n = 1;
    if (*cap >= n && *buf) return LB_OK;
    float *p = lb_alloc(n * sizeof *p);
    if (!p) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory (%zu floats)", n);
    lb_free(*buf);
    *buf = p;
    *cap = n;
    return LB_OK;
}

/* dst[i0..i1) += src[i0..i1) (elementwise: the same bits on every clone). */
LB_ISA_CLONES
static void accumulate_range(float *dst, const float *src, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) dst[i] += src[i];
}

void rc_accumulate(float *dst, const float *src, int64_t n)
{
    enum { CHUNK = 65536 };
    const int64_t tasks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++)
        accumulate_range(dst, src, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
}

void rc_bias_grad(float *dbias, const float *dout, int64_t N, int64_t OC)
{
    lb_cpu_column_sums(dbias, dout, N, OC, 1, lb_cpu_threads(NULL));
}

/* ------------------------------------------------------- integer GEMMs */

/* The indices of the rows of a (rows, cols) with a non-zero byte into keep;
 * returns their count. Each row is read eight 8-byte words at a time up to
 * its first non-zero word: a dense row costs one load or a few. */
static int64_t nonzero_rows(const int8_t *a, int64_t rows, int64_t cols, int64_t *keep)
{
    int64_t nk = 0;
    for (int64_t i = 0; i < rows; i++) {
        const int8_t *r = a + i * cols;
        uint64_t any = 0;
        int64_t j = 0;
        for (; j + 64 <= cols && !any; j += 64) {
            uint64_t w[8];
            memcpy(w, r + j, sizeof w);
            any = (w[0] | w[1]) | (w[2] | w[3]) | (w[4] | w[5]) | (w[6] | w[7]);
        }
        for (; j < cols && !any; j++) any = (uint8_t)r[j];
        if (any) keep[nk++] = i;
    }
    return nk;
}

/* C (M, N) = op(A) · op(B) on the cpu kernels with the all-zero rows of the
 * stored A skipped (they add nothing, so the result is the same integers):
 * trans_a == 0 drops output rows, trans_a != 0 (with trans_b == 0) drops
 * reduction indices. LUQ's second exponent piece (only the max-magnitude
 * entries) and sparse gradients make this worthwhile. */
static lb_status gemm_skip_zero_rows(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                                     int64_t K, const int8_t *A, const int8_t *B, int32_t *C)
{
    const int64_t rows = trans_a ? K : M, cols = trans_a ? M : K;
    int64_t *keep = lb_alloc((size_t)(rows > 0 ? rows : 1) * sizeof *keep);
    if (!keep) return lb_error(ctx, LB_ERR_NOMEM, "recipe gemm: out of memory");
    const int64_t nk = nonzero_rows(A, rows, cols, keep);
    lb_status st = LB_OK;
    if (nk * 4 >= rows * 3 || (trans_a && trans_b)) {
        st = lb_gemm_i8(ctx, trans_a, trans_b, M, N, K, A, B, C);
        lb_free(keep);
        return st;
    }
    int8_t *ga = lb_alloc((size_t)(nk * cols > 0 ? nk * cols : 1));
    int8_t *gb = trans_a ? lb_alloc((size_t)(nk * N > 0 ? nk * N : 1)) : NULL;
    int32_t *gc = trans_a ? NULL : lb_alloc((size_t)(nk * N > 0 ? nk * N : 1) * sizeof *gc);
    if (!ga || (trans_a && !gb) || (!trans_a && !gc)) {
        st = lb_error(ctx, LB_ERR_NOMEM, "recipe gemm: out of memory");
        goto done;
    }
    for (int64_t r = 0; r < nk; r++) memcpy(ga + r * cols, A + keep[r] * cols, (size_t)cols);
    if (trans_a) {
        /* C (M, N) = A[keep]^T (M, nk) · B[keep] (nk, N) */
        for (int64_t r = 0; r < nk; r++) memcpy(gb + r * N, B + keep[r] * N, (size_t)N);
        if (nk == 0) memset(C, 0, (size_t)(M * N) * sizeof *C);
        else st = lb_gemm_i8(ctx, 1, 0, M, N, nk, ga, gb, C);
    } else {
        /* rows keep of C = A[keep] (nk, K) · op(B); the other rows are 0 */
        if (nk > 0) st = lb_gemm_i8(ctx, 0, trans_b, nk, N, K, ga, B, gc);
        if (st == LB_OK) {
            memset(C, 0, (size_t)(M * N) * sizeof *C);
            for (int64_t r = 0; r < nk; r++)
                memcpy(C + keep[r] * N, gc + r * N, (size_t)N * sizeof *C);
        }
    }
done:
    lb_free(keep);
    lb_free(ga);
    lb_free(gb);
    lb_free(gc);
    return st;
}

/* op(A) · Bᵀ (B an (N, K) weight) on the site's packed copy of B, packed
 * again when B's codes or the context's ISA path changed; with d, the
 * dequantize epilogue fused (C may then be NULL). */
static lb_status rc_gemm_packed(rc_site *s, lb_ctx *ctx, int trans_a, int64_t M, int64_t N,
                                int64_t K, const int8_t *A, const int8_t *B, int32_t *C,
                                const lb_gemm_i8_dequant *d)
{
    const size_t nb = (size_t)(K * N);
    int fresh = s->packed && s->packed_k == K && s->packed_n == N &&
                memcmp(s->packed_codes, B, nb) == 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!fresh) {
            lb_packed_i8_free(s->packed);
            s->packed = NULL;
            lb_status st = rc_reserve_i8(ctx, &s->packed_codes, &s->packed_cap, nb);
            if (st != LB_OK) return st;
            st = lb_gemm_i8_pack_b(ctx, LB_INT_S8, 1, K, N, B, &s->packed);
            if (st != LB_OK) return st;
            memcpy(s->packed_codes, B, nb);
            s->packed_k = K;
            s->packed_n = N;
        }
        lb_status st = d ? lb_gemm_i8_packed_dequant(ctx, LB_INT_S8, trans_a, M, A, s->packed, C, d)
                         : lb_gemm_i8_packed(ctx, LB_INT_S8, trans_a, M, A, s->packed, C);
        if (st != LB_ERR_ARG || !fresh) return st;
        fresh = 0; /* packed for another ISA path than this context's: repack once */
    }
    return LB_OK;
}

/* The GEMM hook: the oracle on the ref backend; on cpu the exact kernels,
 * with the forward's weight operand (the only trans_b = 1 GEMM of the
 * layers) packed once and reused while the codes are unchanged (every
 * evaluation batch between two weight updates). */
static lb_status rc_gemm(void *user, lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                         int64_t K, const int8_t *A, const int8_t *B, int32_t *C)
{
    rc_site *s = user;
    if (!s->fast) return lb_gemm_i8_ref(ctx, trans_a, trans_b, M, N, K, A, B, C);
    if (s->onednn && M > 0 && N > 0 && K > 0)
        return lb_gemm_i8_onednn(ctx, trans_a, trans_b, M, N, K, A, B, C);
    if (M <= 0 || N <= 0) return lb_gemm_i8_ref(ctx, trans_a, trans_b, M, N, K, A, B, C);
    if (!trans_b || K <= 0) return gemm_skip_zero_rows(ctx, trans_a, trans_b, M, N, K, A, B, C);
    return rc_gemm_packed(s, ctx, trans_a, M, N, K, A, B, C, NULL);
}

/* The GEMM with its dequantize epilogue: fused into our kernels' tiles on
 * the packed-weight path; elsewhere rc_gemm, then the epilogue (the
 * reference's loop on the ref backend, threaded rows on cpu). */
static lb_status rc_gemm_dequant(void *user, lb_ctx *ctx, int trans_a, int trans_b, int64_t M,
                                 int64_t N, int64_t K, const int8_t *A, const int8_t *B, int32_t *C,
                                 const lb_gemm_i8_dequant *d)
{
    rc_site *s = user;
    if (s->fast && !s->onednn && M > 0 && N > 0 && K > 0 && trans_b)
        return rc_gemm_packed(s, ctx, trans_a, M, N, K, A, B, C, d);
    const lb_gemm_i8_hook plain = {rc_gemm, s, NULL};
    return s->fast ? lb_cpu_gemm_i8_dequant(&plain, ctx, trans_a, trans_b, M, N, K, A, B, C, d,
                                            lb_cpu_threads(ctx))
                   : lb_gemm_i8_hooked_dequant(&plain, ctx, trans_a, trans_b, M, N, K, A, B, C, d);
}

lb_gemm_i8_hook rc_gemm_hook(rc_site *s)
{
    lb_gemm_i8_hook h = {rc_gemm, s, rc_gemm_dequant};
    return h;
}

/* ------------------------------------------------------------- sites */

static void site_free(rc_site *s)
{
    if (!s) return;
    lb_packed_i8_free(s->packed);
    lb_free(s->packed_codes);
    lb_free(s->x_codes);
    lb_free(s->w_codes);
    lb_free(s->w_deq);
    lb_hq_state_free(s->hq);
    lb_hq_state_free(s->hq_eval);
    lb_free(s);
}

/* Applies one state row to a site (columns: doc/recipes.md). */
static void apply_row(rc_site *s, const double *row)
{
    if (s->hq) {
        s->hq->block = (int64_t)row[2];
        s->hq->initialized = row[3] != 0.0;
        s->hq->step_x = (float)row[4];
        s->hq->step_w = (float)row[5];
    }
    s->adam_mx = row[6];
    s->adam_vx = row[7];
    s->adam_mw = row[8];
    s->adam_vw = row[9];
    s->act_signed = row[10] != 0.0;
}

static lb_status site_get(rc_recipe *r, lb_ctx *ctx, const lb_linear_site *where, rc_site **out)
{
    for (size_t i = 0; i < r->n_sites; i++)
        if (r->sites[i]->role == where->role && r->sites[i]->layer == where->layer) {
            *out = r->sites[i];
            return LB_OK;
        }
    if (where->layer < -1 || where->layer > 4094 || (int)where->role < 0 ||
        (int)where->role > LB_LINEAR_LM)
        return lb_error(ctx, LB_ERR_ARG, "recipe %s: bad layer site (role %d, layer %d)",
                        r->base.name, (int)where->role, where->layer);
    if (r->n_sites == r->cap_sites) {
        const size_t cap = r->cap_sites ? 2 * r->cap_sites : 16;
        rc_site **p = lb_calloc(cap, sizeof *p);
        if (!p) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory");
        if (r->sites) memcpy(p, r->sites, r->n_sites * sizeof *p);
        lb_free(r->sites);
        r->sites = p;
        r->cap_sites = cap;
    }
    rc_site *s = lb_calloc(1, sizeof *s);
    if (!s) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory");
    s->role = where->role;
    s->layer = where->layer;
    s->id = (uint32_t)(4096 * (int)where->role + where->layer + 1);
    s->fp = (r->fp_mask >> where->role) & 1u;
    if (r->ops->kind == RC_HQ && !s->fp) {
        lb_status st = lb_hq_state_create(ctx, &s->hq);
        if (st == LB_OK) st = lb_hq_state_create(ctx, &s->hq_eval);
        if (st != LB_OK) {
            site_free(s);
            return st;
        }
    }
    for (int64_t k = 0; k < r->n_pending; k++) {
        const double *row = r->pending + k * RC_STATE_COLS;
        if ((int)row[0] == (int)s->role && (int)row[1] == s->layer) apply_row(s, row);
    }
    r->sites[r->n_sites++] = s;
    *out = s;
    return LB_OK;
}

/* ---------------------------------------------------- the lb_recipe table */

static lb_status rc_forward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                            const lb_linear_site *where, float *out, const float *inp,
                            const float *weight, const float *bias, int64_t N, int64_t C,
                            int64_t OC)
{
    rc_recipe *r = (rc_recipe *)self;
    rc_site *s;
    lb_status st = site_get(r, ctx, where, &s);
    if (st != LB_OK) return st;
    if (s->fp) {
        be->linear_forward(out, inp, weight, bias, N, C, OC);
        return LB_OK;
    }
    s->fast = strcmp(be->name, "ref") != 0;
    s->onednn = s->fast && r->opt.gemm == LB_RECIPE_GEMM_ONEDNN;
    return r->ops->forward(r, ctx, be, where, s, out, inp, weight, bias, N, C, OC);
}

static lb_status rc_backward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                             const lb_linear_site *where, float *dinp, float *dweight,
                             float *dbias, const float *dout, const float *inp,
                             const float *weight, int64_t N, int64_t C, int64_t OC)
{
    rc_recipe *r = (rc_recipe *)self;
    rc_site *s;
    lb_status st = site_get(r, ctx, where, &s);
    if (st != LB_OK) return st;
    if (s->fp) {
        be->linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
        return LB_OK;
    }
    s->fast = strcmp(be->name, "ref") != 0;
    s->onednn = s->fast && r->opt.gemm == LB_RECIPE_GEMM_ONEDNN;
    return r->ops->backward(r, ctx, be, where, s, dinp, dweight, dbias, dout, inp, weight, N, C,
                            OC);
}

static lb_status rc_optimizer_step(lb_recipe *self, lb_ctx *ctx, const lb_recipe_update *u)
{
    rc_recipe *r = (rc_recipe *)self;
    if (!u) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL update");
    if (r->ops->optimizer_step) {
        lb_status st = r->ops->optimizer_step(r, ctx, u);
        if (st != LB_OK) return st;
    }
    r->steps_done = u->step + 1;
    return LB_OK;
}

static lb_status rc_get_state(lb_recipe *self, lb_ctx *ctx, lb_tensor **out)
{
    rc_recipe *r = (rc_recipe *)self;
    /* rows: the header, the sites, and pending rows of sites not created yet */
    int64_t extra = 0;
    for (int64_t k = 0; k < r->n_pending; k++) {
        const double *row = r->pending + k * RC_STATE_COLS;
        int seen = 0;
        for (size_t i = 0; i < r->n_sites && !seen; i++)
            seen = (int)row[0] == (int)r->sites[i]->role && (int)row[1] == r->sites[i]->layer;
        extra += !seen;
    }
    const int64_t shape[2] = {1 + (int64_t)r->n_sites + extra, RC_STATE_COLS};
    lb_status st = lb_tensor_create(ctx, LB_F64, 2, shape, out);
    if (st != LB_OK) return st;
    double *d = (double *)(*out)->data;
    memset(d, 0, (size_t)(shape[0] * shape[1]) * sizeof *d);
    d[0] = -2.0; /* header: role -2, then steps_done */
    d[1] = (double)r->steps_done;
    for (size_t i = 0; i < r->n_sites; i++) {
        const rc_site *s = r->sites[i];
        double *row = d + (int64_t)(i + 1) * RC_STATE_COLS;
        row[0] = (double)s->role;
        row[1] = (double)s->layer;
        if (s->hq) {
            row[2] = (double)s->hq->block;
            row[3] = s->hq->initialized;
            row[4] = (double)s->hq->step_x;
            row[5] = (double)s->hq->step_w;
        }
        row[6] = s->adam_mx;
        row[7] = s->adam_vx;
        row[8] = s->adam_mw;
        row[9] = s->adam_vw;
        row[10] = s->act_signed;
    }
    int64_t at = 1 + (int64_t)r->n_sites;
    for (int64_t k = 0; k < r->n_pending; k++) {
        const double *row = r->pending + k * RC_STATE_COLS;
        int seen = 0;
        for (size_t i = 0; i < r->n_sites && !seen; i++)
            seen = (int)row[0] == (int)r->sites[i]->role && (int)row[1] == r->sites[i]->layer;
        if (!seen) memcpy(d + (at++) * RC_STATE_COLS, row, RC_STATE_COLS * sizeof *row);
    }
    return LB_OK;
}

static lb_status rc_set_state(lb_recipe *self, lb_ctx *ctx, const lb_tensor *t)
{
    rc_recipe *r = (rc_recipe *)self;
    if (!t || t->dtype != LB_F64 || t->ndim != 2 || t->shape[1] != RC_STATE_COLS ||
        t->shape[0] < 1)
        return lb_error(ctx, LB_ERR_FORMAT,
                        "recipe %s state: expected an F64 tensor (1 + sites, %d)", r->base.name,
                        RC_STATE_COLS);
    const double *d = (const double *)t->data;
    const int64_t rows = t->shape[0];
    for (int64_t k = 0; k < rows * RC_STATE_COLS; k++)
        if (!isfinite(d[k]))
            return lb_error(ctx, LB_ERR_FORMAT, "recipe %s state: non-finite value", r->base.name);
    if (d[0] != -2.0 || d[1] < 0 || d[1] != floor(d[1]))
        return lb_error(ctx, LB_ERR_FORMAT, "recipe %s state: bad header row", r->base.name);
    for (int64_t k = 1; k < rows; k++) {
        const double *row = d + k * RC_STATE_COLS;
        if (row[0] < 0 || row[0] > LB_LINEAR_LM || row[0] != floor(row[0]) || row[1] < -1 ||
            row[1] > 4094 || row[1] != floor(row[1]) || row[2] < 0 || row[2] > 1 << 20 ||
            row[7] < 0 || row[9] < 0)
            return lb_error(ctx, LB_ERR_FORMAT, "recipe %s state: bad row %lld", r->base.name,
                            (long long)k);
    }
    double *p = lb_alloc((size_t)((rows - 1) * RC_STATE_COLS > 0 ? (rows - 1) * RC_STATE_COLS : 1) *
                         sizeof *p);
    if (!p) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory");
    if (rows > 1) memcpy(p, d + RC_STATE_COLS, (size_t)((rows - 1) * RC_STATE_COLS) * sizeof *p);
    lb_free(r->pending);
    r->pending = p;
    r->n_pending = rows - 1;
    r->steps_done = (int64_t)d[1];
    for (size_t i = 0; i < r->n_sites; i++)
        for (int64_t k = 0; k < r->n_pending; k++) {
            const double *row = r->pending + k * RC_STATE_COLS;
            if ((int)row[0] == (int)r->sites[i]->role && (int)row[1] == r->sites[i]->layer)
                apply_row(r->sites[i], row);
        }
    return LB_OK;
}

/* "blocks.3.mlp.fc1", "patch", "head", "lm_head". */
static void site_name(const rc_site *s, char *buf, size_t size)
{
    static const char *const block_names[] = {"patch", "attn.qkv", "attn.proj", "mlp.fc1",
                                              "mlp.fc2", "head", "lm_head"};
    const char *nm = block_names[s->role];
    if (s->layer >= 0) snprintf(buf, size, "blocks.%d.%s", s->layer, nm);
    else snprintf(buf, size, "%s", nm);
}

/* Appends to buf (size) at *len like snprintf, tracking the length needed. */
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const size_t room = *len < size ? size - *len : 0;
    const int n = vsnprintf(room ? buf + *len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
}

static size_t rc_stats_json(lb_recipe *self, char *buf, size_t size)
{
    rc_recipe *r = (rc_recipe *)self;
    size_t len = 0;
    put(buf, size, &len, "[");
    int first = 1;
    for (size_t i = 0; i < r->n_sites; i++) {
        const rc_site *s = r->sites[i];
        if (s->fp) continue;
        char name[64];
        site_name(s, name, sizeof name);
        put(buf, size, &len, "%s{\"layer\":\"%s\"", first ? "" : ",", name);
        first = 0;
        for (int k = 0; k < RC_MAX_STATS && r->ops->stat_names[k]; k++) {
            if (s->stat_n[k] == 0) continue;
            const double v = s->stat_sum[k] / (double)s->stat_n[k];
            if (isfinite(v)) put(buf, size, &len, ",\"%s\":%.6g", r->ops->stat_names[k], v);
            else put(buf, size, &len, ",\"%s\":null", r->ops->stat_names[k]);
        }
        put(buf, size, &len, "}");
    }
    put(buf, size, &len, "]");
    if (len < size)
        for (size_t i = 0; i < r->n_sites; i++) {
            memset(r->sites[i]->stat_sum, 0, sizeof r->sites[i]->stat_sum);
            memset(r->sites[i]->stat_n, 0, sizeof r->sites[i]->stat_n);
        }
    return len;
}

static void rc_free(lb_recipe *self)
{
    rc_recipe *r = (rc_recipe *)self;
    for (size_t i = 0; i < r->n_sites; i++) site_free(r->sites[i]);
    lb_free(r->sites);
    lb_free(r->pending);
    for (int k = 0; k < RC_SCRATCH; k++) lb_free(r->scratch[k]);
    lb_free(r);
}

lb_status lb_recipe_create_ex(lb_ctx *ctx, const char *name, const lb_recipe_options *o,
                              const lb_recipe_run *run, lb_recipe **out)
{
    if (!name || !out) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL argument");
    *out = NULL;
    lb_recipe_options dflt;
    if (!o) {
        lb_recipe_options_default(&dflt);
        o = &dflt;
    }
    lb_status st = lb_recipe_options_check(ctx, name, o);
    if (st != LB_OK) return st;
    if (strcmp(name, "fp32") == 0) return lb_recipe_create(ctx, name, out);
    const rc_ops *ops = find_ops(name);
    rc_recipe *r = lb_calloc(1, sizeof *r);
    if (!r) return lb_error(ctx, LB_ERR_NOMEM, "recipe: out of memory");
    r->ops = ops;
    r->opt = *o;
    if (run) r->run = *run;
    else r->run.steps = 1;
    if ((st = parse_fp_layers(ctx, o->fp_layers, ops->default_fp_mask, &r->fp_mask)) != LB_OK) {
        lb_free(r);
        return st;
    }
    r->cold_steps = o->lsq_cold_steps < 0 ? r->run.warmup_steps : o->lsq_cold_steps;
    r->fnt_start = INT64_MAX;
    if (ops->kind == RC_LUQ && o->fnt_steps > 0) {
        if (o->fnt_steps >= r->run.steps) {
            const long long steps = (long long)r->run.steps;
            lb_free(r);
            return lb_error(ctx, LB_ERR_ARG,
                            "fnt-steps %lld must be smaller than the %lld training steps",
                            (long long)o->fnt_steps, steps);
        }
        r->fnt_start = r->run.steps - o->fnt_steps;
    }
    r->base.name = ops->name;
    r->base.linear_forward = rc_forward;
    r->base.linear_backward = rc_backward;
    r->base.free = rc_free;
    r->base.state = r;
    r->base.optimizer_step = rc_optimizer_step;
    r->base.get_state = rc_get_state;
    r->base.set_state = rc_set_state;
    r->base.stats_json = rc_stats_json;
    *out = &r->base;
    return LB_OK;
}

/* ------------------------------------------------------------ wrappers */

lb_status lb_recipe_optimizer_step(lb_recipe *r, lb_ctx *ctx, const lb_recipe_update *u)
{
    if (!r) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL recipe");
    return r->optimizer_step ? r->optimizer_step(r, ctx, u) : LB_OK;
}

lb_status lb_recipe_get_state(lb_recipe *r, lb_ctx *ctx, lb_tensor **out)
{
    if (!r || !out) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL argument");
    *out = NULL;
    return r->get_state ? r->get_state(r, ctx, out) : LB_OK;
}

lb_status lb_recipe_set_state(lb_recipe *r, lb_ctx *ctx, const lb_tensor *state)
{
    if (!r || !state) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL argument");
    if (!r->set_state)
        return lb_error(ctx, LB_ERR_FORMAT, "recipe %s has no state to restore", r->name);
    return r->set_state(r, ctx, state);
}

size_t lb_recipe_stats_json(lb_recipe *r, char *buf, size_t size)
{
    if (r && r->stats_json) return r->stats_json(r, buf, size);
    if (buf && size) snprintf(buf, size, "[]");
    return 2;
}

/* runtime/context.c — the lb_ctx object: threads, ISA override, seed, log sink,
 * last error detail. */
#include "config.h"
#include "lowbit/context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define LB_ERROR_DETAIL_MAX 1024

struct lb_ctx {
    int threads;
    lb_isa isa;
    uint64_t seed;
    lb_log_fn log_fn;
    void *log_user;
    lb_log_level log_min;
    lb_status last_status;
    char error[LB_ERROR_DETAIL_MAX];
};

static const char *const isa_names[] = {"auto", "scalar", "avx2", "avx512", "avx512vnni"};

const char *lb_isa_name(lb_isa isa)
{
    if ((int)isa < 0 || (size_t)isa >= sizeof isa_names / sizeof isa_names[0]) return "?";
    return isa_names[isa];
}

lb_status lb_isa_from_name(const char *name, lb_isa *out)
{
    if (!name || !out) return LB_ERR_ARG;
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (lb_isa)i;
            return LB_OK;
        }
    }
    return LB_ERR_ARG;
}

lb_status lb_ctx_create(lb_ctx **out)
{
    if (!out) return LB_ERR_ARG;
    *out = NULL;
    lb_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return LB_ERR_NOMEM;
#ifdef _OPENMP
    ctx->threads = omp_get_max_threads();
#else
    ctx->threads = 1;
#endif
    ctx->isa = LB_ISA_AUTO;
    ctx->log_min = LB_LOG_INFO;
    *out = ctx;
    const char *env = getenv("LOWBIT_ISA");
    if (env && *env && lb_isa_from_name(env, &ctx->isa) != LB_OK) {
        ctx->isa = LB_ISA_AUTO;
        return lb_error(ctx, LB_ERR_ARG,
                        "LOWBIT_ISA='%s' is not one of auto, scalar, avx2, avx512, avx512vnni", env);
    }
    return LB_OK;
}

void lb_ctx_free(lb_ctx *ctx) { free(ctx); }

lb_status lb_ctx_set_threads(lb_ctx *ctx, int n)
{
    if (!ctx) return LB_ERR_ARG;
    if (n < 1) return lb_error(ctx, LB_ERR_ARG, "thread count must be >= 1, got %d", n);
#ifdef _OPENMP
    /* One OpenMP runtime (libgomp) serves lowbit, OpenBLAS's OpenMP build and
     * oneDNN, so this single call sets the thread count of all three. */
    omp_set_num_threads(n);
#else
    if (n != 1)
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "built without OpenMP: only 1 thread, got %d", n);
#endif
    ctx->threads = n;
    return LB_OK;
}

int lb_ctx_threads(const lb_ctx *ctx) { return ctx ? ctx->threads : 1; }

lb_status lb_ctx_set_isa(lb_ctx *ctx, lb_isa isa)
{
    if (!ctx) return LB_ERR_ARG;
    if ((int)isa < LB_ISA_AUTO || isa > LB_ISA_AVX512VNNI)
        return lb_error(ctx, LB_ERR_ARG, "unknown ISA value %d", (int)isa);
    ctx->isa = isa;
    return LB_OK;
}

lb_isa lb_ctx_isa(const lb_ctx *ctx) { return ctx ? ctx->isa : LB_ISA_AUTO; }

void lb_ctx_set_seed(lb_ctx *ctx, uint64_t seed)
{
    if (ctx) ctx->seed = seed;
}

uint64_t lb_ctx_seed(const lb_ctx *ctx) { return ctx ? ctx->seed : 0; }

void lb_ctx_set_log(lb_ctx *ctx, lb_log_fn fn, void *user, lb_log_level min_level)
{
    if (!ctx) return;
    ctx->log_fn = fn;
    ctx->log_user = user;
    ctx->log_min = min_level;
}

void lb_log(const lb_ctx *ctx, lb_log_level level, const char *fmt, ...)
{
    if (!ctx || !ctx->log_fn || level < ctx->log_min) return;
    char msg[LB_ERROR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, msg);
}

lb_status lb_error(lb_ctx *ctx, lb_status status, const char *fmt, ...)
{
    if (!ctx) return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    ctx->last_status = status;
    return status;
}

const char *lb_ctx_error(const lb_ctx *ctx) { return ctx ? ctx->error : ""; }

void lb_ctx_clear_error(lb_ctx *ctx)
{
    if (!ctx) return;
    ctx->error[0] = '\0';
    ctx->last_status = LB_OK;
}

/* lowbit/context.h — the context object: every piece of run-time state.
 *
 * lowbit has no global mutable state. Thread count, ISA override, RNG seed,
 * log callback and the last error's detail string live in an lb_ctx that the
 * caller creates and passes to library functions.
 */
#ifndef LOWBIT_CONTEXT_H
#define LOWBIT_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction-set paths of the cpu backend, from slowest to fastest. */
typedef enum lb_isa {
    LB_ISA_AUTO = 0,      /* best the CPU supports (chosen at run time) */
    LB_ISA_SCALAR = 1,    /* portable C, any x86-64 or other CPU */
    LB_ISA_AVX2 = 2,      /* AVX2 + FMA */
    LB_ISA_AVX512 = 3,    /* AVX-512 F/BW/VL (no VNNI) */
    LB_ISA_AVX512VNNI = 4 /* AVX-512 with VNNI (vpdpbusd) */
} lb_isa;

typedef enum lb_log_level {
    LB_LOG_DEBUG = 0,
    LB_LOG_INFO = 1,
    LB_LOG_WARN = 2,
    LB_LOG_ERROR = 3
} lb_log_level;

/* Log sink: receives one complete message (no trailing newline). */
typedef void (*lb_log_fn)(void *user, lb_log_level level, const char *message);

typedef struct lb_ctx lb_ctx;

/* Creates a context with defaults: threads = OpenMP's default, ISA from the
 * LOWBIT_ISA environment variable (scalar|avx2|avx512|avx512vnni) or auto,
 * seed 0, no log sink. Returns LB_ERR_ARG for a NULL out pointer,
 * LB_ERR_NOMEM, or LB_ERR_ARG when LOWBIT_ISA holds an unknown name (the
 * context is still created then, with ISA auto, and the detail names it). */
lb_status lb_ctx_create(lb_ctx **out);

/* Frees a context. lb_ctx_free(NULL) is a no-op. */
void lb_ctx_free(lb_ctx *ctx);

/* Sets the number of threads used by lowbit's OpenMP regions, OpenBLAS
 * (OpenMP build) and oneDNN; n >= 1. Without OpenMP only n = 1 is valid. */
lb_status lb_ctx_set_threads(lb_ctx *ctx, int n);
int lb_ctx_threads(const lb_ctx *ctx);

/* Forces an ISA path (LB_ISA_AUTO restores automatic choice). Whether the
 * CPU supports it is checked by the cpu backend when it dispatches. */
lb_status lb_ctx_set_isa(lb_ctx *ctx, lb_isa isa);
lb_isa lb_ctx_isa(const lb_ctx *ctx);

/* Parses "auto", "scalar", "avx2", "avx512", "avx512vnni". */
lb_status lb_isa_from_name(const char *name, lb_isa *out);
const char *lb_isa_name(lb_isa isa);

/* The master seed from which every random stream is derived (see rng.h). */
void lb_ctx_set_seed(lb_ctx *ctx, uint64_t seed);
uint64_t lb_ctx_seed(const lb_ctx *ctx);

/* Installs a log sink (NULL silences logging) and the least level passed to it. */
void lb_ctx_set_log(lb_ctx *ctx, lb_log_fn fn, void *user, lb_log_level min_level);

/* Sends a printf-style message to the log sink, if any and if level passes. */
void lb_log(const lb_ctx *ctx, lb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records `status` with a printf-style detail string and returns `status`, so
 * that library code can write `return lb_error(ctx, LB_ERR_FORMAT, "...")`.
 * ctx may be NULL (the detail is then dropped). */
lb_status lb_error(lb_ctx *ctx, lb_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The detail string of the last error recorded in ctx ("" if none). */
const char *lb_ctx_error(const lb_ctx *ctx);

/* Clears the recorded error. */
void lb_ctx_clear_error(lb_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif

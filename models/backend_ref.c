/* models/backend_ref.c — the "ref" backend: the float32 instantiation of
 * models/layers_impl.h. Portable C11, no threads, no BLAS; the oracle the
 * "cpu" backend is tested against (tests/test_layers.c). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lowbit/backend.h"

typedef float real;
#define FN(name) lb_##name##_ref
#define R_SQRT sqrtf
#define R_EXP expf
#define R_LOG logf
#define R_ERF erff
#include "layers_impl.h"

static const lb_backend backend_ref = {
    .name = "ref",
    .linear_forward = lb_linear_forward_ref,
    .linear_backward = lb_linear_backward_ref,
    .layernorm_forward = lb_layernorm_forward_ref,
    .layernorm_backward = lb_layernorm_backward_ref,
    .gelu_forward = lb_gelu_forward_ref,
    .gelu_backward = lb_gelu_backward_ref,
    .add = lb_add_ref,
    .add_broadcast = lb_add_broadcast_ref,
    .sum_rows = lb_sum_rows_ref,
    .embedding_forward = lb_embedding_forward_ref,
    .embedding_backward = lb_embedding_backward_ref,
    .meanpool_forward = lb_meanpool_forward_ref,
    .meanpool_backward = lb_meanpool_backward_ref,
    .attention_forward = lb_attention_forward_ref,
    .attention_backward = lb_attention_backward_ref,
    .crossentropy_forward = lb_crossentropy_forward_ref,
    .crossentropy_backward = lb_crossentropy_backward_ref,
    .adamw_update = lb_adamw_update_ref,
    .sum_squares = lb_sum_squares_ref,
    .scale = lb_scale_ref,
};

const lb_backend *lb_backend_ref(void) { return &backend_ref; }

int64_t lb_attention_scratch_floats(const lb_attention_shape *s)
{
    // ref and the loop version of cpu use the first 2 B NH T; the sgemm
    // version of cpu adds (T, T) + (T, T) + (T, hs) per (b, h)
    const int64_t BH = s->B * s->NH, T = s->T, hs = s->C / s->NH;
    return 2 * BH * T + BH * (2 * T * T + T * hs);
}

lb_status lb_backend_find(lb_ctx *ctx, const char *name, const lb_backend **out)
{
    if (!name || !out) return lb_error(ctx, LB_ERR_ARG, "backend: NULL argument");
    if (strcmp(name, "ref") == 0) {
        *out = lb_backend_ref();
        return LB_OK;
    }
    if (strcmp(name, "cpu") == 0) {
        *out = lb_backend_cpu();
        return LB_OK;
    }
    return lb_error(ctx, LB_ERR_ARG, "unknown backend '%s' (expected ref or cpu)", name);
}

/* models/recipe_fp32.c — the "fp32" training recipe: every linear layer is
 * the backend's float32 linear op, unchanged. The baseline the quantized
 * recipes (int8, hq, luq) are compared against; see lowbit/model_linear.h. */
#include "config.h"

#include <string.h>

#include "lowbit/model_linear.h"
#include "lowbit/recipe.h"

const char *lb_linear_role_name(lb_linear_role role)
{
    switch (role) {
    case LB_LINEAR_PATCH: return "patch";
    case LB_LINEAR_QKV: return "qkv";
    case LB_LINEAR_PROJ: return "proj";
    case LB_LINEAR_FC1: return "fc1";
    case LB_LINEAR_FC2: return "fc2";
    case LB_LINEAR_HEAD: return "head";
    case LB_LINEAR_LM: return "lm";
    }
    return "?";
}

static lb_status fp32_forward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                              const lb_linear_site *site, float *out, const float *inp,
                              const float *weight, const float *bias, int64_t N, int64_t C,
                              int64_t OC)
{
    (void)self, (void)ctx, (void)site;
    be->linear_forward(out, inp, weight, bias, N, C, OC);
    return LB_OK;
}

static lb_status fp32_backward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                               const lb_linear_site *site, float *dinp, float *dweight,
                               float *dbias, const float *dout, const float *inp,
                               const float *weight, int64_t N, int64_t C, int64_t OC)
{
    (void)self, (void)ctx, (void)site;
    be->linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    return LB_OK;
}

/* Stateless, so one shared constant instance (free is NULL). */
static lb_recipe recipe_fp32 = {
    .name = "fp32",
    .linear_forward = fp32_forward,
    .linear_backward = fp32_backward,
    .free = NULL,
    .state = NULL,
};

lb_status lb_recipe_create(lb_ctx *ctx, const char *name, lb_recipe **out)
{
    if (!name || !out) return lb_error(ctx, LB_ERR_ARG, "recipe: NULL argument");
    *out = NULL;
    if (strcmp(name, "fp32") == 0) {
        *out = &recipe_fp32;
        return LB_OK;
    }
    /* the quantized recipes: models/recipe_common.c */
    return lb_recipe_create_ex(ctx, name, NULL, NULL, out);
}

void lb_recipe_free(lb_recipe *recipe)
{
    if (recipe && recipe->free) recipe->free(recipe);
}

/* cli/op_tensor.c — small tensor helpers shared by the `lowbit op` tables. */
#include "config.h"
#include "op.h"

lb_status op_as_f32(lb_ctx *ctx, const lb_tensor *t, const char *what, lb_tensor **owned,
                    const float **out)
{
    *owned = NULL;
    if (t->dtype == LB_F32) {
        *out = lb_tensor_f32(t);
        return LB_OK;
    }
    if (t->dtype != LB_F64)
        return lb_error(ctx, LB_ERR_ARG, "%s must be f32 or f64, got %s", what, lb_dtype_name(t->dtype));
    lb_status st = lb_tensor_create(ctx, LB_F32, t->ndim, t->shape, owned);
    if (st != LB_OK) return st;
    const double *d = lb_tensor_f64(t);
    float *f = lb_tensor_f32(*owned);
    for (size_t i = 0; i < t->numel; i++) f[i] = (float)d[i];
    *out = f;
    return LB_OK;
}

lb_status op_scalar_f32(lb_ctx *ctx, const lb_tensor *t, const char *what, float *out)
{
    if (t->numel != 1) return lb_error(ctx, LB_ERR_ARG, "%s must hold one value, got %zu", what, t->numel);
    if (t->dtype == LB_F32) *out = lb_tensor_f32(t)[0];
    else if (t->dtype == LB_F64) *out = (float)lb_tensor_f64(t)[0];
    else return lb_error(ctx, LB_ERR_ARG, "%s must be f32 or f64, got %s", what, lb_dtype_name(t->dtype));
    return LB_OK;
}

lb_status op_matrix_shape(lb_ctx *ctx, const lb_tensor *t, const char *what, int64_t *rows,
                          int64_t *cols)
{
    if (t->ndim < 1) return lb_error(ctx, LB_ERR_ARG, "%s must have at least one dimension", what);
    *cols = t->shape[t->ndim - 1];
    *rows = *cols > 0 ? (int64_t)t->numel / *cols : 0;
    return LB_OK;
}

lb_status op_make_like(lb_ctx *ctx, const lb_tensor *like, lb_dtype dtype, lb_tensor **out)
{
    return lb_tensor_create(ctx, dtype, like->ndim, like->shape, out);
}

lb_status op_make_2d(lb_ctx *ctx, lb_dtype dtype, int64_t r, int64_t c, lb_tensor **out)
{
    const int64_t shape[2] = {r, c};
    return lb_tensor_create(ctx, dtype, 2, shape, out);
}

lb_status op_make_1d(lb_ctx *ctx, lb_dtype dtype, int64_t n, lb_tensor **out)
{
    return lb_tensor_create(ctx, dtype, 1, &n, out);
}

lb_status op_make_scalar_f32(lb_ctx *ctx, float v, lb_tensor **out)
{
    lb_status st = lb_tensor_create(ctx, LB_F32, 0, NULL, out);
    if (st == LB_OK) lb_tensor_f32(*out)[0] = v;
    return st;
}

lb_status op_make_scalar_s32(lb_ctx *ctx, int32_t v, lb_tensor **out)
{
    lb_status st = lb_tensor_create(ctx, LB_S32, 0, NULL, out);
    if (st == LB_OK) lb_tensor_s32(*out)[0] = v;
    return st;
}

/* runtime/tensor.c — creation and destruction of dense tensors. */
#include "config.h"
#include "lowbit/tensor.h"
#include "lowbit/alloc.h"

#include <stdlib.h>
#include <string.h>

size_t lb_dtype_size(lb_dtype dtype)
{
    switch (dtype) {
    case LB_F32: return 4;
    case LB_F64: return 8;
    case LB_S8: return 1;
    case LB_S32: return 4;
    case LB_U8: return 1;
    }
    return 0;
}

const char *lb_dtype_name(lb_dtype dtype)
{
    switch (dtype) {
    case LB_F32: return "f32";
    case LB_F64: return "f64";
    case LB_S8: return "s8";
    case LB_S32: return "s32";
    case LB_U8: return "u8";
    }
    return "?";
}

lb_status lb_shape_bytes(lb_ctx *ctx, lb_dtype dtype, int ndim, const int64_t *shape,
                         size_t *numel, size_t *nbytes)
{
    size_t esize = lb_dtype_size(dtype);
    if (esize == 0) return lb_error(ctx, LB_ERR_ARG, "unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > LB_MAX_DIMS)
        return lb_error(ctx, LB_ERR_ARG, "tensor rank %d outside 0..%d", ndim, LB_MAX_DIMS);
    if (ndim > 0 && !shape) return lb_error(ctx, LB_ERR_ARG, "NULL shape for rank %d", ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return lb_error(ctx, LB_ERR_ARG, "dimension %d is negative (%lld)", i,
                            (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !lb_mul_size(n, (size_t)shape[i], &n))
            return lb_error(ctx, LB_ERR_NOMEM, "tensor element count overflows");
    }
    size_t b;
    if (!lb_mul_size(n, esize, &b)) return lb_error(ctx, LB_ERR_NOMEM, "tensor byte count overflows");
    if (numel) *numel = n;
    if (nbytes) *nbytes = b;
    return LB_OK;
}

lb_status lb_tensor_create(lb_ctx *ctx, lb_dtype dtype, int ndim, const int64_t *shape,
                           lb_tensor **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output tensor pointer");
    *out = NULL;
    size_t numel, nbytes;
    lb_status st = lb_shape_bytes(ctx, dtype, ndim, shape, &numel, &nbytes);
    if (st != LB_OK) return st;
    lb_tensor *t = calloc(1, sizeof *t);
    if (!t) return lb_error(ctx, LB_ERR_NOMEM, "out of memory for a tensor header");
    t->data = lb_calloc(nbytes ? nbytes : 1, 1);
    if (!t->data) {
        free(t);
        return lb_error(ctx, LB_ERR_NOMEM, "out of memory for a %zu-byte tensor", nbytes);
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < LB_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->numel = numel;
    t->nbytes = nbytes;
    *out = t;
    return LB_OK;
}

void lb_tensor_free(lb_tensor *t)
{
    if (!t) return;
    lb_free(t->data);
    free(t);
}

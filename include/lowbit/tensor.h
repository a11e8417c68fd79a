/* lowbit/tensor.h — a minimal dense tensor: dtype, up to 4-D shape, contiguous
 * row-major (C order) data in a 64-byte aligned buffer that the tensor owns. */
#ifndef LOWBIT_TENSOR_H
#define LOWBIT_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_MAX_DIMS 4

typedef enum lb_dtype {
    LB_F32 = 0,
    LB_F64 = 1,
    LB_S8 = 2,
    LB_S32 = 3,
    LB_U8 = 4
} lb_dtype;

/* Bytes per element (4, 8, 1, 4, 1); 0 for an unknown dtype. */
size_t lb_dtype_size(lb_dtype dtype);

/* "f32", "f64", "s8", "s32", "u8"; "?" for an unknown dtype. */
const char *lb_dtype_name(lb_dtype dtype);

typedef struct lb_tensor {
    lb_dtype dtype;
    int ndim;                    /* 0 (a scalar) .. LB_MAX_DIMS */
    int64_t shape[LB_MAX_DIMS];  /* shape[i] >= 0 for i < ndim; unused entries 1 */
    size_t numel;                /* product of shape[0..ndim) */
    size_t nbytes;               /* numel * lb_dtype_size(dtype) */
    void *data;                  /* 64-byte aligned, zero-initialised at creation */
} lb_tensor;

/* Allocates a zeroed tensor. Fails with LB_ERR_ARG for ndim outside
 * [0, LB_MAX_DIMS], a negative dimension or an unknown dtype, and with
 * LB_ERR_NOMEM when the byte count overflows size_t or allocation fails. */
lb_status lb_tensor_create(lb_ctx *ctx, lb_dtype dtype, int ndim, const int64_t *shape,
                           lb_tensor **out);

/* Frees the tensor and its data. lb_tensor_free(NULL) is a no-op. */
void lb_tensor_free(lb_tensor *t);

/* Computes numel and nbytes of a shape with overflow checks (used by loaders
 * to validate headers before allocating). */
lb_status lb_shape_bytes(lb_ctx *ctx, lb_dtype dtype, int ndim, const int64_t *shape,
                         size_t *numel, size_t *nbytes);

/* Typed views of the data (no check of dtype beyond an assert). */
static inline float *lb_tensor_f32(const lb_tensor *t) { return (float *)t->data; }
static inline double *lb_tensor_f64(const lb_tensor *t) { return (double *)t->data; }
static inline int8_t *lb_tensor_s8(const lb_tensor *t) { return (int8_t *)t->data; }
static inline int32_t *lb_tensor_s32(const lb_tensor *t) { return (int32_t *)t->data; }
static inline uint8_t *lb_tensor_u8(const lb_tensor *t) { return (uint8_t *)t->data; }

#ifdef __cplusplus
}
#endif
#endif

/* lowbit/gpu.h — the CUDA backend's entry points (optional at configure time).
 *
 * Each function is the twin of a ref/ or runtime/ function with the same name
 * plus `_cuda`, and must give the same bits where the arithmetic is integer
 * (or counter-based random). Builds without CUDA provide stubs that return
 * LB_ERR_UNSUPPORTED, so callers need no #ifdef.
 */
#ifndef LOWBIT_GPU_H
#define LOWBIT_GPU_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of CUDA devices visible (0 when the driver or a device is absent, or
 * when the build has no CUDA backend). Never fails. */
int lb_cuda_device_count(void);

/* Fills host array out[0..n) with lb_rng_uniform_f32(seed, stream, first + i),
 * computed on the GPU. Bit-identical to lb_rng_fill_uniform_f32.
 * LB_ERR_UNSUPPORTED without a CUDA build or device; LB_ERR_INTERNAL on a CUDA
 * error (the detail names it). */
lb_status lb_rng_fill_uniform_f32_cuda(lb_ctx *ctx, uint64_t seed, uint64_t stream,
                                       uint64_t first, size_t n, float *out);

#ifdef __cplusplus
}
#endif
#endif

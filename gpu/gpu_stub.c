/* gpu/gpu_stub.c — stand-ins for the CUDA backend in builds without CUDA. */
#include "config.h"
#include "lowbit/gpu.h"

int lb_cuda_device_count(void) { return 0; }

lb_status lb_rng_fill_uniform_f32_cuda(lb_ctx *ctx, uint64_t seed, uint64_t stream,
                                       uint64_t first, size_t n, float *out)
{
    (void)seed; (void)stream; (void)first; (void)n; (void)out;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "this lowbit was built without the CUDA backend");
}

// gpu/rng_philox.cu — Philox4x32-10 uniforms on the GPU.
// Twin of runtime/rng_philox.c (lb_rng_fill_uniform_f32): same key/counter
// mapping, same 24-bit float conversion, so the output is bit-identical.
#include "lowbit/gpu.h"
#include <cuda_runtime.h>

namespace {

__device__ __forceinline__ void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const uint32_t lo0 = 0xD2511F53u * c[0], hi0 = __umulhi(0xD2511F53u, c[0]);
        const uint32_t lo1 = 0xCD9E8D57u * c[2], hi1 = __umulhi(0xCD9E8D57u, c[2]);
        const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
    }
}

// One thread per output element; out: (n,)
__global__ void fill_uniform_f32_kernel(uint64_t seed, uint64_t stream, uint64_t first, size_t n,
                                        float *out)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const uint64_t index = first + i, block = index >> 2;
    uint32_t c[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                     (uint32_t)(stream >> 32)};
    philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    out[i] = (float)(c[index & 3] >> 8) * 0x1p-24f;
}

} // namespace

extern "C" lb_status lb_rng_fill_uniform_f32_cuda(lb_ctx *ctx, uint64_t seed, uint64_t stream,
                                                  uint64_t first, size_t n, float *out)
{
    if (n == 0) return LB_OK;
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output array");
    if (lb_cuda_device_count() == 0) return lb_error(ctx, LB_ERR_UNSUPPORTED, "no CUDA device");
    float *d = nullptr;
    cudaError_t e = cudaMalloc(&d, n * sizeof(float));
    if (e == cudaSuccess) {
        const unsigned threads = 256;
        const unsigned blocks = (unsigned)((n + threads - 1) / threads);
        fill_uniform_f32_kernel<<<blocks, threads>>>(seed, stream, first, n, d);
        e = cudaGetLastError();
        if (e == cudaSuccess) e = cudaMemcpy(out, d, n * sizeof(float), cudaMemcpyDeviceToHost);
    }
    cudaFree(d);
    if (e != cudaSuccess) return lb_error(ctx, LB_ERR_INTERNAL, "CUDA: %s", cudaGetErrorString(e));
    return LB_OK;
}

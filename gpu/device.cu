// gpu/device.cu — CUDA device discovery.
#include "lowbit/gpu.h"
#include <cuda_runtime.h>

extern "C" int lb_cuda_device_count(void)
{
    int n = 0;
    // No driver or no device is not an error for lowbit: it means "0 devices".
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* cpu/avx512vnni/peak_avx512vnni.c — int8 peak probe of the avx512vnni path:
 * vpdpbusd zmm.
 *
 * A loop of 12 independent accumulator chains, written in inline assembly so
 * that the compiler can neither hoist nor drop the multiplies.
 * Each iteration is 12 vpdpbusd zmm = 12 x 64 = 768 u8 x s8 multiply-adds.
 * Used by lb_cpu_int8_peak (dispatch.c) and `lowbit bench` to state
 * kernel throughput as a fraction of the measured peak.
 * Compiled with the path's ISA flags; called only after a CPU check.
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

int64_t lb_int8_peak_loop_avx512vnni(int64_t iters)
{
    if (iters < 1) return 0;
    int64_t n = iters;
    __asm__ volatile(
        "vpternlogd $0xff, %%zmm12, %%zmm12, %%zmm12\n\t" /* all ones */
        "vpternlogd $0xff, %%zmm13, %%zmm13, %%zmm13\n\t"
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vmovdqa64 %%zmm0, %%zmm1\n\t"
        "vmovdqa64 %%zmm0, %%zmm2\n\t"
        "vmovdqa64 %%zmm0, %%zmm3\n\t"
        "vmovdqa64 %%zmm0, %%zmm4\n\t"
        "vmovdqa64 %%zmm0, %%zmm5\n\t"
        "vmovdqa64 %%zmm0, %%zmm6\n\t"
        "vmovdqa64 %%zmm0, %%zmm7\n\t"
        "vmovdqa64 %%zmm0, %%zmm8\n\t"
        "vmovdqa64 %%zmm0, %%zmm9\n\t"
        "vmovdqa64 %%zmm0, %%zmm10\n\t"
        "vmovdqa64 %%zmm0, %%zmm11\n\t"
        "1:\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm0\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm1\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm2\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm3\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm4\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm5\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm6\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm7\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm8\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm9\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm10\n\t"
        "vpdpbusd %%zmm13, %%zmm12, %%zmm11\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        : [n] "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc");
    return iters;
}

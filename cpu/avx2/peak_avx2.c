/* cpu/avx2/peak_avx2.c — int8 peak probe of the avx2 path:
 * vpmaddwd ymm + vpaddd ymm.
 *
 * A loop of 12 independent accumulator chains, written in inline assembly so
 * that the compiler can neither hoist nor drop the multiplies.
 * Each iteration is 12 x 16 = 192 int8 multiply-adds (the exact widen-to-int16
 * sequence the avx2 kernel runs; widening itself is not counted).
 * Used by lb_cpu_int8_peak (dispatch.c) and `lowbit bench` to state
 * kernel throughput as a fraction of the measured peak.
 * Compiled with the path's ISA flags; called only after a CPU check.
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

int64_t lb_int8_peak_loop_avx2(int64_t iters)
{
    if (iters < 1) return 0;
    int64_t n = iters;
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
        "vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n\t" /* all ones */
        "vpcmpeqd %%ymm13, %%ymm13, %%ymm13\n\t"
        "vmovdqa %%ymm0, %%ymm1\n\t"
        "vmovdqa %%ymm0, %%ymm2\n\t"
        "vmovdqa %%ymm0, %%ymm3\n\t"
        "vmovdqa %%ymm0, %%ymm4\n\t"
        "vmovdqa %%ymm0, %%ymm5\n\t"
        "vmovdqa %%ymm0, %%ymm6\n\t"
        "vmovdqa %%ymm0, %%ymm7\n\t"
        "vmovdqa %%ymm0, %%ymm8\n\t"
        "vmovdqa %%ymm0, %%ymm9\n\t"
        "vmovdqa %%ymm0, %%ymm10\n\t"
        "vmovdqa %%ymm0, %%ymm11\n\t"
        "1:\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm0, %%ymm0\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm1, %%ymm1\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm2, %%ymm2\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm3, %%ymm3\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm4, %%ymm4\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm5, %%ymm5\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm6, %%ymm6\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm7, %%ymm7\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm8, %%ymm8\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm9, %%ymm9\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm14\n\t"
        "vpaddd %%ymm14, %%ymm10, %%ymm10\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm11, %%ymm11\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        : [n] "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
    return iters;
}

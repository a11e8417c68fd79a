/* runtime/clones.h — LB_ISA_CLONES: compiles a plain C function once per x86
 * vector level (x86-64-v4: AVX-512 F/BW/DQ/VL; x86-64-v3: AVX2; baseline) with the compiler's target_clones; the
 * loader binds the best clone this CPU runs. For loops outside the
 * hand-written kernels (recipe epilogues, sums over independent elements)
 * whose every element is computed by the same expression on any ISA, so the
 * clones give the same bits. Nothing without configure's HAVE_TARGET_CLONES
 * (other compilers, other architectures): the baseline build.
 *
 * The attribute goes on a function without OpenMP regions inside (the
 * compiler outlines a parallel region before cloning, and the outlined body
 * would stay baseline): call the cloned function from the parallel loop. */
#ifndef LB_RUNTIME_CLONES_H
#define LB_RUNTIME_CLONES_H

#if defined(HAVE_TARGET_CLONES) && defined(__x86_64__)
#define LB_ISA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LB_ISA_CLONES
#endif

#endif

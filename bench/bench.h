/* bench/bench.h — benchmark programs behind `lowbit bench`. */
#ifndef LOWBIT_BENCH_BENCH_H
#define LOWBIT_BENCH_BENCH_H
int bench_gemm_i8_main(int argc, char **argv);
#endif

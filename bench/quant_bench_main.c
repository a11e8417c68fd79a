/* bench/quant_bench_main.c — the stand-alone program bench/quant_bench
 * (built by `make check`): bench_quant_main() of bench/quant_bench.c, which
 * `lowbit bench quant` also runs. */
int bench_quant_main(int argc, char **argv);

int main(int argc, char **argv) { return bench_quant_main(argc, argv); }

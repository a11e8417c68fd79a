/* lowbit/rng.h — the counter-based random number generator (Philox4x32-10).
 *
 * Every random number in lowbit is a pure function of (seed, stream, index):
 * no generator state is carried from one call to the next. A stochastic
 * quantizer therefore produces the same bits on every backend, vector width
 * and thread count, because element i always uses uniform(seed, stream, i).
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11) maps a 128-bit counter and a 64-bit key to 128 random bits.
 *
 * Mapping used by lowbit (documented in doc/numerics.md; do not change
 * without changing every backend):
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (block & 0xffffffff, block >> 32, stream & 0xffffffff, stream >> 32)
 *   float32 : block = index >> 2, word = output[index & 3],
 *             u = (word >> 8) * 2^-24             in [0, 1), 24 random bits, exact
 *   float64 : block = index >> 1, h = index & 1,
 *             w = output[2h] | (uint64)output[2h+1] << 32,
 *             u = (w >> 11) * 2^-53               in [0, 1), 53 random bits, exact
 * The f32 and f64 sequences of one (seed, stream) are thus different but
 * each is fully determined; four f32 (two f64) uniforms come from one call.
 */
#ifndef LOWBIT_RNG_H
#define LOWBIT_RNG_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One Philox4x32-10 evaluation: out = Philox(counter, key), 10 rounds. */
void lb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* The 32-bit random word for element `index` of (seed, stream): word
 * index & 3 of Philox at block index >> 2 (see the mapping above). */
uint32_t lb_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);

/* u in [0, 1) with 24 random bits: (lb_rng_u32(...) >> 8) * 2^-24. */
float lb_rng_uniform_f32(uint64_t seed, uint64_t stream, uint64_t index);

/* u in [0, 1) with 53 random bits (see the mapping above). */
double lb_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t index);

/* Fills out[i] = lb_rng_uniform_f32(seed, stream, first + i) for i < n. */
void lb_rng_fill_uniform_f32(uint64_t seed, uint64_t stream, uint64_t first, size_t n,
                             float *out);

/* Derives a stream id from a name and a small integer (e.g. layer index), so
 * that independent uses (LSS masks, LUQ rounding, SMP sample s, ...) never
 * share uniforms: FNV-1a 64 of the name, then mixed with `sub`. Stable
 * across versions: changing it changes every stochastic result. */
uint64_t lb_rng_stream(const char *name, uint64_t sub);

#ifdef __cplusplus
}
#endif
#endif

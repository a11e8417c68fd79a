/* runtime/rng_philox.c — Philox4x32-10 counter-based RNG and lowbit's mapping
 * from (seed, stream, index) to uniforms.
 *
 * Reference: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3", SC'11, §4.2 (Philox), with the round
 * constants of the Random123 library. Checked against its known-answer
 * vectors in tests/test_rng.c. The (seed, stream, index) mapping is
 * documented in include/lowbit/rng.h and doc/numerics.md.
 */
#include "config.h"
#include "lowbit/rng.h"

#define PHILOX_M0 0xD2511F53u /* round multipliers */
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* key schedule increments (golden ratio, sqrt(3)-1) */
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void lb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key is bumped before every round but the first */
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static inline void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    lb_philox4x32_10(ctr, key, out);
}

uint32_t lb_rng_u32(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t r[4];
    philox_block(seed, stream, index >> 2, r);
    return r[index & 3];
}

float lb_rng_uniform_f32(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* 24 bits fit a float mantissa exactly, so u*2^24 is an integer and u < 1. */
    return (float)(lb_rng_u32(seed, stream, index) >> 8) * 0x1p-24f;
}

double lb_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t r[4];
    philox_block(seed, stream, index >> 1, r);
    unsigned h = (unsigned)(index & 1) * 2;
    uint64_t w = (uint64_t)r[h] | ((uint64_t)r[h + 1] << 32);
    return (double)(w >> 11) * 0x1p-53;
}

void lb_rng_fill_uniform_f32(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out)
{
    size_t i = 0;
    /* Head: up to the next block boundary, element by element. */
    while (i < n && ((first + i) & 3) != 0) {
        out[i] = lb_rng_uniform_f32(seed, stream, first + i);
        i++;
    }
    /* Body: one Philox call per four elements. */
    for (; i + 4 <= n; i += 4) {
        uint32_t r[4];
        philox_block(seed, stream, (first + i) >> 2, r);
        for (int j = 0; j < 4; j++) out[i + (size_t)j] = (float)(r[j] >> 8) * 0x1p-24f;
    }
    for (; i < n; i++) out[i] = lb_rng_uniform_f32(seed, stream, first + i);
}

uint64_t lb_rng_stream(const char *name, uint64_t sub)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull; /* FNV prime */
    }
    /* splitmix64 finaliser of (h + sub * golden) so nearby `sub` values diverge. */
    uint64_t z = h + sub * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

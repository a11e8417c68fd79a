/* lowbit/ref/rounding.h — the rounding rules every quantizer uses (oracle).
 *
 * Spec: shared/specs/int4_training.md §1.1 and doc/numerics.md.
 *  - RTN, ties to even: what `nearbyintf`/`rintf` do in the default rounding
 *    mode and what x86 `cvtps2dq` does, so vector code reproduces it exactly.
 *    This is lowbit's default RTN (PyTorch's torch.round is also ties-to-even).
 *  - RTN, ties away from zero: C `roundf`, the rule of Xi et al.'s CUDA
 *    kernels; offered as a named mode for parity with the authors' code.
 *  - Stochastic rounding SR(v; u) = floor(v + u), u ~ U[0,1) from the counter
 *    RNG (lowbit/rng.h): E[SR(v)] = v, P(floor(v)+1) = v - floor(v).
 *    v + u is evaluated in float32 (one rounding), then floored; callers that
 *    need the rule at |v| >= 2^22 must keep v in range (quantizers clamp first).
 */
#ifndef LOWBIT_REF_ROUNDING_H
#define LOWBIT_REF_ROUNDING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_rounding {
    LB_ROUND_HALF_EVEN = 0, /* default RTN */
    LB_ROUND_HALF_AWAY = 1, /* C roundf, Xi et al. CUDA kernels */
    LB_ROUND_STOCHASTIC = 2 /* floor(v + u) */
} lb_rounding;

/* Round to nearest, ties to even (assumes the default FE_TONEAREST mode). */
float lb_round_half_even(float v);

/* Round to nearest, ties away from zero. */
float lb_round_half_away(float v);

/* Stochastic rounding floor(v + u) for a given uniform u in [0, 1). */
float lb_round_stochastic(float v, float u);

/* Applies `mode`; u is used only by LB_ROUND_STOCHASTIC. */
float lb_round(lb_rounding mode, float v, float u);

/* "even", "away", "stochastic"; NULL for an unknown mode. */
const char *lb_rounding_name(lb_rounding mode);

#ifdef __cplusplus
}
#endif
#endif

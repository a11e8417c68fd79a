/* ref/rounding.c — round-to-nearest (two tie rules) and stochastic rounding.
 *
 * Spec: shared/specs/int4_training.md §1.1 ([LuP Table 1]: SR is unbiased with
 * variance f(1-f) in grid units; RTN has zero variance and bias up to 1/2).
 * Leaves out: rounding modes other than round-to-nearest in the FPU (lowbit
 * never changes the FP environment).
 */
#include "config.h"
#include "lowbit/ref/rounding.h"

#include <math.h>
#include <stddef.h>

float lb_round_half_even(float v) { return nearbyintf(v); }

float lb_round_half_away(float v) { return roundf(v); }

float lb_round_stochastic(float v, float u) { return floorf(v + u); }

float lb_round(lb_rounding mode, float v, float u)
{
    switch (mode) {
    case LB_ROUND_HALF_AWAY: return lb_round_half_away(v);
    case LB_ROUND_STOCHASTIC: return lb_round_stochastic(v, u);
    case LB_ROUND_HALF_EVEN: break;
    }
    return lb_round_half_even(v);
}

const char *lb_rounding_name(lb_rounding mode)
{
    switch (mode) {
    case LB_ROUND_HALF_EVEN: return "even";
    case LB_ROUND_HALF_AWAY: return "away";
    case LB_ROUND_STOCHASTIC: return "stochastic";
    }
    return NULL;
}

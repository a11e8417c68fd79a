/* lowbit/recipe.h — the quantized training recipes behind the linear-layer
 * seam of lowbit/model_linear.h: their options, creation, statistics and
 * checkpoint state. doc/recipes.md describes every recipe in detail.
 *
 *   fp32  every linear layer in float32 (the baseline).
 *   int8  the simple low-bit baseline: all three GEMMs of every linear layer
 *         on symmetric per-tensor int8 [-127, 127] (scale max|t|/127, the
 *         oracle quantizer of lowbit/ref/uniform_quantizer.h): X and W by
 *         round-to-nearest (ties to even), ∇Y by stochastic rounding; int32
 *         accumulation; ∇b from the float ∇Y.
 *   hq    Xi et al. 2023 (spec int4_training.md §A): the layer of
 *         lowbit/ref/qlinear_hq.h — Hadamard + LSQ int4 forward with the
 *         block size searched on the first batch, bit splitting + leverage
 *         score sampling for both backward GEMMs; the LSQ step sizes are
 *         learned by the recipe (AdamW without weight decay, at lsq_lr times
 *         the model's learning rate, after a cold start that re-initialises
 *         block and steps from the data at every step, XiP A.4/A.5).
 *   luq   Chmiel et al. 2023 (spec §B): the layer of
 *         lowbit/ref/qlinear_luq.h — SAWB int4 forward (RTN), one LUQ sample
 *         of ∇Y (or the SMP average of S) feeding both backward GEMMs; the
 *         last fnt_steps steps are the high-precision fine-tune (FNT): float32
 *         everything except the weights, which stay SAWB-int4 in the forward
 *         (straight-through), with the FNT learning-rate schedule
 *         (lb_fnt_lr).
 * Attention matmuls, LayerNorm, softmax, GELU, embeddings lookups, the loss
 * and the optimizer stay float32 in every recipe.
 *
 * Every quantized GEMM is an integer GEMM (int8 storage, int32 accumulation):
 * lb_gemm_i8_ref on the "ref" backend, the exact kernels of lowbit/cpu.h
 * (run-time ISA dispatch, forward weights packed once per weight update and
 * reused while unchanged) on "cpu"; both give the same bits, so a quantized
 * layer's outputs are bit-identical between the two backends. (hq with
 * Bernoulli sampling adds the rows kept with p < 1 in double as the oracle
 * does — the 1/p weights differ along the reduction — in the oracle's order,
 * so that part is bit-identical too.)
 *
 * Randomness: every draw is lb_rng_* at (training seed, stream, index) with
 * a stream per (layer, step), so a run is reproducible bit for bit and a
 * resumed run continues bit-exactly (the learned and chosen state — LSQ
 * steps and their AdamW moments, Hadamard blocks, LUQ's signed-activation
 * flags — is saved in checkpoints, see lb_recipe_get_state). Streams:
 *   int8 ∇Y rounding   lb_rng_stream("int8.grad", site·2^32 + step), index = flat ∇Y index
 *   hq                 lb_hq_backward_streams(site, step) (xi.bs, xi.lss.*)
 *   luq                lowbit/ref/luq.h streams of sample s = site·2^48 + step·2^12 + j
 *                      (j < S), key = seed
 * with site = 4096·role + layer + 1 (lb_linear_role, layer −1 outside the
 * blocks).
 */
#ifndef LOWBIT_RECIPE_H
#define LOWBIT_RECIPE_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/tensor.h"
#include "lowbit/model_linear.h"

#ifdef __cplusplus
extern "C" {
#endif

/* hq's bit-splitting modes: the two of lowbit/ref/bit_split.h plus the
 * ablation without bit splitting (∇Y stochastically rounded to one int4
 * tensor, max|∇Y|/7 per tensor, both backward GEMMs over every row). */
typedef enum lb_recipe_bit_split {
    LB_RECIPE_BS_CLEAN = 0, /* LB_BS_CLEAN: unbiased, nibbles in [-7, 7] (default) */
    LB_RECIPE_BS_CODE = 1,  /* LB_BS_CODE: the authors' kernels (±6 clamps) */
    LB_RECIPE_BS_NONE = 2   /* ablation: plain int4 SR of ∇Y, no LSS */
} lb_recipe_bit_split;

/* Options of the recipes (each applies to the recipes named in its comment;
 * the others ignore it). lb_recipe_options_default gives the defaults; an
 * all-zero struct is also valid and means: default layer policy, block
 * search, paper LSQ range, Bernoulli LSS, clean BS, no cold start, LSQ
 * learning rate = the model's, S = 1, L = 8, stochastic LUQ, INT4 SAWB grid,
 * no FNT, FNT peak lr = lr / 10. Every option has a text key (also the
 * `lowbit train` flag --KEY and the checkpoint metadata key recipe.KEY). */
typedef struct lb_recipe_options {
    char fp_layers[64];     /* fp-layers: linear roles kept in float32: "" or "default" (int8:
                               none; hq, luq: head,lm — the classifier / LM head, as Xi et al.),
                               "none", or a comma list of patch,qkv,proj,fc1,fc2,head,lm */
    int hq_block;           /* hq-block (hq): Hadamard block, 0 = searched on the first batch
                               (default), else a power of two dividing every D (1 = no Hadamard) */
    int lsq_range;          /* lsq-range (hq): lb_lsq_range — paper [-7, 7] with ties-to-even
                               (default) or code [-8, 7] with ties away (the authors' kernels) */
    int lss;                /* lss (hq): lb_lss_mode — bernoulli (paper, default), nonzero (the
                               released kernels), all (no sampling) */
    int bit_split;          /* bit-split (hq): lb_recipe_bit_split — clean, code, none */
    int64_t lsq_cold_steps; /* lsq-cold-steps (hq): steps during which block and LSQ steps are
                               re-initialised from each batch (not learned); -1 = the training
                               warm-up (default), 0 = initialise once on the first batch */
    double lsq_lr;          /* lsq-lr (hq): learning rate of the LSQ steps as a multiple of the
                               model's (default 1, as the authors' code; 0 = 1) */
    int smp;                /* smp (luq): SMP samples S, 1..64 (default 1; 0 = 1) */
    int luq_levels;         /* luq-levels (luq): magnitudes L, 1..16 (default 8, the authors'
                               code; 7 = strict 4-bit code; 0 = 8) */
    int luq_underflow;      /* luq-underflow (luq): lb_luq_underflow — stochastic (default),
                               nearest, flush */
    int luq_rounding;       /* luq-rounding (luq): lb_luq_rounding — stochastic (default),
                               nearest */
    int sawb_grid;          /* sawb-grid (luq): lb_sawb_grid — int4 (default), code */
    int64_t fnt_steps;      /* fnt-steps (luq): the last T training steps are FNT (default 0) */
    double fnt_lr;          /* fnt-lr (luq): FNT peak learning rate LR_base (0 = lr / 10) */
    int gemm;               /* gemm (int8, hq, luq on the cpu backend): lb_recipe_gemm — the
                               integer GEMMs on lowbit's kernels (default) or on oneDNN's
                               u8·s8 matmul (same bits where oneDNN is exact: VNNI CPUs) */
} lb_recipe_options;

/* Values of lb_recipe_options.gemm. */
typedef enum lb_recipe_gemm { LB_RECIPE_GEMM_LOWBIT = 0, LB_RECIPE_GEMM_ONEDNN = 1 } lb_recipe_gemm;

/* The defaults (see above; lsq_cold_steps = -1). */
void lb_recipe_options_default(lb_recipe_options *o);

/* The option keys, in a fixed order (count, then key i). */
size_t lb_recipe_option_count(void);
const char *lb_recipe_option_key(size_t i);

/* Sets option `key` from its text form (numbers in decimal, modes by name:
 * "bernoulli", "code", ...). LB_ERR_NOT_FOUND for an unknown key (the CLI
 * then reports an unknown flag), LB_ERR_ARG for a bad value. */
lb_status lb_recipe_option_set(lb_ctx *ctx, lb_recipe_options *o, const char *key,
                               const char *value);

/* The text form of option `key` (reads back exactly with lb_recipe_option_set;
 * doubles with %.17g). LB_ERR_NOT_FOUND for an unknown key. */
lb_status lb_recipe_option_get(lb_ctx *ctx, const lb_recipe_options *o, const char *key,
                               char *buf, size_t size);

/* Checks the options for recipe `name` (fp32, int8, hq, luq); LB_ERR_ARG
 * naming the option. */
lb_status lb_recipe_options_check(lb_ctx *ctx, const char *name, const lb_recipe_options *o);

/* One line describing what `name` does with these options (for the settings
 * table), e.g. "hq: block search, LSQ paper, BS clean, LSS bernoulli, fp32 head,lm". */
void lb_recipe_options_describe(const char *name, const lb_recipe_options *o, char *buf,
                                size_t size);

/* What a recipe needs to know about the run. */
typedef struct lb_recipe_run {
    uint64_t seed;        /* key of every random draw (the training seed) */
    int64_t steps;        /* total optimizer steps (FNT is the last fnt_steps of them) */
    int64_t warmup_steps; /* the learning-rate warm-up (hq's default cold start) */
} lb_recipe_run;

/* Creates recipe `name` with options (NULL: defaults) for a run (NULL: seed
 * 0, 1 step, no warm-up). lb_recipe_create(ctx, name, out) is this with
 * NULL, NULL. LB_ERR_ARG for an unknown name or bad options. */
lb_status lb_recipe_create_ex(lb_ctx *ctx, const char *name, const lb_recipe_options *o,
                              const lb_recipe_run *run, lb_recipe **out);

/* After the model's optimizer step `u->step`: lets the recipe update what it
 * learns itself (hq: the LSQ steps). No-op for recipes without the hook. */
lb_status lb_recipe_optimizer_step(lb_recipe *r, lb_ctx *ctx, const lb_recipe_update *u);

/* The recipe's state for a checkpoint: *out = a new F64 tensor (the caller
 * frees it), or NULL when the recipe has none (fp32). Layout: doc/recipes.md. */
lb_status lb_recipe_get_state(lb_recipe *r, lb_ctx *ctx, lb_tensor **out);

/* Restores a state from lb_recipe_get_state (before or after the first
 * forward). LB_ERR_FORMAT for a malformed tensor. */
lb_status lb_recipe_set_state(lb_recipe *r, lb_ctx *ctx, const lb_tensor *state);

/* Per-layer quantization statistics since the last call, as a JSON array
 * (one object per quantized layer: scales, clipping rates, LSS kept-row
 * fractions, LUQ underflow rate, ... — doc/recipes.md lists the fields),
 * written to buf like snprintf (returns the length it needs; "[]" for fp32),
 * and the accumulators reset when the whole text fitted. */
size_t lb_recipe_stats_json(lb_recipe *r, char *buf, size_t size);

/* The FNT learning rate at FNT step t (0 <= t < T) of T steps, from the
 * final rate lr_end of the low-bit phase to the peak lr_base and back
 * (the plausible reading of LuP Eq. 17, spec B.5): a linear ramp
 * lr_end + (lr_base − lr_end)·(t + 1)/(T/2) for t < T/2, then
 * lr_end + (lr_base − lr_end)·(T − t)/(T/2); T/2 = max(1, T/2) in integers
 * for the ramp, T − T/2 for the decay. */
double lb_fnt_lr(int64_t t, int64_t T, double lr_end, double lr_base);

#ifdef __cplusplus
}
#endif
#endif

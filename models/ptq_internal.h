/* models/ptq_internal.h — the post-training quantization runtime shared by
 * models/ptq_*.c (not installed): activation quantizers at the model's taps,
 * quantized linear layers behind the recipe seam, the lb_ptq_model. */
#ifndef LOWBIT_MODELS_PTQ_INTERNAL_H
#define LOWBIT_MODELS_PTQ_INTERNAL_H

#include "lowbit/cpu.h"
#include "lowbit/ptq.h"
#include "lowbit/ref/range_estimators.h"
#include "lowbit/ref/uniform_quantizer.h"

/* The pseudo tap site of the vit patch-embedding input (raw patches). */
#define PTQ_SITE_PATCH_IN LB_TAP_COUNT
#define PTQ_N_SITES (LB_TAP_COUNT + 1)
#define PTQ_N_ROLES 7

/* One activation quantizer (asymmetric, per tensor). */
typedef struct ptq_act {
    int enabled;         /* quantizes its site */
    int calibrating;     /* updates its running range at every batch */
    lb_running_range rr; /* running estimate state */
    float lo, hi;        /* the running range */
    float scale;         /* Δ */
    int32_t zero;        /* z */
    int have;            /* scale and zero are set */
} ptq_act;

/* One linear layer. */
typedef struct ptq_linear {
    int quantized;
    lb_linear_role role;
    int layer;
    int64_t OC, K;
    int64_t w_offset, b_offset;  /* into the model's parameters (b: -1 when none) */
    int bits;
    lb_wq_grid grid;
    double a;                    /* power exponent (1 on the uniform grid) */
    int R;                       /* power codebook scale R (0: float levels) */
    int8_t codebook[128];        /* power codebook r_0..r_N */
    int8_t *codes;               /* (OC, K) codes in [-N, N] */
    int64_t n_scales;            /* 1 (per tensor) or OC (per channel) */
    float *scale;                /* (n_scales) uniform Δ or power group max M */
    int8_t *wint;                /* (OC, K) integer weights, NULL when there is no integer form */
    float *wscale;               /* (OC) scale of each output row of wint */
    int32_t *rowsum;             /* (OC) Σ_k wint */
    lb_packed_i8 *packed;        /* wint packed for lb_gemm_i8_packed (S4 when it fits) */
    ptq_act *in;                 /* input quantizer (NULL: float input) */
    double relerr;               /* the error reported by lb_ptq_model_report */
} ptq_linear;

typedef struct ptq_runtime ptq_runtime;

/* Calibration capture of one linear layer's input rows (GPTQ, NUPES). */
typedef lb_status (*ptq_capture_fn)(void *user, lb_ctx *ctx, int64_t rows, int64_t cols,
                                    const float *x);

struct ptq_runtime {
    lb_recipe recipe;            /* recipe.state == this */
    lb_model_config cfg;
    lb_ptq_options opts;
    lb_ptq_exec exec;
    lb_ptq_kernel kernel;
    ptq_act *acts;               /* (PTQ_N_SITES, n_layer + 1) */
    ptq_linear *lin;             /* (PTQ_N_ROLES, n_layer + 1) */
    lb_model_observer_fn user_fn;
    void *user_arg;
    /* capture */
    int cap_role, cap_layer;     /* -1: none */
    ptq_capture_fn cap_fn;
    void *cap_user;
    int cap_stop, stopped;
    const uint8_t *mask;         /* the current batch's attention mask (B, T) or NULL */
    int64_t mask_rows;           /* B * T of that mask */
    /* scratch */
    int8_t *xq;
    int32_t *acc;
    float *xf;
    size_t xq_cap, acc_cap, xf_cap;
};

/* The status the recipe returns to stop a calibration forward early. */
#define PTQ_STOP LB_ERR_INTERNAL

ptq_act *ptq_act_at(ptq_runtime *rt, int site, int layer);
ptq_linear *ptq_linear_at(ptq_runtime *rt, lb_linear_role role, int layer);

/* A runtime for a config (nothing quantized yet). */
lb_status ptq_runtime_create(lb_ctx *ctx, const lb_model_config *cfg, const lb_ptq_options *o,
                             ptq_runtime **out);
void ptq_runtime_free(ptq_runtime *rt);

/* Fills the layer table from a model's parameter layout (offsets, shapes). */
lb_status ptq_runtime_bind(lb_ctx *ctx, ptq_runtime *rt, const lb_model *model);

/* Asymmetric activation quantization of n values x with (scale, zero) at
 * `bits`: x̂ (may alias x, may be NULL) = Δ (q - z) and codes (may be NULL)
 * = q - 128 as int8, q = clamp(round_half_even(x / Δ) + z, 0, 2^bits - 1):
 * the codes and values of lb_uniform_quantize_ref / lb_uniform_fake_quant_ref
 * bit for bit. Returns 0 when some x is not finite (outputs then undefined). */
int ptq_act_quantize(const float *x, int64_t n, float scale, int32_t zero, int bits,
                     float *xhat, int8_t *codes);

/* The observer the runtime installs on its model. */
lb_status ptq_observe(void *user, lb_ctx *ctx, const lb_model_tap *tap);

/* The producer site of a linear layer's input (site, layer) per the model's
 * block structure. */
void ptq_input_site(const lb_model_config *cfg, lb_linear_role role, int layer, int *site,
                    int *site_layer);

/* Enables the activation quantizers of opts.act_sites and links each
 * quantized linear layer to its input quantizer. */
void ptq_enable_acts(ptq_runtime *rt);

/* Sets a layer's quantized weights from codes (OC, K) and scales: builds
 * wint / wscale / rowsum, writes Ŵ into the model's parameters (params),
 * and takes the codes and scales (copied). grid POWER uses a and the
 * codebook choice R_request (LB_PTQ_CODEBOOK_*). */
lb_status ptq_linear_set(lb_ctx *ctx, ptq_linear *L, float *params, int bits, lb_wq_grid grid,
                         double a, int R_request, const int8_t *codes, int64_t n_scales,
                         const float *scale);

/* Packs every quantized layer's integer weights for the fast kernel (again
 * when called twice: the context's ISA may differ). */
lb_status ptq_runtime_pack(lb_ctx *ctx, ptq_runtime *rt);

/* NUPES (models/ptq_nupes.c): the element loops and one layer's
 * optimisation. W (OC, K) the float weights, H (K, K) = 2 X^T X / n; out:
 * codes (OC, K), gmax (n_scales), the exponent, the relative reconstruction
 * loss at the start (PowerQuant exponent, RTN codes) and the best one. */
void ptq_nupes_forward(int bits, double a, int64_t OC, int64_t K, int64_t n_scales,
                       const float *V, const float *gmax, int8_t *codes, float *what);
void ptq_nupes_backward(int bits, double theta, double a_min, int64_t OC, int64_t K,
                        int64_t n_scales, const float *V, const float *gmax, const float *G,
                        float *grad_V, double *row_da, double *grad_theta);
lb_status ptq_nupes_layer(lb_ctx *ctx, const lb_ptq_options *o, int64_t OC, int64_t K,
                          const float *W, const double *H, int64_t n_scales, int8_t *codes,
                          float *gmax, double *a_out, double *loss_init, double *loss_best);

/* The model + runtime + what was recorded. */
struct lb_ptq_model {
    lb_model *model;
    ptq_runtime *rt;          /* NULL for a float model */
    lb_recipe *recipe;        /* a checkpoint's training recipe (lb_ptq_model_load_recipe) */
    lb_checkpoint_info info;
    int have_info;
};

/* Loads a "lowbit-quantized" file (models/ptq_io.c). */
lb_status ptq_load_quantized(lb_ctx *ctx, const char *path, const lb_backend *backend,
                             const lb_model_options *opts, lb_ptq_exec exec, lb_ptq_kernel kernel,
                             lb_ptq_model **out);

#endif

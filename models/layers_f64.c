/* models/layers_f64.c — double-precision instantiation of models/layers_impl.h
 * for the finite-difference gradient checks (linked into tests only). */
#include "config.h"

#include <math.h>
#include <stdint.h>

#include "layers_f64.h"

/* Not every layer is exported; the others stay unused here. */
#pragma GCC diagnostic ignored "-Wunused-function"

typedef double real;
#define FN(name) lb_##name##_f64_impl
#define R_SQRT sqrt
#define R_EXP exp
#define R_LOG log
#define R_ERF erf
#include "layers_impl.h"

/* The test-visible names (the instantiated functions are static). */
void lb_linear_forward_f64(double *out, const double *inp, const double *weight,
                           const double *bias, int64_t N, int64_t C, int64_t OC)
{
    lb_linear_forward_f64_impl(out, inp, weight, bias, N, C, OC);
}
void lb_linear_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, int64_t N, int64_t C,
                            int64_t OC)
{
    lb_linear_backward_f64_impl(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
void lb_layernorm_forward_f64(double *out, double *mean, double *rstd, const double *inp,
                              const double *weight, const double *bias, int64_t N, int64_t C,
                              float eps)
{
    lb_layernorm_forward_f64_impl(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void lb_layernorm_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                               const double *inp, const double *weight, const double *mean,
                               const double *rstd, int64_t N, int64_t C)
{
    lb_layernorm_backward_f64_impl(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
void lb_gelu_forward_f64(double *out, const double *inp, int64_t n)
{
    lb_gelu_forward_f64_impl(out, inp, n);
}
void lb_gelu_backward_f64(double *dinp, const double *inp, const double *dout, int64_t n)
{
    lb_gelu_backward_f64_impl(dinp, inp, dout, n);
}
void lb_embedding_forward_f64(double *out, const int32_t *ids, const double *table, int64_t N,
                              int64_t C)
{
    lb_embedding_forward_f64_impl(out, ids, table, N, C);
}
void lb_embedding_backward_f64(double *dtable, const double *dout, const int32_t *ids,
                               int64_t N, int64_t C)
{
    lb_embedding_backward_f64_impl(dtable, dout, ids, N, C);
}
void lb_meanpool_forward_f64(double *out, const double *inp, const uint8_t *mask, int64_t B,
                             int64_t T, int64_t C)
{
    lb_meanpool_forward_f64_impl(out, inp, mask, B, T, C);
}
void lb_meanpool_backward_f64(double *dinp, const double *dout, const uint8_t *mask, int64_t B,
                              int64_t T, int64_t C)
{
    lb_meanpool_backward_f64_impl(dinp, dout, mask, B, T, C);
}
void lb_attention_forward_f64(double *out, double *probs, double *context, double *gate,
                              const double *qkv, const uint8_t *key_mask, const double *gate_in,
                              const double *gate_w, const double *gate_b,
                              const lb_attention_shape *s)
{
    lb_attention_forward_f64_impl(out, probs, context, gate, qkv, key_mask, gate_in, gate_w,
                                  gate_b, s);
}
void lb_attention_backward_f64(double *dqkv, double *dgate_in, double *dgate_w, double *dgate_b,
                               double *scratch, const double *dout, const double *qkv,
                               const double *probs, const double *context, const double *gate,
                               const uint8_t *key_mask, const double *gate_in,
                               const double *gate_w, const lb_attention_shape *s)
{
    lb_attention_backward_f64_impl(dqkv, dgate_in, dgate_w, dgate_b, scratch, dout, qkv, probs,
                                   context, gate, key_mask, gate_in, gate_w, s);
}
void lb_crossentropy_forward_f64(double *losses, double *probs, const double *logits,
                                 const int32_t *targets, int64_t N, int64_t V)
{
    lb_crossentropy_forward_f64_impl(losses, probs, logits, targets, N, V);
}
void lb_crossentropy_backward_f64(double *dlogits, const double *probs, const int32_t *targets,
                                  int64_t N, int64_t V, float scale)
{
    lb_crossentropy_backward_f64_impl(dlogits, probs, targets, N, V, scale);
}
void lb_adamw_update_f64(double *params, const double *grads, double *m, double *v, int64_t n,
                         float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                         float weight_decay)
{
    lb_adamw_update_f64_impl(params, grads, m, v, n, lr, beta1, beta2, bc1, bc2, eps,
                             weight_decay);
}

/* models/layers_f64.h — the reference layers of models/layers_impl.h
 * instantiated in double precision, for the finite-difference gradient
 * checks of tests/test_layers.c (not part of the library). Semantics and
 * shapes: lowbit/backend.h, with double in place of float. */
#ifndef LOWBIT_MODELS_LAYERS_F64_H
#define LOWBIT_MODELS_LAYERS_F64_H

#include <stdint.h>
#include "lowbit/backend.h"

void lb_linear_forward_f64(double *out, const double *inp, const double *weight,
                           const double *bias, int64_t N, int64_t C, int64_t OC);
void lb_linear_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, int64_t N, int64_t C,
                            int64_t OC);
void lb_layernorm_forward_f64(double *out, double *mean, double *rstd, const double *inp,
                              const double *weight, const double *bias, int64_t N, int64_t C,
                              float eps);
void lb_layernorm_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                               const double *inp, const double *weight, const double *mean,
                               const double *rstd, int64_t N, int64_t C);
void lb_gelu_forward_f64(double *out, const double *inp, int64_t n);
void lb_gelu_backward_f64(double *dinp, const double *inp, const double *dout, int64_t n);
void lb_embedding_forward_f64(double *out, const int32_t *ids, const double *table, int64_t N,
                              int64_t C);
void lb_embedding_backward_f64(double *dtable, const double *dout, const int32_t *ids,
                               int64_t N, int64_t C);
void lb_meanpool_forward_f64(double *out, const double *inp, const uint8_t *mask, int64_t B,
                             int64_t T, int64_t C);
void lb_meanpool_backward_f64(double *dinp, const double *dout, const uint8_t *mask, int64_t B,
                              int64_t T, int64_t C);
void lb_attention_forward_f64(double *out, double *probs, double *context, double *gate,
                              const double *qkv, const uint8_t *key_mask, const double *gate_in,
                              const double *gate_w, const double *gate_b,
                              const lb_attention_shape *s);
void lb_attention_backward_f64(double *dqkv, double *dgate_in, double *dgate_w, double *dgate_b,
                               double *scratch, const double *dout, const double *qkv,
                               const double *probs, const double *context, const double *gate,
                               const uint8_t *key_mask, const double *gate_in,
                               const double *gate_w, const lb_attention_shape *s);
void lb_crossentropy_forward_f64(double *losses, double *probs, const double *logits,
                                 const int32_t *targets, int64_t N, int64_t V);
void lb_crossentropy_backward_f64(double *dlogits, const double *probs, const int32_t *targets,
                                  int64_t N, int64_t V, float scale);
void lb_adamw_update_f64(double *params, const double *grads, double *m, double *v, int64_t n,
                         float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                         float weight_decay);

#endif

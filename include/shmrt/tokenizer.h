/* shmrt — tokenizers: text to token ids and back.
 *
 * Byte-pair encoding as Hugging Face `tokenizers` and tiktoken do it, from
 *  - a `tokenizer.json` with a BPE model: byte-level (GPT-2, Llama 3, Qwen2)
 *    or SentencePiece-style with byte fallback (Llama 2, Mistral);
 *  - a tiktoken rank file (a base64 token and its rank per line; Llama 3's
 *    `tokenizer.model`), with the split regex named by `pattern`, since the
 *    file carries none;
 *  - a GGUF file (llama.cpp's model format), from its tokenizer.ggml.*
 *    metadata: "gpt2" byte-level BPE with the split regexes that
 *    tokenizer.ggml.pre names, or "llama" SentencePiece BPE (scores, byte
 *    fallback, add_space_prefix), encoded as llama.cpp does and decoded to
 *    the text of llama.cpp's pieces, except that the space SentencePiece
 *    put in front is dropped from the start, as HF's decode drops it.
 * Encoding follows HF's pipeline: added and special tokens are found first,
 * then the rest is normalized, pre-tokenized (split) and merged. Input that
 * is not UTF-8 is encoded, not refused: byte-level models give each stray
 * byte its byte token, byte-fallback models its <0xNN> token.
 *
 * Encoding uses scratch space and a cache in the handle: one thread at a
 * time per handle (load one handle per thread to encode in parallel).
 * Decoding, streams and lookups only read the handle: any number of threads
 * may do them at once, also while one thread encodes. */
#ifndef SHMRT_TOKENIZER_H
#define SHMRT_TOKENIZER_H

#include "common.h"

struct shmrt_tokenizer;
struct shmrt_detok_stream;

/* Encoding flags. */
enum {
	/* Add the tokens of the file's post-processor for one sequence: the
	 * special tokens of TemplateProcessing's "single" template around the
	 * text (Llama's BOS), also inside a Sequence of processors. For a
	 * tiktoken file with pattern "llama3", <|begin_of_text|> first, as
	 * Meta's tokenizer does. */
	SHMRT_ENCODE_ADD_SPECIAL = 1u << 0,
	/* Special tokens written in the text are ordinary text (HF's
	 * encode_special_tokens): use for untrusted input. */
	SHMRT_ENCODE_SPECIAL_AS_TEXT = 1u << 1,
};

/* Decoding flags. */
enum {
	SHMRT_DECODE_SKIP_SPECIAL = 1u << 0,  /* leave special tokens out */
	/* The text HF's decode returns: what is not UTF-8 becomes U+FFFD
	 * (per broken sequence for byte-level models; per <0xNN> token of a
	 * run that is not UTF-8 with ByteFallback, as HF does). Without it,
	 * decode gives the exact bytes: for tiktoken and for a byte-level
	 * tokenizer.json without a normalizer or added tokens that strip
	 * spaces (Llama 3's), decode(encode(text)) is text, byte for byte. */
	SHMRT_DECODE_LOSSY = 1u << 1,
};

/* Loads path: a tokenizer.json or a GGUF file (told apart by its first
 * bytes, "GGUF"; pattern NULL), or a tiktoken rank file with pattern
 * "gpt2", "cl100k", "o200k" or "llama3", which picks the split regex and
 * the special tokens (see runtime/tokenizer/tiktoken.c). In a GGUF file,
 * control, user-defined and unknown tokens are added tokens (control and
 * unknown ones special), SHMRT_ENCODE_ADD_SPECIAL adds BOS and EOS as
 * tokenizer.ggml.add_bos_token and add_eos_token say, and added tokens
 * decode to their text as is (see runtime/tokenizer/gguf_vocab.c). Errors: -ENOENT
 * and the like from the file, -EINVAL for a malformed file (the message
 * names the file and the place: JSON line and column, the merge that names
 * an unknown token...), -ENOTSUP for a model, normalizer, pre-tokenizer or
 * decoder type we do not implement. */
SHMRT_API int shmrt_tokenizer_load(const char *path, const char *pattern, struct shmrt_tokenizer **out);

SHMRT_API void shmrt_tokenizer_free(struct shmrt_tokenizer *tok);

/* Encodes text[0..len) (any bytes). Writes up to cap ids and returns how
 * many the text has (call again with a larger array if that is more than
 * cap), or -errno. */
SHMRT_API int shmrt_tokenizer_encode(struct shmrt_tokenizer *tok, const char *text, size_t len, unsigned flags,
				     int32_t *ids, size_t cap);

/* Decodes ids[0..n) into out: writes up to cap bytes, NUL-terminated when
 * cap > 0, and returns the decoded length without the NUL (as snprintf
 * does), or -EINVAL for an id outside the vocabulary. */
SHMRT_API int shmrt_tokenizer_decode(const struct shmrt_tokenizer *tok, const int32_t *ids, size_t n,
				     unsigned flags, char *out, size_t cap);

/* Ids run from 0 to vocab_size - 1 (a few may have no token). */
SHMRT_API int32_t shmrt_tokenizer_vocab_size(const struct shmrt_tokenizer *tok);

/* The id of a token spelled as in the file ("Ġthe", "▁the", "<s>"; raw
 * bytes for tiktoken), or -ENOENT. */
SHMRT_API int32_t shmrt_tokenizer_token_id(const struct shmrt_tokenizer *tok, const char *token, size_t len);

/* The token of id as the file spells it, NUL-terminated, with its length in
 * *len (may be NULL); NULL if id has no token. */
SHMRT_API const char *shmrt_tokenizer_token(const struct shmrt_tokenizer *tok, int32_t id, size_t *len);

/* 1 if id is a special token (skipped by SHMRT_DECODE_SKIP_SPECIAL), else 0. */
SHMRT_API int shmrt_tokenizer_is_special(const struct shmrt_tokenizer *tok, int32_t id);

/* The special token ids, ascending: writes up to cap, returns the count. */
SHMRT_API int shmrt_tokenizer_special_ids(const struct shmrt_tokenizer *tok, int32_t *ids, size_t cap);

/* The first token SHMRT_ENCODE_ADD_SPECIAL puts before the text (BOS), or
 * -ENOENT. */
SHMRT_API int32_t shmrt_tokenizer_bos_id(const struct shmrt_tokenizer *tok);

/* The end-of-sequence token a GGUF file names (tokenizer.ggml.eos_token_id),
 * or -ENOENT: tokenizer.json and tiktoken files do not name it, take it
 * from the model's config. */
SHMRT_API int32_t shmrt_tokenizer_eos_id(const struct shmrt_tokenizer *tok);

/* The chat template the file carries (a GGUF file's
 * tokenizer.chat_template, Jinja2 text): *tmpl (NUL-terminated, valid while
 * tok is) and *len; either may be NULL. -ENOENT if it has none, as for
 * every tokenizer.json and tiktoken file (theirs is in
 * tokenizer_config.json). */
SHMRT_API int shmrt_tokenizer_chat_template(const struct shmrt_tokenizer *tok, const char **tmpl, size_t *len);

/* Streaming detokenization: feed one id at a time, get back the text that
 * is now complete. A UTF-8 character split across tokens is held back until
 * its last byte arrives; a sequence that can no longer be completed becomes
 * U+FFFD. With a ByteFallback decoder (Llama 2), a run of <0xNN> tokens is
 * held until a token of another kind (or flush) ends it, because HF decodes
 * the run as a whole: its text if the run is UTF-8, else one U+FFFD per
 * token. Every chunk is valid UTF-8, and the concatenated output of
 * push... flush equals shmrt_tokenizer_decode of the same ids with
 * SHMRT_DECODE_LOSSY (flags: SHMRT_DECODE_SKIP_SPECIAL or 0; LOSSY is
 * implied). The stream reads the tokenizer, which must outlive it; one
 * stream per sequence, used by one thread at a time. */
SHMRT_API int shmrt_detok_stream_new(const struct shmrt_tokenizer *tok, unsigned flags,
				     struct shmrt_detok_stream **out);

/* Adds id; *text points to the bytes now complete (valid UTF-8, maybe none)
 * until the next call on this stream. Returns their length or -errno. */
SHMRT_API int shmrt_detok_stream_push(struct shmrt_detok_stream *s, int32_t id, const char **text);

/* Ends the sequence: returns what was held back (U+FFFD for an unfinished
 * character) and makes the stream ready for a new sequence. */
SHMRT_API int shmrt_detok_stream_flush(struct shmrt_detok_stream *s, const char **text);

SHMRT_API void shmrt_detok_stream_free(struct shmrt_detok_stream *s);

#endif

/* Loading a tokenizer from a GGUF file's metadata (the tokenizer.ggml.*
 * keys of llama.cpp's converter) into the handle a tokenizer.json fills:
 * the same BPE engine, pre-tokenizer, decoder and added-token search. What
 * the keys mean is llama.cpp's vocabulary code, src/llama-vocab.cpp
 * (llama_vocab::impl::load, tokenize, token_to_piece, and the pre-tokenizer
 * table in llm_tokenizer_bpe); we learn from it, the code is ours:
 *  - model "gpt2": byte-level BPE with tokenizer.ggml.merges (rank = place
 *    in the list); tokenizer.ggml.pre names the split regexes, applied one
 *    after another, each match and the text between matches a piece.
 *  - model "llama": SentencePiece BPE. Spaces become U+2581, and one goes in
 *    front of each stretch of text (at the start and after every special
 *    token) with add_space_prefix; of the adjacent symbols whose
 *    concatenation is a token, the pair making the token of highest score
 *    merges first, leftmost on ties; a character without a token becomes
 *    its <0xNN> byte tokens. For the BPE engine those are merges: every
 *    split of a token into two tokens, ranked by the token's score.
 * Token types (tokenizer.ggml.token_type): control (3), user-defined (4)
 * and unknown (2) tokens are added tokens, found in the text before it is
 * split, as llama.cpp partitions it; control and unknown ones are special
 * (text with SHMRT_ENCODE_SPECIAL_AS_TEXT, skipped by
 * SHMRT_DECODE_SKIP_SPECIAL). Added tokens decode to their text as is,
 * unused (5) and undefined (0) tokens to nothing, as llama.cpp does.
 * SentencePiece's text then loses the space put in front of it (HF's
 * Llama 2 decoder: U+2581 to ' ', byte fallback, strip one leading space),
 * where llama.cpp's pieces keep it and its llama_detokenize drops it only
 * when BOS is not first. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_size.h"
#include "fail.h"
#include "gguf.h"
#include "json_file.h"
#include "tokenizer_impl.h"

enum token_type {
	TYPE_UNDEFINED = 0,
	TYPE_NORMAL = 1,
	TYPE_UNKNOWN = 2,
	TYPE_CONTROL = 3,
	TYPE_USER_DEFINED = 4,
	TYPE_UNUSED = 5,
	TYPE_BYTE = 6,
};

/* The split regexes of llama.cpp's pre-tokenizer types (llm_tokenizer_bpe
 * in src/llama-vocab.cpp), as it runs them: where it adapted a
 * tokenizer.json regex for std::regex, its adapted form. */
#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define LLAMA3_RE(digits)                                                                                   \
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" digits \
	"| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define PORO_RE " ?[^(\\s|.,!?…。，、।۔،)]+"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]"};
static const char *const re_gpt2[] = {GPT2_RE};
static const char *const re_starcoder[] = {"\\p{N}", GPT2_RE};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]"};
static const char *const re_llama3[] = {LLAMA3_RE("\\p{N}{1,3}")};
static const char *const re_qwen2[] = {LLAMA3_RE("\\p{N}")};
/* Its letters as code points: some of them (U+1F7D, U+2126, ...) have
 * other canonical forms, which a normalizing copy would put in. */
static const char *const re_deepseek_llm[] = {
	"[\r\n]",
	"\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
	"\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
	"\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
	"\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
	"\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
	"\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
	"\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
	"\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
	"\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
	"\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
	"\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
	"\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
	"\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
	"\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
	"\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
	"\\x{1E900}-\\x{1E943}]+",
	"\\s?[!-/:-~！-／：-～‘-‟　-。]+",
	"\\s+$",
	"[一-龥ࠀ-一가-퟿]+",
	"\\p{N}+",
};
static const char *const re_deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
static const char *const re_deepseek3[] = {
	"\\p{N}{1,3}",
	"[一-龥぀-ゟ゠-ヿ]+",
	"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
	" ?[\\p{P}\\p{S}]+[\r\n]*|"
	"\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};
static const char *const re_tekken[] = {
	"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
	"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|"
	"\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
static const char *const re_gpt4o[] = {
	"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
	"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
	"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
	"\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
static const char *const re_poro[] = {PORO_RE};
static const char *const re_viking[] = {PORO_RE, "\\p{N}"};

#define RES(a) a, ARRAY_SIZE(a)

/* tokenizer.ggml.pre: the names llama.cpp gives each type (a space-separated
 * list), its regexes, and what the type changes: ignore_merges (a piece
 * that is a token is that token), and add_bos by default. */
static const struct pre_type {
	const char *names;
	const char *const *re;
	size_t re_n;
	bool ignore_merges, add_bos;
} pre_types[] = {
	{"default", RES(re_default), false, false},
	{"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2", RES(re_llama3), true, true},
	{"dbrx smaug-bpe chatglm-bpe glm4", RES(re_llama3), false, false},
	{"qwen2 deepseek-r1-qwen stablelm2 megrez hunyuan solar-open kormo", RES(re_qwen2), false, false},
	{"starcoder refact command-r smollm codeshell exaone minerva-7b mellum2", RES(re_starcoder), false, false},
	{"gpt-2 phi-2 mpt olmo jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum exaone4 jina-v1-en "
	 "jina-v2-code roberta-bpe trillion granite-docling", RES(re_gpt2), false, false},
	{"falcon", RES(re_falcon), false, false},
	{"deepseek-llm", RES(re_deepseek_llm), false, false},
	{"deepseek-coder", RES(re_deepseek_coder), false, false},
	{"deepseek-v3", RES(re_deepseek3), false, false},
	{"tekken", RES(re_tekken), true, true},
	{"gpt-4o llama4", RES(re_gpt4o), false, false},
	{"poro-chat bloom gpt3-finnish", RES(re_poro), false, false},
	{"viking", RES(re_viking), false, false},
};

/* Tokens llama.cpp makes control by their text when a converter left them
 * normal: the end-of-generation ones (llama_vocab::impl::load). */
static const char *const control_names[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<|eom_id|>",
	"<EOT>", "_<EOT>", "<end_of_utterance>", "<｜end▁of▁sentence｜>",
};

/* What the load reads, before it goes into the handle. */
struct meta {
	const char *file;
	const struct shmrt_gguf *g;
	bool spm;                   /* model "llama" */
	const struct pre_type *pre; /* gpt2 */
	const struct shmrt_gguf_kv *tokens, *types, *scores;
	int32_t n;
};

static bool has_name(const char *list, const char *s, size_t n)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " ");
		if (len == n && !memcmp(p, s, n))
			return true;
		p += len + (p[len] == ' ');
	}
	return false;
}

static int read_model(struct meta *m)
{
	const char *s;
	size_t n;
	int rc = shmrt_gguf_get_str(m->g, "tokenizer.ggml.model", &s, &n);
	if (rc < 0)
		return rc == -ENOENT ? shmrt_fail(EINVAL, "%s: no tokenizer.ggml.model: the file carries no tokenizer",
						  m->file) : rc;
	m->spm = n == 5 && !memcmp(s, "llama", 5);
	if (!m->spm && !(n == 4 && !memcmp(s, "gpt2", 4)))
		return shmrt_fail(ENOTSUP, "%s: tokenizer.ggml.model \"%.*s\" is not supported (gpt2 and llama are)",
				  m->file, (int)(n < 64 ? n : 64), s);
	if (m->spm)
		return 0;
	/* llama.cpp falls back to "default" when the key is missing (and warns
	 * that quality suffers). */
	if (!shmrt_gguf_find(m->g, "tokenizer.ggml.pre")) {
		m->pre = &pre_types[0];
		return 0;
	}
	if ((rc = shmrt_gguf_get_str(m->g, "tokenizer.ggml.pre", &s, &n)) < 0)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(pre_types) && !m->pre; i++)
		if (has_name(pre_types[i].names, s, n))
			m->pre = &pre_types[i];
	if (!m->pre)
		return shmrt_fail(ENOTSUP, "%s: tokenizer.ggml.pre \"%.*s\" is not a pre-tokenizer we know "
				  "(default, llama-bpe, qwen2, smollm, gpt-2, deepseek-llm, tekken, phi-2 and others "
				  "of llama.cpp's)",
				  m->file, (int)(n < 64 ? n : 64), s);
	return 0;
}

/* An optional array of numbers with one entry per token. */
static int per_token(struct meta *m, const char *key, bool floats, const struct shmrt_gguf_kv **out)
{
	*out = NULL;
	if (!shmrt_gguf_find(m->g, key))
		return 0;
	const struct shmrt_gguf_kv *kv;
	int rc = shmrt_gguf_get_array(m->g, key, -1, &kv);
	if (rc < 0)
		return rc;
	bool is_float = kv->elem_type == SHMRT_GGUF_F32 || kv->elem_type == SHMRT_GGUF_F64;
	bool is_int = kv->elem_type <= SHMRT_GGUF_I32 || kv->elem_type == SHMRT_GGUF_U64 ||
		      kv->elem_type == SHMRT_GGUF_I64;
	if (!is_int && !(floats && is_float))
		return shmrt_fail(EINVAL, "%s: %s must be an array of %s", m->file, key,
				  floats ? "numbers" : "integers");
	if (kv->n != (uint64_t)m->n)
		return shmrt_fail(EINVAL, "%s: %s has %llu entries for %d tokens", m->file, key,
				  (unsigned long long)kv->n, m->n);
	*out = kv;
	return 0;
}

/* llama.cpp reads scores as f32 (or i32). */
static float score(const struct meta *m, int32_t id)
{
	if (!m->scores)
		return 0;
	if (m->scores->elem_type == SHMRT_GGUF_F32 || m->scores->elem_type == SHMRT_GGUF_F64)
		return (float)shmrt_gguf_array_float(m->scores, (uint64_t)id);
	return (float)shmrt_gguf_array_int(m->scores, (uint64_t)id);
}

static int read_arrays(struct meta *m)
{
	int rc = shmrt_gguf_get_array(m->g, "tokenizer.ggml.tokens", SHMRT_GGUF_STRING, &m->tokens);
	if (rc == -ENOENT)
		return shmrt_fail(EINVAL, "%s: tokenizer.ggml.tokens is missing: a tokenizer needs its tokens",
				  m->file);
	if (rc < 0)
		return rc;
	if (m->tokens->n == 0 || m->tokens->n >= TOK_MAX_VOCAB)
		return shmrt_fail(EINVAL, "%s: tokenizer.ggml.tokens has %llu tokens (1 to %d allowed)", m->file,
				  (unsigned long long)m->tokens->n, TOK_MAX_VOCAB - 1);
	m->n = (int32_t)m->tokens->n;
	rc = per_token(m, "tokenizer.ggml.token_type", false, &m->types);
	if (rc == 0)
		rc = per_token(m, "tokenizer.ggml.scores", true, &m->scores);
	for (int32_t id = 0; m->types && id < m->n && rc == 0; id++) {
		int64_t t = shmrt_gguf_array_int(m->types, (uint64_t)id);
		if (t < TYPE_UNDEFINED || t > TYPE_BYTE)
			rc = shmrt_fail(EINVAL, "%s: tokenizer.ggml.token_type[%d] = %lld is not a token type (0 to 6)",
					m->file, id, (long long)t);
	}
	/* A NaN would make the merge order undefined. */
	for (int32_t id = 0; m->scores && id < m->n && rc == 0; id++)
		if (isnan(score(m, id)))
			rc = shmrt_fail(EINVAL, "%s: tokenizer.ggml.scores[%d] is NaN", m->file, id);
	return rc;
}

static int token_type(const struct meta *m, int32_t id)
{
	return m->types ? (int)shmrt_gguf_array_int(m->types, (uint64_t)id) : TYPE_NORMAL;
}

/* The vocabulary; an empty token gets a name as in llama.cpp ("[EMPTY_7]"),
 * and a token given twice is refused, as llama.cpp refuses it. */
static int load_tokens(struct shmrt_tokenizer *tok, const struct meta *m)
{
	struct tok_vocab *v = &tok->bpe.vocab;
	int rc = tok_vocab_init(v, m->n);
	for (int32_t id = 0; id < m->n && rc == 0; id++) {
		const char *s;
		size_t len;
		char empty[32];
		shmrt_gguf_array_str(m->tokens, (uint64_t)id, &s, &len);
		if (len == 0) {
			len = (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%d]", id);
			s = empty;
		}
		rc = tok_vocab_set(v, id, s, len);
	}
	if (rc == 0)
		rc = tok_vocab_index(v);
	for (int32_t id = 0; id < m->n && rc == 0; id++) {
		size_t len;
		const char *s = tok_vocab_get(v, id, &len);
		int32_t first = tok_vocab_find(v, s, len);
		if (first != id)
			rc = shmrt_fail(EINVAL, "%s: tokenizer.ggml.tokens has \"%.*s\" twice (ids %d and %d)", m->file,
					(int)(len < 64 ? len : 64), s, first, id);
	}
	return rc;
}

static bool control_name(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(control_names); i++)
		if (strlen(control_names[i]) == len && !memcmp(control_names[i], s, len))
			return true;
	return false;
}

/* Added tokens, and how each id decodes. */
static int load_added(struct shmrt_tokenizer *tok, const struct meta *m)
{
	tok->piece_kind = calloc((size_t)m->n, 1);
	if (!tok->piece_kind)
		return shmrt_fail(ENOMEM, "%s: out of memory", m->file);
	int rc = 0;
	for (int32_t id = 0; id < m->n && rc == 0; id++) {
		size_t len;
		const char *s = tok_vocab_get(&tok->bpe.vocab, id, &len);
		int type = token_type(m, id);
		if (type == TYPE_NORMAL && control_name(s, len))
			type = TYPE_CONTROL;
		if (type == TYPE_UNUSED || type == TYPE_UNDEFINED)
			tok->piece_kind[id] = TOK_PIECE_NONE;
		if (type != TYPE_CONTROL && type != TYPE_USER_DEFINED && type != TYPE_UNKNOWN)
			continue;
		tok->piece_kind[id] = TOK_PIECE_VERBATIM;
		struct tok_added t = {.content = (char *)s, .len = len, .id = id, .special = type != TYPE_USER_DEFINED};
		rc = tok_added_add(&tok->added, &t);
	}
	return rc;
}

/* gpt2's merges: "left right", split at the first space after the first
 * byte (as llama.cpp does). Added from the last to the first, so that of a
 * pair given twice the first stays, as in llama.cpp's map. */
static int load_merges(struct shmrt_tokenizer *tok, const struct meta *m)
{
	const struct shmrt_gguf_kv *kv;
	int rc = shmrt_gguf_get_array(m->g, "tokenizer.ggml.merges", SHMRT_GGUF_STRING, &kv);
	if (rc == -ENOENT)
		return shmrt_fail(EINVAL, "%s: tokenizer.ggml.merges is missing: a gpt2 tokenizer needs its merges",
				  m->file);
	if (rc < 0)
		return rc;
	if (kv->n >= UINT32_MAX)
		return shmrt_fail(EINVAL, "%s: %llu merges is too many", m->file, (unsigned long long)kv->n);
	const struct tok_vocab *v = &tok->bpe.vocab;
	struct tok_buf both = {0};
	for (uint64_t i = kv->n; i-- > 0 && rc == 0;) {
		const char *s, *sp;
		size_t len;
		shmrt_gguf_array_str(kv, i, &s, &len);
		sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
		if (!sp || sp + 1 == s + len) {
			rc = shmrt_fail(EINVAL, "%s: tokenizer.ggml.merges[%llu] \"%.*s\" is not \"left right\"",
					m->file, (unsigned long long)i, (int)(len < 64 ? len : 64), s);
			break;
		}
		size_t ln = (size_t)(sp - s), rn = len - ln - 1;
		int32_t left = tok_vocab_find(v, s, ln), right = tok_vocab_find(v, sp + 1, rn), merged = -1;
		both.n = 0;
		if ((rc = tok_buf_append(&both, s, ln)) < 0 || (rc = tok_buf_append(&both, sp + 1, rn)) < 0)
			break;
		merged = tok_vocab_find(v, both.p, both.n);
		if (left < 0 || right < 0 || merged < 0) {
			const char *what = left < 0 ? s : right < 0 ? sp + 1 : both.p;
			size_t what_n = left < 0 ? ln : right < 0 ? rn : both.n;
			rc = shmrt_fail(EINVAL, "%s: tokenizer.ggml.merges[%llu] refers to \"%.*s\", which is not in "
					"tokenizer.ggml.tokens", m->file, (unsigned long long)i,
					(int)(what_n < 64 ? what_n : 64), what);
			break;
		}
		rc = tok_bpe_add_merge(&tok->bpe, left, right, (uint32_t)i, merged);
	}
	tok_buf_free(&both);
	return rc;
}

struct scored {
	float score;
	int32_t id;
};

static int by_score(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;
	return (x->score < y->score) - (x->score > y->score);
}

/* SentencePiece's merges: every split of a token into two tokens (at a
 * character boundary) merges into it, at the rank of its score: higher
 * scores first, equal scores one rank, so that the leftmost pair wins, as
 * in llama.cpp's llm_tokenizer_spm. */
static int spm_merges(struct shmrt_tokenizer *tok, const struct meta *m)
{
	struct scored *order = malloc((size_t)m->n * sizeof(*order));
	uint32_t *rank = malloc((size_t)m->n * sizeof(*rank));
	int rc = order && rank ? 0 : shmrt_fail(ENOMEM, "%s: out of memory", m->file);
	for (int32_t id = 0; id < m->n && rc == 0; id++)
		order[id] = (struct scored){score(m, id), id};
	if (rc == 0)
		qsort(order, (size_t)m->n, sizeof(*order), by_score);
	for (int32_t i = 0, r = 0; i < m->n && rc == 0; i++) {
		r += i > 0 && order[i].score != order[i - 1].score;
		rank[order[i].id] = (uint32_t)r;
	}
	const struct tok_vocab *v = &tok->bpe.vocab;
	for (int32_t id = 0; id < m->n && rc == 0; id++) {
		size_t len;
		const char *s = tok_vocab_get(v, id, &len);
		for (size_t k = 1; k < len && rc == 0; k++) {
			if (((uint8_t)s[k] & 0xC0) == 0x80) /* inside a character */
				continue;
			int32_t left = tok_vocab_find(v, s, k), right = tok_vocab_find(v, s + k, len - k);
			if (left >= 0 && right >= 0)
				rc = tok_bpe_add_merge(&tok->bpe, left, right, rank[id], id);
		}
	}
	free(order);
	free(rank);
	return rc;
}

/* A token id key: absent leaves *id as it is; out of the vocabulary is an
 * error (llama.cpp warns and keeps its default). */
static int special_id(const struct meta *m, const char *key, int32_t *id)
{
	if (!shmrt_gguf_find(m->g, key))
		return 0;
	int64_t v;
	int rc = shmrt_gguf_get_int(m->g, key, 0, m->n - 1, &v);
	if (rc < 0)
		return rc;
	*id = (int32_t)v;
	return 0;
}

static int flag(const struct meta *m, const char *key, bool *out)
{
	return shmrt_gguf_find(m->g, key) ? shmrt_gguf_get_bool(m->g, key, out) : 0;
}

/* BOS and EOS around the text for SHMRT_ENCODE_ADD_SPECIAL, and <unk>. */
static int load_specials(struct shmrt_tokenizer *tok, const struct meta *m)
{
	/* llama.cpp's defaults: SentencePiece's ids, none for gpt2. */
	int32_t bos = m->spm ? 1 : -1, eos = m->spm ? 2 : -1, unk = m->spm ? 0 : -1, pad = -1;
	bool add_bos = m->spm || m->pre->add_bos, add_eos = false;
	int rc = special_id(m, "tokenizer.ggml.bos_token_id", &bos);
	if (rc == 0)
		rc = special_id(m, "tokenizer.ggml.eos_token_id", &eos);
	if (rc == 0)
		rc = special_id(m, "tokenizer.ggml.unknown_token_id", &unk);
	if (rc == 0)
		rc = special_id(m, "tokenizer.ggml.padding_token_id", &pad);
	if (rc == 0)
		rc = flag(m, "tokenizer.ggml.add_bos_token", &add_bos);
	if (rc == 0)
		rc = flag(m, "tokenizer.ggml.add_eos_token", &add_eos);
	if (rc < 0)
		return rc;
	if ((add_bos && (bos < 0 || bos >= m->n)) || (add_eos && (eos < 0 || eos >= m->n)))
		return shmrt_fail(EINVAL, "%s: tokenizer.ggml.add_%s_token is true, but the file has no %s_token_id",
				  m->file, add_bos ? "bos" : "eos", add_bos ? "bos" : "eos");
	tok->bpe.unk_id = m->spm && unk < m->n ? unk : -1;
	tok->eos_id = eos < m->n ? eos : -1;
	if (add_bos && (rc = tok_ids_push(&tok->prefix, bos)) < 0)
		return rc;
	return add_eos ? tok_ids_push(&tok->suffix, eos) : 0;
}

/* The normalizer and decoder, said in tokenizer.json's terms: what HF's
 * converter writes for the same tokenizers (Llama 2's for "llama"). */
#define META "\xE2\x96\x81" /* U+2581, SentencePiece's space */
#define REPLACE(from, to) "{\"type\":\"Replace\",\"pattern\":{\"String\":\"" from "\"},\"content\":\"" to "\"}"
#define SPM_DECODERS                                                                                        \
	"{\"type\":\"Sequence\",\"decoders\":[" REPLACE(META, " ") ",{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}"

static int load_pipeline(struct shmrt_tokenizer *tok, const struct meta *m, bool add_space_prefix, bool byte_tokens)
{
	static const char spm_norm[] =
		"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" META "\"},"
		REPLACE(" ", META) "]}";
	static const char spm_norm_bare[] = REPLACE(" ", META);
	static const char spm_dec[] = SPM_DECODERS ",{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
	static const char spm_dec_bare[] = SPM_DECODERS "]}";
	static const char bpe_dec[] = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteLevel\"}%s]}";
	char dec_text[128];
	const char *norm_text = m->spm ? (add_space_prefix ? spm_norm : spm_norm_bare) : NULL;
	snprintf(dec_text, sizeof(dec_text), bpe_dec, byte_tokens ? ",{\"type\":\"ByteFallback\"}" : "");
	const char *dec = m->spm ? (add_space_prefix ? spm_dec : spm_dec_bare) : dec_text;
	json_t *nj = NULL, *dj = NULL;
	int rc = norm_text ? shmrt_json_parse(norm_text, strlen(norm_text), m->file, &nj) : 0;
	if (rc == 0)
		rc = shmrt_json_parse(dec, strlen(dec), m->file, &dj);
	if (rc == 0)
		rc = tok_normalizer_parse(nj, (struct tok_json_at){m->file, "tokenizer.ggml"}, &tok->norm);
	if (rc == 0)
		rc = tok_decoder_parse(dj, (struct tok_json_at){m->file, "tokenizer.ggml"}, &tok->dec);
	json_decref(nj);
	json_decref(dj);
	if (rc < 0)
		return rc;
	if (m->spm)
		return tok_pretok_parse(NULL, (struct tok_json_at){m->file, "tokenizer.ggml"}, &tok->pretok);
	return tok_pretok_regexes(m->pre->re, m->pre->re_n, true, m->file, &tok->pretok);
}

static int load_template(struct shmrt_tokenizer *tok, const struct meta *m)
{
	const char *s;
	size_t n;
	if (!shmrt_gguf_find(m->g, "tokenizer.chat_template"))
		return 0;
	int rc = shmrt_gguf_get_str(m->g, "tokenizer.chat_template", &s, &n);
	if (rc < 0)
		return rc;
	if (!(tok->chat_template = malloc(n + 1)))
		return shmrt_fail(ENOMEM, "%s: out of memory", m->file);
	memcpy(tok->chat_template, s, n);
	tok->chat_template[n] = '\0';
	tok->chat_template_n = n;
	return 0;
}

static bool has_byte_tokens(const struct meta *m)
{
	for (int32_t id = 0; id < m->n; id++)
		if (token_type(m, id) == TYPE_BYTE)
			return true;
	return false;
}

int tok_load_gguf(struct shmrt_tokenizer *tok, const struct shmrt_gguf *g)
{
	struct meta m = {.file = tok->path, .g = g};
	bool add_space_prefix = true;
	int rc = read_model(&m);
	if (rc == 0)
		rc = read_arrays(&m);
	if (rc == 0)
		rc = load_tokens(tok, &m);
	if (rc == 0)
		rc = load_added(tok, &m);
	if (rc == 0)
		rc = load_specials(tok, &m);
	/* llama.cpp reads it for every model but only SentencePiece uses it. */
	if (rc == 0 && m.spm)
		rc = flag(&m, "tokenizer.ggml.add_space_prefix", &add_space_prefix);
	if (rc == 0)
		rc = load_pipeline(tok, &m, add_space_prefix, has_byte_tokens(&m));
	if (rc < 0)
		return rc;
	tok->bpe.byte_fallback = m.spm;
	tok->bpe.ignore_merges = !m.spm && m.pre->ignore_merges;
	rc = tok_bpe_prepare(&tok->bpe, m.spm ? TOK_BPE_CHARS : TOK_BPE_BYTES, !m.spm);
	if (rc == 0)
		rc = m.spm ? spm_merges(tok, &m) : load_merges(tok, &m);
	if (rc == 0)
		rc = load_template(tok, &m);
	return rc;
}

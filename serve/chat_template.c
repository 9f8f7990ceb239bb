/* Chat templates: Hugging Face models carry a Jinja2 template in
 * tokenizer_config.json, and no C Jinja engine is packaged (docs/SERVING.md,
 * "Chat templates"). As llama.cpp does without --jinja, we recognise the
 * common families by their marker tokens and render them in C:
 *   ChatML (Qwen2, SmolLM2: <|im_start|>, with the template's default system
 *   turn), Llama 3 (<|start_header_id|>), Llama 2 ([INST] with <<SYS>>) and
 *   Mistral ([INST]). tests/serve/chat_template_golden.py renders the same
 *   conversations with python3-jinja2 and compares, byte for byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

const char *chat_style_name(enum chat_style s)
{
	static const char *names[] = {"none", "chatml", "llama3", "llama2", "mistral"};
	return (unsigned)s <= CHAT_MISTRAL ? names[s] : "none";
}

/* A special token as tokenizer_config.json writes it: a string or
 * {"content": ...}. */
static char *token_string(json_t *cfg, const char *key)
{
	json_t *j = json_object_get(cfg, key);
	if (json_is_object(j))
		j = json_object_get(j, "content");
	return strdup(json_is_string(j) ? json_string_value(j) : "");
}

/* The template text: a string, or a list of {name, template} where the one
 * named "default" is the chat template. */
static const char *template_text(json_t *cfg)
{
	json_t *t = json_object_get(cfg, "chat_template");
	if (json_is_string(t))
		return json_string_value(t);
	if (json_is_array(t)) {
		size_t i;
		json_t *e;
		json_array_foreach(t, i, e) {
			json_t *name = json_object_get(e, "name"), *text = json_object_get(e, "template");
			if (json_is_string(name) && !strcmp(json_string_value(name), "default") && json_is_string(text))
				return json_string_value(text);
		}
	}
	return NULL;
}

/* ChatML templates that add a system turn when the conversation has none
 * write it as a Jinja string literal: '<|im_start|>system\nTEXT<|im_end|>\n'
 * (GGUF converters write the newline itself instead of \n). Returns TEXT
 * with the literal's escapes undone, or NULL. */
static char *chatml_default_system(const char *tmpl)
{
	static const char marker[] = "<|im_start|>system\\n", raw[] = "<|im_start|>system\n";
	const char *at = strstr(tmpl, marker);
	size_t skip = sizeof(marker) - 1;
	if (!at && (at = strstr(tmpl, raw)))
		skip = sizeof(raw) - 1;
	if (!at || !strstr(tmpl, "!= 'system'"))
		return NULL;
	at += skip;
	const char *end = strstr(at, "<|im_end|>");
	if (!end)
		return NULL;
	char *out = malloc((size_t)(end - at) + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = at; p < end; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
			*o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

static enum chat_style detect(const char *tmpl, char **why)
{
	if (strstr(tmpl, "<|im_start|>"))
		return CHAT_CHATML;
	if (strstr(tmpl, "<|start_header_id|>")) {
		if (strstr(tmpl, "Cutting Knowledge Date")) {
			*why = strdup("the model's chat template is Llama 3.1's (tools, dates), which shmrt does not "
				      "render; send a completion request with the prompt formatted yourself");
			return CHAT_NONE;
		}
		return CHAT_LLAMA3;
	}
	if (strstr(tmpl, "[INST]"))
		return strstr(tmpl, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
	*why = strdup("the model's chat template is not one shmrt renders (ChatML, Llama 2, Llama 3, Mistral); "
		      "send a completion request with the prompt formatted yourself");
	return CHAT_NONE;
}

/* The style of template text tmpl (and ChatML's default system turn). */
static void from_text(struct chat_template *t, const char *tmpl)
{
	t->style = detect(tmpl, &t->why_none);
	if (t->style == CHAT_CHATML)
		t->default_system = chatml_default_system(tmpl);
}

static char *token_text(const struct shmrt_tokenizer *tok, int32_t id)
{
	const char *s = id >= 0 ? shmrt_tokenizer_token(tok, id, NULL) : NULL;
	return strdup(s ? s : "");
}

int chat_template_from_tokenizer(struct chat_template *t, const struct shmrt_tokenizer *tok)
{
	memset(t, 0, sizeof(*t));
	const char *tmpl;
	t->bos = token_text(tok, shmrt_tokenizer_bos_id(tok));
	t->eos = token_text(tok, shmrt_tokenizer_eos_id(tok));
	if (shmrt_tokenizer_chat_template(tok, &tmpl, NULL) == 0)
		from_text(t, tmpl);
	else
		t->why_none = strdup("the model has no chat template (its GGUF file has no tokenizer.chat_template): "
				     "use /v1/completions");
	return t->bos && t->eos ? 0 : -ENOMEM;
}

int chat_template_load(struct chat_template *t, const char *dir)
{
	memset(t, 0, sizeof(*t));
	char path[4200];
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	json_error_t je;
	json_t *cfg = json_load_file(path, 0, &je);
	if (!cfg) {
		FILE *f = fopen(path, "r");
		if (!f) {
			t->why_none = strdup("the model has no chat template (no tokenizer_config.json): use "
					     "/v1/completions");
			return 0;
		}
		fclose(f);
		fprintf(stderr, "shmrt serve: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
		return -EINVAL;
	}
	const char *tmpl = template_text(cfg);
	t->bos = token_string(cfg, "bos_token");
	t->eos = token_string(cfg, "eos_token");
	if (!tmpl) {
		t->why_none = strdup("the model has no chat template (tokenizer_config.json has no chat_template): "
				     "use /v1/completions");
	} else {
		from_text(t, tmpl);
	}
	json_decref(cfg);
	return t->bos && t->eos ? 0 : -ENOMEM;
}

void chat_template_free(struct chat_template *t)
{
	free(t->default_system);
	free(t->bos);
	free(t->eos);
	free(t->why_none);
	memset(t, 0, sizeof(*t));
}

/* ---- rendering ------------------------------------------------------------ */

struct text {
	FILE *f;
	char *buf;
	size_t len;
};

static void put(struct text *o, const char *s)
{
	fputs(s, o->f);
}

static void put_n(struct text *o, const char *s, size_t n)
{
	fwrite(s, 1, n, o->f);
}

/* Python's str.strip() on the ASCII white space (Jinja's trim). */
static void put_stripped(struct text *o, const char *s)
{
	size_t n = strlen(s);
	while (n && strchr(" \t\n\r\v\f", s[n - 1]))
		n--;
	while (n && strchr(" \t\n\r\v\f", *s))
		s++, n--;
	put_n(o, s, n);
}

/* A message's role and content. OpenAI's content may be a string or a list
 * of parts; the text parts are joined with newlines (as vLLM does). */
static int message(json_t *m, const char **role, char **content, char *err, size_t cap)
{
	json_t *r = json_object_get(m, "role"), *c = json_object_get(m, "content");
	if (!json_is_object(m) || !json_is_string(r)) {
		snprintf(err, cap, "each message needs a string 'role'");
		return -EINVAL;
	}
	*role = json_string_value(r);
	if (!c || json_is_null(c))
		return (*content = strdup("")) ? 0 : -ENOMEM;
	if (json_is_string(c))
		return (*content = strdup(json_string_value(c))) ? 0 : -ENOMEM;
	if (!json_is_array(c)) {
		snprintf(err, cap, "a message's 'content' must be a string or a list of parts");
		return -EINVAL;
	}
	struct text o = {0};
	if (!(o.f = open_memstream(&o.buf, &o.len)))
		return -ENOMEM;
	size_t i;
	json_t *part;
	json_array_foreach(c, i, part) {
		json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
		if (!json_is_string(type) || strcmp(json_string_value(type), "text") || !json_is_string(text)) {
			fclose(o.f);
			free(o.buf);
			snprintf(err, cap, "only text content parts are supported");
			return -EINVAL;
		}
		if (i)
			put(&o, "\n");
		put(&o, json_string_value(text));
	}
	fclose(o.f);
	*content = o.buf;
	return 0;
}

/* ChatML and Llama 3 render each message alike, one turn after another,
 * then open the assistant's turn. */
typedef void (*turn_fn)(const struct chat_template *t, struct text *o, size_t i, const char *role,
			const char *content);

static int render_turns(const struct chat_template *t, json_t *msgs, struct text *o, turn_fn turn,
			const char *generation_prompt, char *err, size_t cap)
{
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) {
		const char *role;
		char *content;
		int rc = message(m, &role, &content, err, cap);
		if (rc)
			return rc;
		turn(t, o, i, role, content);
		free(content);
	}
	put(o, generation_prompt);
	return 0;
}

static void chatml_turn(const struct chat_template *t, struct text *o, size_t i, const char *role,
			const char *content)
{
	if (i == 0 && strcmp(role, "system") && t->default_system) {
		put(o, "<|im_start|>system\n");
		put(o, t->default_system);
		put(o, "<|im_end|>\n");
	}
	put(o, "<|im_start|>");
	put(o, role);
	put(o, "\n");
	put(o, content);
	put(o, "<|im_end|>\n");
}

static void llama3_turn(const struct chat_template *t, struct text *o, size_t i, const char *role,
			const char *content)
{
	if (i == 0)
		put(o, t->bos);
	put(o, "<|start_header_id|>");
	put(o, role);
	put(o, "<|end_header_id|>\n\n");
	put_stripped(o, content);
	put(o, "<|eot_id|>");
}

/* Llama 2 and Mistral: user and assistant turns alternate, user first;
 * Llama 2 folds a leading system message into the first user turn. */
static int render_inst(const struct chat_template *t, json_t *msgs, struct text *o, int llama2, char *err,
		       size_t cap)
{
	size_t first = 0;
	char *system = NULL;
	const char *role;
	int rc = 0;
	if (llama2 && json_array_size(msgs) > 0) {
		if ((rc = message(json_array_get(msgs, 0), &role, &system, err, cap)))
			return rc;
		if (!strcmp(role, "system"))
			first = 1;
		else
			free(system), system = NULL;
	}
	if (!llama2)
		put(o, t->bos);
	for (size_t i = first; i < json_array_size(msgs) && !rc; i++) {
		char *content;
		if ((rc = message(json_array_get(msgs, i), &role, &content, err, cap)))
			break;
		size_t k = i - first;
		int user = !strcmp(role, "user"), assistant = !strcmp(role, "assistant");
		if (user != (k % 2 == 0)) {
			snprintf(err, cap, "Conversation roles must alternate user/assistant/user/assistant/...");
			rc = -EINVAL;
		} else if (llama2 && user) {
			put(o, t->bos);
			put(o, "[INST] ");
			if (k == 0 && system) {
				/* content.strip() of "<<SYS>>\n" + system + ...: strips
				 * the system text's front, never the user's end */
				char *joined;
				if (asprintf(&joined, "<<SYS>>\n%s\n<</SYS>>\n\n%s", system, content) < 0) {
					rc = -ENOMEM;
				} else {
					put_stripped(o, joined);
					free(joined);
				}
			} else {
				put_stripped(o, content);
			}
			put(o, " [/INST]");
		} else if (llama2 && assistant) {
			put(o, " ");
			put_stripped(o, content);
			put(o, " ");
			put(o, t->eos);
		} else if (user) {
			put(o, "[INST] ");
			put(o, content);
			put(o, " [/INST]");
		} else if (assistant) {
			put(o, content);
			put(o, t->eos);
		} else if (!llama2) {
			snprintf(err, cap, "Only user and assistant roles are supported!");
			rc = -EINVAL;
		}
		free(content);
	}
	free(system);
	return rc;
}

int chat_template_render(const struct chat_template *t, json_t *messages, char **out, char *err, size_t cap)
{
	if (t->style == CHAT_NONE) {
		snprintf(err, cap, "%s", t->why_none ? t->why_none : "the model has no chat template");
		return -EINVAL;
	}
	if (!json_is_array(messages) || json_array_size(messages) == 0) {
		snprintf(err, cap, "'messages' must be a non-empty list");
		return -EINVAL;
	}
	struct text o = {0};
	if (!(o.f = open_memstream(&o.buf, &o.len)))
		return -ENOMEM;
	int rc;
	switch (t->style) {
	case CHAT_CHATML: rc = render_turns(t, messages, &o, chatml_turn, "<|im_start|>assistant\n", err, cap); break;
	case CHAT_LLAMA3:
		rc = render_turns(t, messages, &o, llama3_turn, "<|start_header_id|>assistant<|end_header_id|>\n\n", err,
				  cap);
		break;
	default: rc = render_inst(t, messages, &o, t->style == CHAT_LLAMA2, err, cap); break;
	}
	if (fclose(o.f) && !rc)
		rc = -ENOMEM;
	if (rc) {
		free(o.buf);
		return rc;
	}
	*out = o.buf;
	return 0;
}

/* shmrt serve: the HTTP model server (docs/SERVING.md). It is written
 * against the public API only (include/shmrt), as a model for users who link
 * shmrt into a server of their own: the build gives this folder no internal
 * include path.
 *
 * Pieces, one file each:
 *   server.c         libmicrohttpd daemon, request bodies, routing, limits
 *   link.c           the runtime it fronts: attach, health, tokenizer
 *   generation.c     one request's choices in the runtime: stop strings,
 *                    finish reasons, cancellation
 *   params.c         sampling fields of a JSON request (OpenAI / Vertex)
 *   openai.c         /v1/completions, /v1/chat/completions, /v1/models
 *   vertex.c         the Vertex AI predict route
 *   chat_template.c  ChatML, Llama 2/3 and Mistral chat templates
 *   metrics.c        /metrics in Prometheus text format
 *   sse.c            server-sent event streams (a response callback)
 *   reply.c          JSON replies and OpenAI-shaped errors */
#ifndef SHMRT_SERVE_H
#define SHMRT_SERVE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/shmrt.h"

struct MHD_Connection;
struct MHD_Daemon;

/* ---- chat templates (chat_template.c) ------------------------------------ */

enum chat_style { CHAT_NONE = 0, CHAT_CHATML, CHAT_LLAMA3, CHAT_LLAMA2, CHAT_MISTRAL };

struct chat_template {
	enum chat_style style;
	char *default_system; /* ChatML's system turn when the request has none, or NULL */
	char *bos, *eos;      /* tokenizer_config.json's bos_token, eos_token ("" if none; a GGUF's tokens) */
	char *why_none;       /* style NONE: why (no template, a template we do not render) */
};

/* Reads dir/tokenizer_config.json. A missing file or template is not an
 * error (style NONE, why_none says it); a malformed file is. */
int chat_template_load(struct chat_template *t, const char *dir);
/* A GGUF model's template, which its tokenizer carries
 * (shmrt_tokenizer_chat_template); BOS and EOS are its tokens. */
int chat_template_from_tokenizer(struct chat_template *t, const struct shmrt_tokenizer *tok);
void chat_template_free(struct chat_template *t);
/* Renders messages (a JSON array of {role, content}) with the assistant's
 * generation prompt; *out is malloc'd text. -EINVAL with *err set (static
 * or in errbuf) for messages the template refuses. */
int chat_template_render(const struct chat_template *t, json_t *messages, char **out, char *errbuf, size_t errcap);
const char *chat_style_name(enum chat_style s);

/* ---- metrics (metrics.c) ------------------------------------------------- */

#define HIST_BUCKETS 16
struct histogram {
	const double *bounds; /* HIST_BUCKETS upper bounds, seconds */
	_Atomic uint64_t counts[HIST_BUCKETS + 1]; /* the last: +Inf */
	_Atomic uint64_t sum_us;
};

enum http_route { ROUTE_HEALTH, ROUTE_LIVE, ROUTE_PREDICT, ROUTE_COMPLETIONS, ROUTE_CHAT, ROUTE_MODELS,
		  ROUTE_METRICS, ROUTE_OTHER, ROUTE_COUNT };
enum finish_kind { FINISH_LENGTH, FINISH_STOP, FINISH_ABORT, FINISH_ERROR, FINISH_COUNT };

struct serve_metrics {
	struct histogram ttft, itl, e2e;
	_Atomic uint64_t prompt_tokens, generation_tokens;
	_Atomic uint64_t finished[FINISH_COUNT];
	_Atomic uint64_t http[ROUTE_COUNT][6]; /* by route and status class 1xx..5xx (index 1..5) */
	_Atomic uint64_t rejected_full;        /* 503: the queue was full */
};

void metrics_init(struct serve_metrics *m);
void histogram_observe(struct histogram *h, double seconds);
/* The Prometheus text exposition of m and the runtime's figures. */
char *metrics_render(struct serve_metrics *m, const struct shmrt_runtime_stats *st,
		     const struct shmrt_runtime_info *info, int pending, int linked);

/* ---- the runtime link (link.c) ------------------------------------------- */

struct serve_link {
	const char *name;           /* the runtime's arena name */
	struct shmrt_runtime *owned; /* started by us (--model), or NULL (--name) */
	/* Requests hold the lock for reading while they use the client; the
	 * link's thread takes it for writing to attach or drop a client. */
	pthread_rwlock_t lock;
	struct shmrt_client *client;
	struct shmrt_runtime_info info;
	struct shmrt_tokenizer *tok; /* the runtime's model's, for prompts */
	pthread_mutex_t tok_mu;      /* encoding uses the handle's scratch */
	struct chat_template chat;
	char model_id[256];          /* what /v1/models lists */
	const char *served_name;     /* --served-model-name, or NULL */
	_Atomic int stop;
	pthread_t thread;
	char why_not_ready[512];     /* for 503 bodies */
	pthread_mutex_t why_mu;
};

int link_start(struct serve_link *l);
void link_stop(struct serve_link *l);
/* Takes the link for one request (a read lock): 0 with a READY runtime;
 * else the lock is not held and err says why (a 503). Encoding and
 * submitting need it held; gen_submit takes it over. */
int link_hold(struct serve_link *l, int stopping, char *err, size_t cap);
void link_release(struct serve_link *l);
/* The runtime's health for /health: READY, or why not in why[cap]. */
int link_health(struct serve_link *l, char *why, size_t cap);
/* Encodes text into *ids (malloc'd): 0 or -errno. */
int link_encode(struct serve_link *l, const char *text, size_t len, unsigned flags, int32_t **ids, int *n);

/* ---- server state --------------------------------------------------------- */

struct serve_options {
	const char *host;
	int port;
	const char *health_route, *predict_route;
	size_t max_body;      /* bytes of a request body */
	int max_pending;      /* requests (choices) in flight before 503 */
	int64_t drain_ns;
	unsigned threads_stack;
};

struct serve {
	struct serve_options opt;
	struct serve_link link;
	struct serve_metrics metrics;
	struct MHD_Daemon *daemon;
	_Atomic int pending;  /* choices submitted and not ended */
	_Atomic int stopping; /* SIGTERM: refuse new work */
	int64_t drain_deadline_ns;
};

int serve_start(struct serve *s);
/* Refuses new work, lets requests in flight end for up to drain_ns, then
 * ends the rest and stops listening. */
void serve_stop(struct serve *s);
/* Stops listening and closes every connection (joins their threads). */
void serve_close(struct serve *s);

/* ---- generation (generation.c) ------------------------------------------- */

#define GEN_MAX_STOP 8

struct gen_params {
	int max_tokens;       /* 0: until the context is full */
	double temperature, top_p;
	int top_k;
	uint64_t seed;
	int has_seed;
	int n;
	int ignore_eos;
	char *stop[GEN_MAX_STOP];
	int n_stop;
	int stream, include_usage, echo;
	int raw_response;     /* Vertex: bare text instead of "Prompt:\n...\nOutput:\n..." */
};

void gen_params_free(struct gen_params *p);

struct gen_choice {
	uint64_t id;
	int submitted, ended;
	char *text;
	size_t len, cap, emitted;
	enum finish_kind finish;
	int status;
	char error[512];
	int n_prompt, n_generated;
	int reported;         /* a stream sent its finish */
	int64_t t_last;       /* arrival of the last token, for inter-token latency */
};

struct gen {
	struct serve *s;
	int32_t *ids;
	int n_ids;
	struct gen_params p;
	struct gen_choice *c;
	int n;
	int64_t t_start;
	int locked;           /* holds the link's read lock */
};

/* Submits n choices of prompt ids; ids, p's strings and the caller's
 * link_hold are g's from here, whatever the result (gen_free ends them).
 * On failure, an HTTP status for the reply and a message in err. */
int gen_submit(struct gen *g, struct serve *s, int32_t *ids, int n_ids, const struct gen_params *p, int *http,
	       char *err, size_t errcap);
/* Reads choice i's next chunk (waits up to timeout_ns): 1 when there is new
 * text to emit or it ended, 0 on timeout, -errno. */
int gen_step(struct gen *g, int i, int64_t timeout_ns);
/* Runs every choice to its end. */
int gen_run(struct gen *g);
/* The text of choice i that may be shown now (stop strings held back). */
size_t gen_emittable(const struct gen *g, int i);
void gen_cancel(struct gen *g);
void gen_free(struct gen *g);
const char *finish_name(enum finish_kind f);

/* ---- request parsing (params.c) ------------------------------------------ */

/* Reads the sampling fields of obj, over the values already in p (Vertex's
 * parameters, then the instance's fields). 0, or -EINVAL with a message
 * naming the field. */
int params_read(struct gen_params *p, json_t *obj, char *err, size_t errcap);
void params_defaults(struct gen_params *p, int max_tokens);

/* ---- replies (reply.c) ---------------------------------------------------- */

/* The status of the reply this thread queued last (for the metrics). */
extern _Thread_local unsigned reply_status;
/* Queues a JSON reply (takes the reference to doc). */
int reply_json(struct MHD_Connection *conn, unsigned status, json_t *doc);
/* An OpenAI error object: {"error": {"message", "type", "param", "code"}}. */
int reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int reply_text(struct MHD_Connection *conn, unsigned status, const char *type, const char *text);
json_t *error_object(unsigned status, const char *message);
/* "PREFIX-" and 32 random hex digits: a response's id. */
void request_id(char *out, size_t cap, const char *prefix);

/* ---- routes --------------------------------------------------------------- */

int openai_completions(struct serve *s, struct MHD_Connection *conn, json_t *body);
int openai_chat(struct serve *s, struct MHD_Connection *conn, json_t *body);
int openai_models(struct serve *s, struct MHD_Connection *conn);
/* The prompt ids of a chat request (messages through the template). */
int openai_chat_prompt(struct serve *s, json_t *body, int32_t **ids, int *n, int *http, char *err, size_t errcap);
json_t *openai_chat_completion(struct gen *g, const char *model);
int vertex_predict(struct serve *s, struct MHD_Connection *conn, json_t *body);

/* ---- streams (sse.c) ------------------------------------------------------ */

enum sse_kind { SSE_COMPLETION, SSE_CHAT };
/* Streams g (taken over) as server-sent events. */
int sse_reply(struct serve *s, struct MHD_Connection *conn, struct gen *g, enum sse_kind kind, const char *model);

int64_t serve_now_ns(void);

#endif

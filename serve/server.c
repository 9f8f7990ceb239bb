/* The HTTP side: a libmicrohttpd daemon, one thread per connection (a
 * stream's callback may then block on the runtime's next token), request
 * bodies bounded by --max-body, and the routes:
 *   GET  /health and $AIP_HEALTH_ROUTE   200 when READY, else 503
 *   GET  /live                           200 while the server runs
 *   POST $AIP_PREDICT_ROUTE (/predict)   Vertex AI predict
 *   POST /v1/completions, /v1/chat/completions; GET /v1/models
 *   GET  /metrics                        Prometheus text */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

/* Connections at once, and a connection's idle time (the streams send a
 * comment every few seconds, so only idle keep-alive connections age). */
#define CONNECTION_LIMIT 4096
#define IDLE_TIMEOUT_S 300
/* Room for jansson's recursion on a deeply nested body (its parser stops
 * at depth 2048) in each connection's thread. */
#define THREAD_STACK (1u << 20)

struct request {
	char *body;
	size_t len;
	int refused; /* a reply went out before the body ended (too large) */
	enum http_route route;
};

static int too_large(struct serve *s, struct MHD_Connection *conn)
{
	return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than %zu bytes (--max-body)",
				  s->opt.max_body);
}

static enum http_route route_of(struct serve *s, const char *url)
{
	if (!strcmp(url, "/health") || !strcmp(url, s->opt.health_route))
		return ROUTE_HEALTH;
	if (!strcmp(url, "/live"))
		return ROUTE_LIVE;
	if (!strcmp(url, s->opt.predict_route))
		return ROUTE_PREDICT;
	if (!strcmp(url, "/v1/completions"))
		return ROUTE_COMPLETIONS;
	if (!strcmp(url, "/v1/chat/completions"))
		return ROUTE_CHAT;
	if (!strcmp(url, "/v1/models"))
		return ROUTE_MODELS;
	if (!strcmp(url, "/metrics"))
		return ROUTE_METRICS;
	return ROUTE_OTHER;
}

static int health(struct serve *s, struct MHD_Connection *conn)
{
	char why[600];
	if (!atomic_load(&s->stopping) && link_health(&s->link, why, sizeof(why)) == SHMRT_HEALTH_READY)
		return reply_text(conn, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}");
	if (atomic_load(&s->stopping))
		snprintf(why, sizeof(why), "the server is shutting down");
	return reply_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, error_object(MHD_HTTP_SERVICE_UNAVAILABLE, why));
}

static int metrics(struct serve *s, struct MHD_Connection *conn)
{
	struct shmrt_runtime_stats st = {.health = -1};
	struct shmrt_runtime_info info = {0};
	pthread_rwlock_rdlock(&s->link.lock);
	int linked = s->link.client != NULL;
	if (linked) {
		shmrt_client_stats(s->link.client, &st);
		info = s->link.info;
	}
	pthread_rwlock_unlock(&s->link.lock);
	char *text = metrics_render(&s->metrics, &st, &info, atomic_load(&s->pending), linked);
	if (!text)
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	int rc = reply_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
	return rc;
}

/* A POST route's body as JSON, or a 400 that says where it is malformed. */
static int with_json(struct serve *s, struct MHD_Connection *conn, struct request *r,
		     int (*handler)(struct serve *, struct MHD_Connection *, json_t *))
{
	json_error_t je;
	json_t *body = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
	if (!body)
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "the body is not valid JSON: %s (line %d, column %d)",
					  je.text, je.line, je.column);
	int rc = handler(s, conn, body);
	json_decref(body);
	return rc;
}

static int wrong_method(struct MHD_Connection *conn, const char *method, const char *url)
{
	return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s", method, url);
}

static int dispatch(struct serve *s, struct MHD_Connection *conn, const char *url, const char *method,
		    struct request *r)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
	switch (r->route) {
	case ROUTE_HEALTH: return get ? health(s, conn) : wrong_method(conn, method, url);
	case ROUTE_LIVE:
		return get ? reply_text(conn, MHD_HTTP_OK, "application/json", "{\"status\":\"alive\"}")
			   : wrong_method(conn, method, url);
	case ROUTE_METRICS: return get ? metrics(s, conn) : wrong_method(conn, method, url);
	case ROUTE_MODELS: return get ? openai_models(s, conn) : wrong_method(conn, method, url);
	case ROUTE_PREDICT: return post ? with_json(s, conn, r, vertex_predict) : wrong_method(conn, method, url);
	case ROUTE_COMPLETIONS: return post ? with_json(s, conn, r, openai_completions) : wrong_method(conn, method, url);
	case ROUTE_CHAT: return post ? with_json(s, conn, r, openai_chat) : wrong_method(conn, method, url);
	default: return reply_error(conn, MHD_HTTP_NOT_FOUND, "no route %s %s", method, url);
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)version;
	struct serve *s = cls;
	struct request *r = *state;
	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		r->route = route_of(s, url);
		*state = r;
		/* A declared length over the limit is refused before the body comes. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->opt.max_body) {
			r->refused = 1;
			return too_large(s, conn) == MHD_YES ? MHD_YES : MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->refused && r->len + *upload_size > s->opt.max_body) {
			r->refused = 1;
			free(r->body);
			r->body = NULL;
			*upload_size = 0;
			return too_large(s, conn) == MHD_YES ? MHD_YES : MHD_NO;
		}
		if (!r->refused) {
			char *b = realloc(r->body, r->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + r->len, upload, *upload_size);
			r->body = b;
			r->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->refused)
		return MHD_YES;
	reply_status = 0;
	int rc = dispatch(s, conn, url, method, r);
	unsigned cls_i = reply_status / 100;
	if (cls_i >= 1 && cls_i <= 5)
		atomic_fetch_add(&s->metrics.http[r->route][cls_i], 1);
	return rc == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)conn, (void)why;
	struct request *r = *state;
	if (r) {
		free(r->body);
		free(r);
		*state = NULL;
	}
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("shmrt serve: http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int serve_start(struct serve *s)
{
	metrics_init(&s->metrics);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST},
			*ai;
	char port[16];
	snprintf(port, sizeof(port), "%d", s->opt.port);
	int rc = getaddrinfo(s->opt.host, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "shmrt serve: --host %s: %s (give a numeric address, e.g. 0.0.0.0 or ::)\n", s->opt.host,
			gai_strerror(rc));
		return -EINVAL;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
				     MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
				     MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK, MHD_OPTION_NOTIFY_COMPLETED,
				     on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!s->daemon) {
		fprintf(stderr, "shmrt serve: cannot listen on %s port %d (in use, or not allowed)\n", s->opt.host,
			s->opt.port);
		return -EADDRINUSE;
	}
	return 0;
}

void serve_stop(struct serve *s)
{
	s->drain_deadline_ns = serve_now_ns() + s->opt.drain_ns;
	atomic_store(&s->stopping, 1);
	MHD_quiesce_daemon(s->daemon); /* no new connections */
}

void serve_close(struct serve *s)
{
	MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
}

/* The runtime the server fronts. A thread attaches a client by name as soon
 * as the runtime's arena exists (the server answers /health 503 until
 * then), loads the model's tokenizer and chat template from the directory
 * the runtime reports, and watches: when the runtime goes away for good
 * (its supervisor gone), the client is dropped and attached again when a
 * runtime of that name comes back. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

#define POLL_NS (100 * 1000000)

static void set_why(struct serve_link *l, const char *fmt, const char *arg)
{
	pthread_mutex_lock(&l->why_mu);
	snprintf(l->why_not_ready, sizeof(l->why_not_ready), fmt, arg);
	pthread_mutex_unlock(&l->why_mu);
}

static void model_id(struct serve_link *l)
{
	if (l->served_name) {
		snprintf(l->model_id, sizeof(l->model_id), "%s", l->served_name);
		return;
	}
	char dir[sizeof(l->info.model_dir)];
	snprintf(dir, sizeof(dir), "%s", l->info.model_dir);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	snprintf(l->model_id, sizeof(l->model_id), "%s", basename(dir));
}

/* Attaches and loads what requests need; called with the lock held for writing. */
static int attach(struct serve_link *l)
{
	struct shmrt_client *c;
	int rc = shmrt_client_attach(&c, l->name);
	if (rc) {
		set_why(l, "no runtime to serve yet: %s", shmrt_last_error());
		return rc;
	}
	struct shmrt_tokenizer *tok = NULL;
	char path[4200];
	if ((rc = shmrt_client_info(c, &l->info)) == 0) {
		rc = shmrt_model_path_tokenizer(l->info.model_dir, path, sizeof(path));
		if (rc == 0)
			rc = shmrt_tokenizer_load(path, NULL, &tok);
	}
	if (rc == 0)
		rc = shmrt_model_path_is_gguf(l->info.model_dir) ? chat_template_from_tokenizer(&l->chat, tok)
								 : chat_template_load(&l->chat, l->info.model_dir);
	if (rc)
		shmrt_tokenizer_free(tok);
	if (rc) {
		char before[sizeof(l->why_not_ready)];
		snprintf(before, sizeof(before), "%s", l->why_not_ready);
		set_why(l, "cannot load the model's tokenizer: %s", shmrt_last_error());
		if (strcmp(before, l->why_not_ready)) /* once, not at every retry */
			fprintf(stderr, "shmrt serve: %s\n", l->why_not_ready);
		shmrt_client_detach(c);
		return rc;
	}
	l->tok = tok;
	l->client = c;
	model_id(l);
	fprintf(stderr, "shmrt serve: attached to runtime '%s' (model %s, context %d, chat template %s)\n", l->name,
		l->info.model_dir, l->info.max_model_len, chat_style_name(l->chat.style));
	return 0;
}

static void detach(struct serve_link *l)
{
	shmrt_client_detach(l->client);
	shmrt_tokenizer_free(l->tok);
	chat_template_free(&l->chat);
	l->client = NULL;
	l->tok = NULL;
}

static void *watch(void *arg)
{
	struct serve_link *l = arg;
	while (!atomic_load(&l->stop)) {
		pthread_rwlock_rdlock(&l->lock);
		int have = l->client != NULL, gone = have && shmrt_client_health(l->client, NULL) < 0;
		pthread_rwlock_unlock(&l->lock);
		if (!have || gone) {
			pthread_rwlock_wrlock(&l->lock);
			if (gone)
				detach(l);
			attach(l);
			pthread_rwlock_unlock(&l->lock);
		}
		struct timespec t = {0, POLL_NS};
		nanosleep(&t, NULL);
	}
	return NULL;
}

int link_start(struct serve_link *l)
{
	pthread_rwlock_init(&l->lock, NULL);
	pthread_mutex_init(&l->tok_mu, NULL);
	pthread_mutex_init(&l->why_mu, NULL);
	snprintf(l->why_not_ready, sizeof(l->why_not_ready), "starting");
	int rc = pthread_create(&l->thread, NULL, watch, l);
	return -rc;
}

void link_stop(struct serve_link *l)
{
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	pthread_rwlock_wrlock(&l->lock);
	if (l->client)
		detach(l);
	pthread_rwlock_unlock(&l->lock);
}

int link_health(struct serve_link *l, char *why, size_t cap)
{
	int h = -ENOENT;
	unsigned progress = 0;
	pthread_rwlock_rdlock(&l->lock);
	if (l->client)
		h = shmrt_client_health(l->client, &progress);
	pthread_rwlock_unlock(&l->lock);
	if (h == SHMRT_HEALTH_READY)
		return h;
	if (h == SHMRT_HEALTH_LOADING)
		snprintf(why, cap, "Loading model (%u/1000)", progress);
	else if (h >= 0)
		snprintf(why, cap, "the runtime is %s", shmrt_health_name(h));
	else {
		pthread_mutex_lock(&l->why_mu);
		snprintf(why, cap, "%s", l->why_not_ready);
		pthread_mutex_unlock(&l->why_mu);
	}
	return h;
}

int link_hold(struct serve_link *l, int stopping, char *err, size_t cap)
{
	if (stopping) {
		snprintf(err, cap, "the server is shutting down");
		return -ESHUTDOWN;
	}
	pthread_rwlock_rdlock(&l->lock);
	unsigned progress = 0;
	int h = l->client ? shmrt_client_health(l->client, &progress) : -ENOENT;
	if (h == SHMRT_HEALTH_READY)
		return 0;
	pthread_rwlock_unlock(&l->lock);
	char why[512];
	link_health(l, why, sizeof(why));
	snprintf(err, cap, "the model is not ready (%s): retry later", why);
	return -EAGAIN;
}

void link_release(struct serve_link *l)
{
	pthread_rwlock_unlock(&l->lock);
}

int link_encode(struct serve_link *l, const char *text, size_t len, unsigned flags, int32_t **ids, int *n)
{
	size_t cap = len + 16;
	int32_t *buf = malloc(cap * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&l->tok_mu);
	int rc = shmrt_tokenizer_encode(l->tok, text, len, flags, buf, cap);
	if (rc > (int)cap) { /* more ids than bytes: added tokens around the text */
		int32_t *more = realloc(buf, (size_t)rc * sizeof(*buf));
		if (!more)
			rc = -ENOMEM;
		else
			buf = more, rc = shmrt_tokenizer_encode(l->tok, text, len, flags, buf, (size_t)rc);
	}
	pthread_mutex_unlock(&l->tok_mu);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*ids = buf;
	*n = rc;
	return 0;
}

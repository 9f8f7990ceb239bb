/* Internal: JSON documents (config.json, the safetensors index) through
 * jansson, with errors that name the file and the place. */
#ifndef SHMRT_JSON_FILE_H
#define SHMRT_JSON_FILE_H

#include <stddef.h>

#include <jansson.h>

/* Parses text[0..len) (name is used in messages); duplicate keys are an
 * error. On success *out is a new reference. */
int shmrt_json_parse(const char *text, size_t len, const char *name, json_t **out);

/* Reads path (at most max_bytes) and parses it as above. */
int shmrt_json_load_file(const char *path, size_t max_bytes, json_t **out);

#endif

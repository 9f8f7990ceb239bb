/* Internal: the byte-to-character table of byte-level BPE (GPT-2's
 * bytes_to_unicode): each byte gets a printable character, so a vocabulary
 * of such characters can spell any byte string. */
#ifndef SHMRT_BYTE_LEVEL_H
#define SHMRT_BYTE_LEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The character standing for byte b. */
uint32_t tok_byte_level_char(uint8_t b);

/* The byte a character stands for, or -1 if it is not in the table. */
int tok_byte_level_byte(uint32_t cp);

/* Appends to out the bytes that the byte-level string s[0..n) spells.
 * Returns 1 if every character is in the table, 0 (out unchanged) if one is
 * not, or -ENOMEM. */
int tok_byte_level_unmap(const char *s, size_t n, struct tok_buf *out);

#endif

/* Internal: UTF-8 scanning and the lossy conversion HF applies when it turns
 * decoded bytes into a string (Rust's String::from_utf8_lossy). */
#ifndef SHMRT_UTF8_H
#define SHMRT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Looks at the sequence starting at p[0] (n >= 1):
 *   > 0  a well-formed character of that many bytes, decoded into *cp;
 *   0    a well-formed but unfinished prefix that runs to the end of p[0..n);
 *   < 0  ill-formed: -k, where p[0..k) is the maximal subpart (Unicode 15,
 *        section 3.9), the run that one U+FFFD replaces. */
int tok_utf8_scan(const uint8_t *p, size_t n, uint32_t *cp);

/* Writes cp as UTF-8 into out (4 bytes of room); returns the length. */
size_t tok_utf8_encode(uint32_t cp, char *out);

/* Appends p[0..n) to out with each ill-formed run replaced by U+FFFD. If
 * final is false, an unfinished sequence at the end is left out (it may be
 * completed by what comes next); *used says how many bytes were taken. */
int tok_utf8_lossy(const char *p, size_t n, bool final, struct tok_buf *out, size_t *used);

#endif

/*
 * auth.h - API keys for pdqmatch serve.
 *
 * A key file holds one key a line, "KEY ROLE [NAME] [rate=R] [burst=B]",
 * with blank lines and '#' comments skipped.  rate=R lets the key make R
 * requests a second, in bursts of up to B (default: R, at least 1).  Roles nest: read (hash and lookup) < write (also
 * add and delete content) < admin (also manage banks).
 */
#ifndef PDQM_AUTH_H
#define PDQM_AUTH_H

#include <stddef.h>

#include "../hashing/error.h"

typedef enum pdqm_role {
    PDQM_ROLE_NONE = 0,    /* open routes: health */
    PDQM_ROLE_READ = 1,
    PDQM_ROLE_WRITE = 2,
    PDQM_ROLE_ADMIN = 3
} pdqm_role;

#define PDQM_KEY_MIN 16      /* bytes: shorter keys are too easy to guess */
#define PDQM_KEY_MAX 128
#define PDQM_KEY_NAME_MAX 64

typedef struct pdqm_api_key {
    char key[PDQM_KEY_MAX + 1];
    char name[PDQM_KEY_NAME_MAX + 1];
    pdqm_role role;
    double rate;             /* requests a second; 0: no limit */
    double burst;            /* the bucket's size, with a rate */
} pdqm_api_key;

typedef struct pdqm_api_keys {
    pdqm_api_key *keys;
    size_t count;
} pdqm_api_keys;

/* Read a key file.  PDQM_ERR_IO when it cannot be read, PDQM_ERR_INVALID
 * naming file:line for a bad line, a repeated key or a file without keys. */
pdqm_status pdqm_api_keys_load(const char *path, pdqm_api_keys *out, pdqm_error *err);

void pdqm_api_keys_free(pdqm_api_keys *keys);

/* The role of the key given (a NUL-terminated string), PDQM_ROLE_NONE when
 * it is no key.  Compares against every key in time that depends only on
 * the number of keys, never on how much of a key matched. */
pdqm_role pdqm_api_keys_role(const pdqm_api_keys *keys, const char *given, const char **name);

/* pdqm_api_keys_role, telling which key matched: *index (keys->keys[*index])
 * when one did, else it is left alone.  The same constant time. */
pdqm_role pdqm_api_keys_match(const pdqm_api_keys *keys, const char *given, size_t *index);

#endif

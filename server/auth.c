/*
 * auth.c - reading API key files and checking keys in constant time.
 */
#define _POSIX_C_SOURCE 200809L
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pdqm_role role_named(const char *s)
{
    return strcmp(s, "read") == 0 ? PDQM_ROLE_READ
         : strcmp(s, "write") == 0 ? PDQM_ROLE_WRITE
         : strcmp(s, "admin") == 0 ? PDQM_ROLE_ADMIN : PDQM_ROLE_NONE;
}

static int key_char_ok(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

pdqm_status pdqm_api_keys_load(const char *path, pdqm_api_keys *out, pdqm_error *err)
{
    out->keys = NULL;
    out->count = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot read the key file %s: %s", path,
                              strerror(errno));
    char line[1024];
    size_t cap = 0, lineno = 0;
    pdqm_status st = PDQM_OK;
    while (st == PDQM_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            st = pdqm_error_set(err, PDQM_ERR_INVALID, "%s:%zu: the line is too long", path,
                                lineno);
            break;
        }
        char *save = NULL;
        char *key = strtok_r(line, " \t\r\n", &save);
        if (key == NULL || key[0] == '#')
            continue;
        char *role = strtok_r(NULL, " \t\r\n", &save);
        char *name = NULL;
        double rate = 0, burst = 0;
        int bad_field = 0;
        for (char *t; (t = strtok_r(NULL, " \t\r\n", &save)) != NULL;) {
            double *field = strncmp(t, "rate=", 5) == 0 ? &rate
                          : strncmp(t, "burst=", 6) == 0 ? &burst : NULL;
            if (field == NULL) {
                /* The name, once, before the fields. */
                bad_field |= name != NULL || rate > 0 || burst > 0;
                name = t;
                continue;
            }
            char *end;
            errno = 0;
            *field = strtod(strchr(t, '=') + 1, &end);
            bad_field |= errno != 0 || *end != '\0' || end == strchr(t, '=') + 1 ||
                         !(*field > 0 && *field <= 1e6);
        }
        size_t klen = strlen(key);
        int bad_char = 0;
        for (size_t i = 0; i < klen; i++)
            bad_char |= !key_char_ok((unsigned char)key[i]);
        if (klen < PDQM_KEY_MIN || klen > PDQM_KEY_MAX || bad_char)
            st = pdqm_error_set(err, PDQM_ERR_INVALID,
                                "%s:%zu: a key is %d to %d printable characters", path, lineno,
                                PDQM_KEY_MIN, PDQM_KEY_MAX);
        else if (role == NULL || role_named(role) == PDQM_ROLE_NONE)
            st = pdqm_error_set(err, PDQM_ERR_INVALID,
                                "%s:%zu: the role is read, write or admin", path, lineno);
        else if (bad_field || (name && strlen(name) > PDQM_KEY_NAME_MAX) ||
                 (burst > 0 && rate == 0))
            st = pdqm_error_set(err, PDQM_ERR_INVALID,
                                "%s:%zu: a line is KEY ROLE [NAME] [rate=R] [burst=B], a name "
                                "at most %d bytes, R (requests a second) and B (more than 0, "
                                "B with R) numbers up to 1000000",
                                path, lineno, PDQM_KEY_NAME_MAX);
        for (size_t i = 0; st == PDQM_OK && i < out->count; i++)
            if (strcmp(out->keys[i].key, key) == 0)
                st = pdqm_error_set(err, PDQM_ERR_INVALID, "%s:%zu: the key is repeated",
                                    path, lineno);
        if (st != PDQM_OK)
            break;
        if (out->count == cap) {
            cap = cap ? cap * 2 : 8;
            pdqm_api_key *k = realloc(out->keys, cap * sizeof *k);
            if (k == NULL) {
                st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
                break;
            }
            out->keys = k;
        }
        pdqm_api_key *k = &out->keys[out->count++];
        memset(k, 0, sizeof *k);
        memcpy(k->key, key, klen);
        snprintf(k->name, sizeof k->name, "%s", name ? name : "");
        k->role = role_named(role);
        k->rate = rate;
        k->burst = rate > 0 ? (burst > 0 ? burst : (rate > 1 ? rate : 1)) : 0;
    }
    if (st == PDQM_OK && ferror(f))
        st = pdqm_error_set(err, PDQM_ERR_IO, "cannot read the key file %s", path);
    fclose(f);
    if (st == PDQM_OK && out->count == 0)
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "the key file %s holds no key", path);
    if (st != PDQM_OK)
        pdqm_api_keys_free(out);
    return st;
}

void pdqm_api_keys_free(pdqm_api_keys *keys)
{
    free(keys->keys);
    keys->keys = NULL;
    keys->count = 0;
}

pdqm_role pdqm_api_keys_role(const pdqm_api_keys *keys, const char *given, const char **name)
{
    size_t index = keys->count;
    pdqm_role role = pdqm_api_keys_match(keys, given, &index);
    if (name)
        *name = index < keys->count ? keys->keys[index].name : NULL;
    return role;
}

pdqm_role pdqm_api_keys_match(const pdqm_api_keys *keys, const char *given, size_t *index)
{
    /* Copy the key given into a fixed buffer so every comparison reads the
     * same number of bytes; a length mismatch shows up as the terminator
     * differing, never as an early exit. */
    unsigned char g[PDQM_KEY_MAX + 1] = { 0 };
    size_t glen = strlen(given);
    unsigned long too_long = glen > PDQM_KEY_MAX;
    memcpy(g, given, too_long ? PDQM_KEY_MAX : glen);
    pdqm_role found = PDQM_ROLE_NONE;
    for (size_t i = 0; i < keys->count; i++) {
        const unsigned char *k = (const unsigned char *)keys->keys[i].key;
        unsigned diff = (unsigned)too_long;
        for (size_t j = 0; j <= PDQM_KEY_MAX; j++)
            diff |= (unsigned)(k[j] ^ g[j]);
        /* mask is all ones when diff == 0 */
        unsigned mask = (unsigned)-(int)((diff | (0u - diff)) >> (sizeof diff * 8 - 1) ^ 1u);
        found = (pdqm_role)((unsigned)found | ((unsigned)keys->keys[i].role & mask));
        if (mask)
            *index = i;
    }
    return found;
}

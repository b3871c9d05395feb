/*
 * fuzz_keys.c - the API-key file of `pdqmatch serve --api-keys`, read from
 * an in-memory file.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../server/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("keys", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pdqm_api_keys keys;
    pdqm_error err;
    if (pdqm_api_keys_load(path, &keys, &err) == PDQM_OK) {
        for (size_t i = 0; i < keys.count; i++) {
            const char *name = NULL;
            if (pdqm_api_keys_role(&keys, keys.keys[i].key, &name) != keys.keys[i].role)
                __builtin_trap();   /* every key loaded is found, with its role */
        }
        if (pdqm_api_keys_role(&keys, "", NULL) != PDQM_ROLE_NONE)
            __builtin_trap();
        pdqm_api_keys_free(&keys);
    }
    close(fd);
    return 0;
}

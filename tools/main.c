/*
 * main.c - the pdqmatch command: dispatch to a subcommand.
 *
 * The subcommand table drives both dispatch and `pdqmatch --help`.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../hashing/image.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    { "hash",     cmd_hash,     "print PDQ hashes of image files" },
    { "index",    cmd_index,    "add media files or hash lists to a store" },
    { "lookup",   cmd_lookup,   "find stored hashes near hashes or media" },
    { "stats",    cmd_stats,    "print a store's counts and sizes" },
    { "banks",    cmd_banks,    "list, create, change or delete banks" },
    { "delete",   cmd_delete,   "delete a content item from a store" },
    { "export",   cmd_export,   "print a store as JSON Lines or CSV, losing nothing" },
    { "import",   cmd_import,   "restore a JSON Lines export into a store" },
    { "verify",   cmd_verify,   "check a store's consistency" },
    { "compact",  cmd_compact,  "write a compacted copy of a store" },
    { "snapshot", cmd_snapshot, "copy a cluster node's store to start another from" },
    { "exchange", cmd_exchange, "fetch hash lists from NCMEC, StopNCII, ThreatExchange, TCAP" },
    { "serve",    cmd_serve,    "serve a store over HTTP" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *f)
{
    fputs("usage: pdqmatch COMMAND [OPTIONS] [ARGS...]\n"
          "       pdqmatch --help | --version\n"
          "\n"
          "Perceptual-hash media matching: PDQ hashes of images, bit-exact\n"
          "with Meta's reference, and a store of known hashes searched exactly\n"
          "within a Hamming distance.\n"
          "\n"
          "commands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'pdqmatch COMMAND --help' describes one command.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(NULL, "no command given");
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("pdqmatch %s\n", PDQM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name) == 0) {
            int rc = commands[i].run(argc - 1, argv + 1);
            pdqm_image_shutdown();
            return rc;
        }
    }
    if (name[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", name);
    return cli_usage_error(NULL, "unknown command '%s'", name);
}

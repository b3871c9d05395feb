/*
 * bench_pdq.c - in-process timings for `make bench`.
 *
 * usage: bench_pdq IMAGE [ROUNDS]
 *   Decodes IMAGE once, then hashes its pixels ROUNDS times (default 2000)
 *   in batches, and prints the median and best time per hash of the
 *   batches, with and without the 8 dihedral hashes, one line a mode:
 *     pdq <mode> <width>x<height> median_ms=<m> best_ms=<b>
 * usage: bench_pdq --decode-floor FILE...
 *   Decodes every FILE with plain libvips (every pixel, one thread, no
 *   hashing) and prints `decode_floor_s=<seconds> files=<n>`: the least
 *   any libvips-based hasher must spend on these files.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../hashing/fileio.h"
#include "../hashing/image.h"
#include "../hashing/pdq.h"

#include <string.h>
#include <vips/vips.h>

#define BATCHES 21

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(const pdqm_pixels *px, unsigned flags, const char *mode, int rounds)
{
    double per[BATCHES];
    int per_batch = rounds / BATCHES > 0 ? rounds / BATCHES : 1;
    pdqm_pdq out;
    unsigned sink = 0;
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_ms();
        for (int i = 0; i < per_batch; i++) {
            pdqm_pdq_hash(px, flags, &out, NULL);
            sink += (unsigned)out.hash.w[0];
        }
        per[b] = (now_ms() - t0) / per_batch;
    }
    qsort(per, BATCHES, sizeof per[0], compare_double);
    printf("pdq %s %dx%d median_ms=%.4f best_ms=%.4f (%u)\n", mode, px->width,
           px->height, per[BATCHES / 2], per[0], sink & 1);
}

static int decode_floor(int n, char **files)
{
    if (VIPS_INIT("bench_pdq") != 0)
        return 1;
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        VipsImage *img = vips_image_new_from_file(files[i], "access",
                                                  VIPS_ACCESS_SEQUENTIAL, NULL);
        double avg;
        if (img == NULL || vips_avg(img, &avg, NULL) != 0) {
            fprintf(stderr, "bench_pdq: %s: %s", files[i], vips_error_buffer());
            return 1;
        }
        g_object_unref(img);
    }
    printf("decode_floor_s=%.4f files=%d\n", (now_ms() - t0) / 1e3, n);
    vips_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--decode-floor") == 0)
        return decode_floor(argc - 2, argv + 2);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pdq IMAGE [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 2000;
    pdqm_error err;
    uint8_t *data;
    size_t len;
    pdqm_image *img;
    if (pdqm_read_file(argv[1], (size_t)1 << 30, &data, &len, &err) != PDQM_OK ||
        pdqm_image_decode(data, len, NULL, &img, &err) != PDQM_OK) {
        fprintf(stderr, "bench_pdq: %s: %s\n", argv[1], pdqm_error_message(&err));
        return 1;
    }
    free(data);
    run(&img->pixels, 0, "hash", rounds);
    run(&img->pixels, PDQM_PDQ_DIHEDRAL, "hash+dihedral", rounds);
    pdqm_image_free(img);
    pdqm_image_shutdown();
    return 0;
}

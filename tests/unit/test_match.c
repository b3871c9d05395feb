/*
 * test_match.c - vPDQ's matching rule on hand-made frames, where the
 * percentages can be worked out by hand.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <unistd.h>

#include "../../index/match.h"

static pdqm_hash256 h(uint64_t seed)
{
    pdqm_hash256 x;
    for (int i = 0; i < 4; i++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        x.w[i] = seed;
    }
    return x;
}

static pdqm_hash256 flip(pdqm_hash256 x, int bits)
{
    for (int i = 0; i < bits; i++)
        x.w[i % 4] ^= (uint64_t)1 << (i * 7 % 64);
    return x;
}

/* A fresh store in a new directory made from the template dir, with a
 * block bank "v" of threshold 31. */
static pdqm_store *open_store(char *dir)
{
    char path[64];
    pdqm_store *s;
    pdqm_error err;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.db", dir);
    assert_int_equal(pdqm_store_open(path, PDQM_STORE_CREATE, &s, &err), PDQM_OK);
    assert_int_equal(pdqm_store_bank_create(s, "v", 31, PDQM_BANK_BLOCK, &err), PDQM_OK);
    return s;
}

static void close_store(pdqm_store *s, const char *dir)
{
    char path[80];
    pdqm_store_close(s);
    snprintf(path, sizeof path, "%s/s.db", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/s.db-lock", dir);
    unlink(path);
    rmdir(dir);
}

static void test_percentages(void **state)
{
    (void)state;
    char dir[] = "/tmp/pdqm-match-XXXXXX";
    pdqm_error err;
    pdqm_store *s = open_store(dir);

    /* A stored video of frames A B C D at 0..3 s (D twice: counted once),
     * and a frame of quality 10, which does not count. */
    pdqm_hash256 A = h(1), B = h(2), C = h(3), D = h(4), E = h(5), L = h(6);
    pdqm_stored_hash frames[] = {
        { A, 90, 0.0 }, { B, 90, 1.0 }, { C, 90, 2.0 }, { D, 90, 3.0 }, { D, 90, 3.5 }, { L, 10, 4.0 },
    };
    pdqm_add add = { "v", "vid", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, frames, 6, 0 };
    assert_int_equal(pdqm_store_add(s, &add, 1, NULL, &err), PDQM_OK);

    /* Query: A' (8 bits from A), B, B again, E (unrelated), L (quality 10). */
    pdqm_video_frame q[] = {
        { .frame = 0, .timestamp = 0.0, .hash = flip(A, 8), .quality = 80 },
        { .frame = 1, .timestamp = 1.0, .hash = B, .quality = 80 },
        { .frame = 2, .timestamp = 2.0, .hash = B, .quality = 80 },
        { .frame = 3, .timestamp = 3.0, .hash = E, .quality = 80 },
        { .frame = 4, .timestamp = 4.0, .hash = L, .quality = 20 },
    };
    pdqm_video_match_options o;
    pdqm_video_match_options_default(&o);
    pdqm_video_matches m;
    /* Query: 2 of its 3 unique frames of quality match (66.67 %) < 80. */
    assert_int_equal(pdqm_store_match_video(s, q, 5, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.query_frames, 3);
    assert_int_equal(m.count, 0);
    pdqm_video_matches_free(&m);

    o.min_query_pct = 60;
    assert_int_equal(pdqm_store_match_video(s, q, 5, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 1);
    pdqm_video_candidate *c = &m.items[0];
    assert_string_equal(c->content_id, "vid");
    assert_true(c->query_pct > 66.66 && c->query_pct < 66.67);
    assert_true(c->candidate_pct == 50.0);   /* A and B of A B C D */
    assert_int_equal(c->best_distance, 0);
    /* Frames 0..2 match in a row, at candidate times 0, 1, 1: one segment. */
    assert_int_equal(c->n_frames, 3);
    assert_int_equal(c->n_segments, 1);
    assert_true(c->segments[0].query_start == 0.0 && c->segments[0].query_end == 2.0);
    assert_true(c->segments[0].candidate_start == 0.0 && c->segments[0].candidate_end == 1.0);
    pdqm_video_matches_free(&m);

    /* A candidate minimum of 60 % rules it out; a tighter distance drops A'. */
    o.min_candidate_pct = 60;
    assert_int_equal(pdqm_store_match_video(s, q, 5, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 0);
    pdqm_video_matches_free(&m);
    o.min_candidate_pct = 0;
    o.max_distance = 4;
    assert_int_equal(pdqm_store_match_video(s, q, 5, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 0);          /* 1 of 3: 33 % < 60 */
    pdqm_video_matches_free(&m);

    /* Nothing of quality in the query: no candidates, no error. */
    pdqm_video_frame dull = { .frame = 0, .timestamp = 0.0, .hash = A, .quality = 0 };
    assert_int_equal(pdqm_store_match_video(s, &dull, 1, NULL, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.query_frames, 0);
    pdqm_video_matches_free(&m);

    close_store(s, dir);
}

/* A query hashed in samples of several frames (a burst): a sample matches
 * when one of its frames does, the query % counts samples, the candidate %
 * counts the stored video's seconds, and an unmatched frame inside a
 * matched sample does not end a segment. */
static void test_samples(void **state)
{
    (void)state;
    char dir[] = "/tmp/pdqm-match-XXXXXX";
    pdqm_error err;
    pdqm_store *s = open_store(dir);
    /* Stored: 8 frames, 2 a second for 4 s (A0 A1 at 0 s, B0 B1 at 1 s...). */
    pdqm_stored_hash frames[8];
    for (int i = 0; i < 8; i++)
        frames[i] = (pdqm_stored_hash){ h(100 + (uint64_t)i), 90, i * 0.5 };
    pdqm_add add = { "v", "vid", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, frames, 8, 0 };
    assert_int_equal(pdqm_store_add(s, &add, 1, NULL, &err), PDQM_OK);

    /* Query: 3 samples of 3 frames at 0, 1, 2 s; in each the middle frame
     * is a stored one (the second of each second), the others unrelated. */
    pdqm_video_frame q[9];
    for (uint32_t i = 0; i < 9; i++) {
        uint32_t sample = i / 3;
        pdqm_hash256 hash = i % 3 == 1 ? frames[2 * sample + 1].hash : h(900 + i);
        q[i] = (pdqm_video_frame){ .frame = 30 * sample + i % 3, .sample = sample + 1,
                                   .timestamp = sample + (i % 3) / 30.0, .hash = hash,
                                   .quality = 90 };
    }
    pdqm_video_match_options o;
    pdqm_video_match_options_default(&o);
    pdqm_video_matches m;
    assert_int_equal(pdqm_store_match_video(s, q, 9, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 1);
    pdqm_video_candidate *c = &m.items[0];
    assert_true(c->query_pct == 100.0);             /* 3 of 3 samples */
    assert_true(c->candidate_pct == 75.0);          /* seconds 0 1 2 of 0..3 */
    assert_int_equal(c->n_frames, 3);
    assert_int_equal(c->n_segments, 1);             /* not 3 */
    assert_true(c->segments[0].query_start == q[1].timestamp);
    assert_true(c->segments[0].query_end == 3.0);   /* the last sample's end */
    pdqm_video_matches_free(&m);

    /* The same frames as samples alone: 3 of 9 unique hashes (33 %). */
    for (int i = 0; i < 9; i++)
        q[i].sample = 0;
    o.min_query_pct = 30;
    assert_int_equal(pdqm_store_match_video(s, q, 9, &o, &m, &err), PDQM_OK);
    assert_int_equal(m.count, 1);
    assert_true(m.items[0].query_pct > 33.33 && m.items[0].query_pct < 33.34);
    assert_true(m.items[0].candidate_pct == 37.5);  /* 3 of 8 frames */
    pdqm_video_matches_free(&m);

    close_store(s, dir);
}

/* vPDQ's brute comparison (HMA's /m/compare): repeats once, low quality
 * dropped, a frame matched within 31 bits of any frame of the other. */
static void test_vpdq_compare(void **state)
{
    (void)state;
    pdqm_hash256 A = h(11), B = h(12), C = h(13), E = h(15);
    pdqm_stored_hash q[] = { { A, 90, 0 }, { A, 90, 1 }, { B, 90, 2 }, { C, 90, 3 },
                             { h(14), 10, 4 } };
    pdqm_stored_hash c[] = { { flip(A, 30), 80, 0 }, { E, 80, 1 }, { flip(B, 32), 80, 2 } };
    double qp, cp;
    pdqm_error err;
    assert_int_equal(pdqm_vpdq_compare(q, 5, c, 3, &qp, &cp, &err), PDQM_OK);
    assert_true(fabs(qp - 100.0 / 3) < 1e-9);   /* A of A, B, C */
    assert_true(fabs(cp - 100.0 / 3) < 1e-9);   /* A' of A', E, B'' */
    pdqm_stored_hash low[] = { { A, 49, 0 } };
    assert_int_equal(pdqm_vpdq_compare(q, 5, low, 1, &qp, &cp, &err), PDQM_ERR_INVALID);
    assert_string_equal(err.message, "division by zero");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentages),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_vpdq_compare),
    };
    return cmocka_run_group_tests_name("match", tests, NULL, NULL);
}

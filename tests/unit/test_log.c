/*
 * test_log.c - the service's log: a record is one line in either format,
 * texts are escaped or quoted, bytes that are not UTF-8 become U+FFFD, a
 * record too long for a line is cut and stays whole (valid JSON), levels
 * filter, and reopening follows the path.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "../../server/log.h"

static char dir[] = "/tmp/pdqm-test-logXXXXXX";
static char path[256];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/pdqm-test-logXXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[300];
    snprintf(p, sizeof p, "%s.1", path);
    unlink(p);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The file's text (malloc'd). */
static char *slurp_text(const char *p)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static pdqm_log *open_log(pdqm_log_level level, pdqm_log_format format)
{
    pdqm_log *log;
    pdqm_error err;
    assert_int_equal(pdqm_log_open(path, level, format, &log, &err), PDQM_OK);
    return log;
}

static void test_json_records(void **state)
{
    (void)state;
    pdqm_log *log = open_log(PDQM_LOG_INFO, PDQM_LOG_JSON);
    PDQM_LOG(log, PDQM_LOG_DEBUG, "dropped", PDQM_LOG_I("n", 1));
    PDQM_LOG(log, PDQM_LOG_INFO, "say \"hi\"\n", PDQM_LOG_S("text", "tab\there\x01 \xff end"),
             PDQM_LOG_I("count", -42), PDQM_LOG_D("ms", 1.5), PDQM_LOG_S("absent", NULL),
             PDQM_LOG_S("utf8", "caf\xc3\xa9"));
    PDQM_LOG(log, PDQM_LOG_ERROR, "bad", PDQM_LOG_D("inf", 1.0 / 0.0));
    pdqm_log_close(log);
    char *text = slurp_text(path);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "say \"hi\"\n");
    assert_string_equal(json_string_value(json_object_get(j, "text")),
                        "tab\there\x01 \xef\xbf\xbd end");
    assert_int_equal(json_integer_value(json_object_get(j, "count")), -42);
    assert_true(json_real_value(json_object_get(j, "ms")) == 1.5);
    assert_null(json_object_get(j, "absent"));
    assert_string_equal(json_string_value(json_object_get(j, "utf8")), "caf\xc3\xa9");
    json_decref(j);
    j = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
    assert_true(json_is_null(json_object_get(j, "inf")));
    json_decref(j);
    free(text);
}

static void test_text_records(void **state)
{
    (void)state;
    pdqm_log *log = open_log(PDQM_LOG_DEBUG, PDQM_LOG_TEXT);
    PDQM_LOG(log, PDQM_LOG_DEBUG, "plain words", PDQM_LOG_S("route", "/v1/lookup"),
             PDQM_LOG_S("spaced", "a b"), PDQM_LOG_S("eq", "a=b"), PDQM_LOG_S("empty", ""),
             PDQM_LOG_I("status", 200));
    PDQM_LOG(log, PDQM_LOG_WARN, "a=b", PDQM_LOG_S("nl", "x\ny"));
    pdqm_log_close(log);
    char *text = slurp_text(path);
    const char *first = strchr(text, ' ');
    assert_non_null(first);
    const char *want = " debug plain words route=/v1/lookup spaced=\"a b\" eq=\"a=b\" "
                       "empty=\"\" status=200\n"
                       "Z warn \"a=b\" nl=\"x\\ny\"\n";
    char *second = strchr(first + 1, '\n') + 1;
    char *ts2 = strchr(second, ' ');
    /* Skip the second timestamp but its final Z. */
    memmove(second, ts2 - 1, strlen(ts2 - 1) + 1);
    assert_string_equal(first, want);
    free(text);
}

/* A record over a line's 16 KiB is cut, every text to its share, and is
 * still one line of valid JSON with every field. */
static void test_long_records_are_cut_whole(void **state)
{
    (void)state;
    char *big = malloc(100000);
    assert_non_null(big);
    memset(big, '"', 99999);   /* escaped, each doubles */
    big[99999] = '\0';
    pdqm_log *log = open_log(PDQM_LOG_INFO, PDQM_LOG_JSON);
    PDQM_LOG(log, PDQM_LOG_INFO, "long", PDQM_LOG_S("a", big), PDQM_LOG_I("n", 7),
             PDQM_LOG_S("b", big));
    pdqm_log_close(log);
    char *text = slurp_text(path);
    size_t len = strlen(text);
    assert_true(len <= 16384);
    assert_int_equal(text[len - 1], '\n');
    assert_null(strchr(text, '\n') == text + len - 1 ? NULL : "two lines");
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 7);
    const char *a = json_string_value(json_object_get(j, "a"));
    assert_non_null(a);
    assert_true(strlen(a) > 500 && strcmp(a + strlen(a) - 3, "...") == 0);
    assert_non_null(json_object_get(j, "b"));
    json_decref(j);
    free(text);
    free(big);
}

static void test_reopen_follows_the_path(void **state)
{
    (void)state;
    pdqm_log *log = open_log(PDQM_LOG_INFO, PDQM_LOG_TEXT);
    PDQM_LOG(log, PDQM_LOG_INFO, "one", PDQM_LOG_I("n", 1));
    char moved[300];
    snprintf(moved, sizeof moved, "%s.1", path);
    assert_int_equal(rename(path, moved), 0);
    PDQM_LOG(log, PDQM_LOG_INFO, "two", PDQM_LOG_I("n", 2));
    pdqm_error err;
    assert_int_equal(pdqm_log_reopen(log, &err), PDQM_OK);
    PDQM_LOG(log, PDQM_LOG_INFO, "three", PDQM_LOG_I("n", 3));
    pdqm_log_close(log);
    char *old = slurp_text(moved), *now = slurp_text(path);
    assert_non_null(strstr(old, " info one n=1\n"));
    assert_non_null(strstr(old, " info two n=2\n"));
    assert_null(strstr(old, "three"));
    assert_non_null(strstr(now, " info three n=3\n"));
    free(old);
    free(now);

    assert_int_equal(pdqm_log_open("/nonexistent-dir/x.log", PDQM_LOG_INFO, PDQM_LOG_TEXT, &log,
                                   &err), PDQM_ERR_IO);
    assert_non_null(strstr(pdqm_error_message(&err), "/nonexistent-dir/x.log"));
    pdqm_log_close(NULL);
    assert_false(pdqm_log_wants(NULL, PDQM_LOG_ERROR));
    assert_int_equal(pdqm_log_level_parse("warn"), PDQM_LOG_WARN);
    assert_int_equal(pdqm_log_level_parse("WARN"), -1);
}

/* Deferred records (the access log) are written later, in one write, but
 * never after a record written at once that followed them, and never lost
 * at a close; over 64 KiB of them are written as they fill the buffer. */
static void test_deferred_records_keep_their_order(void **state)
{
    (void)state;
    pdqm_log *log = open_log(PDQM_LOG_INFO, PDQM_LOG_TEXT);
    const pdqm_log_field f[] = { PDQM_LOG_I("n", 1) };
    pdqm_log_record_deferred(log, PDQM_LOG_INFO, "request", f, 1);
    pdqm_log_record_deferred(log, PDQM_LOG_INFO, "request", f, 1);
    char *text = slurp_text(path);
    assert_string_equal(text, "");              /* not yet */
    free(text);
    PDQM_LOG(log, PDQM_LOG_ERROR, "now", PDQM_LOG_I("n", 2));
    text = slurp_text(path);
    char *a = strstr(text, " request n=1\n"), *now = strstr(text, " now n=2\n");
    assert_non_null(a);
    assert_non_null(now);
    assert_true(a < now);
    assert_non_null(strstr(a + 1, " request n=1\n"));
    free(text);
    pdqm_log_record_deferred(log, PDQM_LOG_DEBUG, "dropped", f, 1);
    for (int i = 0; i < 3000; i++)                /* about 120 KiB */
        pdqm_log_record_deferred(log, PDQM_LOG_INFO, "many", f, 1);
    text = slurp_text(path);
    assert_non_null(strstr(text, " many n=1\n"));   /* the first 64 KiB are out */
    free(text);
    pdqm_log_record_deferred(log, PDQM_LOG_INFO, "last", f, 1);
    pdqm_log_close(log);
    text = slurp_text(path);
    size_t many = 0;
    for (const char *p = text; (p = strstr(p, " many n=1\n")) != NULL; p++)
        many++;
    assert_int_equal(many, 3000);
    assert_null(strstr(text, "dropped"));
    assert_non_null(strstr(text, " last n=1\n"));
    free(text);
}

/* The flusher writes deferred records out within about 0.1 s. */
static void test_deferred_records_are_written_soon(void **state)
{
    (void)state;
    pdqm_log *log = open_log(PDQM_LOG_INFO, PDQM_LOG_JSON);
    const pdqm_log_field f[] = { PDQM_LOG_S("route", "/healthz") };
    pdqm_log_record_deferred(log, PDQM_LOG_INFO, "request", f, 1);
    char *text = NULL;
    for (int i = 0; i < 100; i++) {             /* up to 2 s */
        free(text);
        text = slurp_text(path);
        if (strstr(text, "\"route\":\"/healthz\""))
            break;
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    assert_non_null(strstr(text, "\"route\":\"/healthz\""));
    free(text);
    pdqm_log_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_records_are_cut_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_follows_the_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_records_keep_their_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_records_are_written_soon, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

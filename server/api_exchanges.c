/*
 * api_exchanges.c - /v1/exchanges: the hash exchanges the store is fed
 * from, their last fetch and checkpoint; a fetch asked for now; and their
 * figures in /metrics.
 */
#define _POSIX_C_SOURCE 200809L
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../exchange/exchange.h"

static json_t *with_schedule(pdqm_server *s, json_t *j)
{
    if (j && s->scheduler)
        json_object_set_new(j, "fetch_interval",
                            json_real(pdqm_exchange_scheduler_interval(s->scheduler)));
    return j;
}

enum MHD_Result pdqm_get_exchanges(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_exchange_info *all;
    size_t n;
    pdqm_error err;
    pdqm_status st = pdqm_exchange_list(s->store, &all, &n, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    int64_t now = (int64_t)time(NULL);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, with_schedule(s, pdqm_exchange_info_json(&all[i], now)));
    pdqm_exchange_infos_free(all, n);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o, s:o}", "exchanges", arr,
                                                "fetch_interval",
                                                s->scheduler ? json_real(
                                                    pdqm_exchange_scheduler_interval(
                                                        s->scheduler))
                                                             : json_null()));
}

enum MHD_Result pdqm_get_exchange(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_exchange_info x;
    pdqm_error err;
    pdqm_status st = pdqm_exchange_get(s->store, rq->param[0], &x, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    json_t *j = with_schedule(s, pdqm_exchange_info_json(&x, (int64_t)time(NULL)));
    free(x.checkpoint);
    if (j == NULL)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
    return reply_json(c, MHD_HTTP_OK, j);
}

/* A fetch now, by the service's fetcher: 202, the fetch runs after. */
enum MHD_Result pdqm_post_exchange_fetch(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_exchange_info x;
    pdqm_error err;
    pdqm_status st = pdqm_exchange_get(s->store, rq->param[0], &x, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    free(x.checkpoint);
    if (s->scheduler == NULL)
        return reply_error(c, MHD_HTTP_CONFLICT, "no_fetcher",
                           "this server does not fetch exchanges: start it with "
                           "--fetch-interval S");
    pdqm_exchange_scheduler_kick(s->scheduler, rq->param[0]);
    return reply_json(c, MHD_HTTP_ACCEPTED,
                      json_pack("{s:s, s:s}", "exchange", rq->param[0], "fetch", "asked"));
}

/* Prometheus text of every exchange's figures ("" when none). */
char *pdqm_exchange_metrics(pdqm_server *s)
{
    pdqm_exchange_info *all;
    size_t n;
    if (pdqm_exchange_list(s->store, &all, &n, NULL) != PDQM_OK)
        return strdup("");
    size_t cap = 1024 + n * 2048, len = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        pdqm_exchange_infos_free(all, n);
        return NULL;
    }
    out[0] = '\0';
#define ADD(...) \
    do { \
        int k_ = snprintf(out + len, cap - len, __VA_ARGS__); \
        if (k_ > 0 && (size_t)k_ < cap - len) \
            len += (size_t)k_; \
    } while (0)
    if (n) {
        int64_t now = (int64_t)time(NULL);
        ADD("# HELP pdqmatch_exchange_records_total Records fetched from an exchange, by what "
            "became of them.\n# TYPE pdqmatch_exchange_records_total counter\n");
        for (size_t i = 0; i < n; i++) {
            const pdqm_exchange_counts *t = &all[i].status.total;
            const char *name = all[i].config.name;
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"added\"} %llu\n", name,
                (unsigned long long)t->added);
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"updated\"} %llu\n",
                name, (unsigned long long)t->updated);
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"unchanged\"} %llu\n",
                name, (unsigned long long)t->unchanged);
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"deleted\"} %llu\n",
                name, (unsigned long long)t->deleted);
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"skipped\"} %llu\n",
                name, (unsigned long long)t->skipped);
            ADD("pdqmatch_exchange_records_total{exchange=\"%s\",outcome=\"bad\"} %llu\n", name,
                (unsigned long long)t->bad);
        }
        ADD("# HELP pdqmatch_exchange_fetches_total Fetches of an exchange that ended, and "
            "those that failed.\n# TYPE pdqmatch_exchange_fetches_total counter\n");
        for (size_t i = 0; i < n; i++) {
            ADD("pdqmatch_exchange_fetches_total{exchange=\"%s\",result=\"ok\"} %llu\n",
                all[i].config.name,
                (unsigned long long)(all[i].status.fetches - all[i].status.failures));
            ADD("pdqmatch_exchange_fetches_total{exchange=\"%s\",result=\"failed\"} %llu\n",
                all[i].config.name, (unsigned long long)all[i].status.failures);
        }
        ADD("# HELP pdqmatch_exchange_last_success_timestamp_seconds When the last fetch that "
            "ended well ended (0: never).\n"
            "# TYPE pdqmatch_exchange_last_success_timestamp_seconds gauge\n");
        for (size_t i = 0; i < n; i++)
            ADD("pdqmatch_exchange_last_success_timestamp_seconds{exchange=\"%s\"} %lld\n",
                all[i].config.name, (long long)all[i].status.last_success);
        ADD("# HELP pdqmatch_exchange_last_fetch_ok Whether the last fetch ended well.\n"
            "# TYPE pdqmatch_exchange_last_fetch_ok gauge\n");
        for (size_t i = 0; i < n; i++)
            ADD("pdqmatch_exchange_last_fetch_ok{exchange=\"%s\"} %d\n", all[i].config.name,
                all[i].status.ok ? 1 : 0);
        ADD("# HELP pdqmatch_exchange_fetching Whether a fetch of the exchange runs now "
            "(anywhere).\n# TYPE pdqmatch_exchange_fetching gauge\n");
        for (size_t i = 0; i < n; i++)
            ADD("pdqmatch_exchange_fetching{exchange=\"%s\"} %d\n", all[i].config.name,
                all[i].holder[0] && all[i].lease_until > now ? 1 : 0);
    }
#undef ADD
    pdqm_exchange_infos_free(all, n);
    return out;
}

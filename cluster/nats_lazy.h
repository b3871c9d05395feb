/*
 * nats_lazy.h - the libnats (NATS JetStream) functions a cluster node calls.
 *
 * Loaded on first use (hashing/dynlib.h).  Include this after the
 * library's own headers, in .c files only, and call pdqm_nats_load()
 * before the first call of any function listed here.
 */
#ifndef PDQM_NATS_LAZY_H
#define PDQM_NATS_LAZY_H

#include <nats/nats.h>
#include "../hashing/dynlib.h"

#define PDQM_NATS_FUNCTIONS(X) \
    X(jsCtx_Destroy) \
    X(jsMsgMetaData_Destroy) \
    X(jsOptions_Init) \
    X(jsPubAck_Destroy) \
    X(jsPubOptions_Init) \
    X(jsStreamConfig_Init) \
    X(jsStreamInfo_Destroy) \
    X(jsStreamSource_Init) \
    X(jsSubOptions_Init) \
    X(js_AddStream) \
    X(js_GetStreamInfo) \
    X(js_PublishMsg) \
    X(js_PurgeStream) \
    X(js_SubscribeSync) \
    X(natsConnection_Close) \
    X(natsConnection_Connect) \
    X(natsConnection_Destroy) \
    X(natsConnection_GetMaxPayload) \
    X(natsConnection_JetStream) \
    X(natsConnection_Status) \
    X(natsMsgHeader_Get) \
    X(natsMsg_Create) \
    X(natsMsg_Destroy) \
    X(natsMsg_GetData) \
    X(natsMsg_GetDataLength) \
    X(natsMsg_GetMetaData) \
    X(natsOptions_Create) \
    X(natsOptions_Destroy) \
    X(natsOptions_LoadCATrustedCertificates) \
    X(natsOptions_LoadCertificatesChain) \
    X(natsOptions_SetMaxReconnect) \
    X(natsOptions_SetName) \
    X(natsOptions_SetPingInterval) \
    X(natsOptions_SetReconnectWait) \
    X(natsOptions_SetRetryOnFailedConnect) \
    X(natsOptions_SetServers) \
    X(natsOptions_SetTimeout) \
    X(natsOptions_SetUserCredentialsFromFiles) \
    X(natsStatus_GetText) \
    X(natsSubscription_Destroy) \
    X(natsSubscription_GetPending) \
    X(natsSubscription_NextMsg) \
    X(natsSubscription_SetPendingLimits) \
    X(natsSubscription_Unsubscribe) \
    X(nats_GetLastError)

typedef struct pdqm_nats_table {
    PDQM_NATS_FUNCTIONS(PDQM_DYNLIB_FIELD)
} pdqm_nats_table;

extern pdqm_nats_table pdqm_nats;

/* Load the library, once a process; PDQM_OK, or PDQM_ERR_INTERNAL with
 * the reason when it cannot be loaded. */
pdqm_status pdqm_nats_load(pdqm_error *err);

/* Every call below goes through the table. */
#ifndef PDQM_DYNLIB_TABLE_DEFINITION
#undef jsCtx_Destroy
#define jsCtx_Destroy (*pdqm_nats.jsCtx_Destroy)
#undef jsMsgMetaData_Destroy
#define jsMsgMetaData_Destroy (*pdqm_nats.jsMsgMetaData_Destroy)
#undef jsOptions_Init
#define jsOptions_Init (*pdqm_nats.jsOptions_Init)
#undef jsPubAck_Destroy
#define jsPubAck_Destroy (*pdqm_nats.jsPubAck_Destroy)
#undef jsPubOptions_Init
#define jsPubOptions_Init (*pdqm_nats.jsPubOptions_Init)
#undef jsStreamConfig_Init
#define jsStreamConfig_Init (*pdqm_nats.jsStreamConfig_Init)
#undef jsStreamInfo_Destroy
#define jsStreamInfo_Destroy (*pdqm_nats.jsStreamInfo_Destroy)
#undef jsStreamSource_Init
#define jsStreamSource_Init (*pdqm_nats.jsStreamSource_Init)
#undef jsSubOptions_Init
#define jsSubOptions_Init (*pdqm_nats.jsSubOptions_Init)
#undef js_AddStream
#define js_AddStream (*pdqm_nats.js_AddStream)
#undef js_GetStreamInfo
#define js_GetStreamInfo (*pdqm_nats.js_GetStreamInfo)
#undef js_PublishMsg
#define js_PublishMsg (*pdqm_nats.js_PublishMsg)
#undef js_PurgeStream
#define js_PurgeStream (*pdqm_nats.js_PurgeStream)
#undef js_SubscribeSync
#define js_SubscribeSync (*pdqm_nats.js_SubscribeSync)
#undef natsConnection_Close
#define natsConnection_Close (*pdqm_nats.natsConnection_Close)
#undef natsConnection_Connect
#define natsConnection_Connect (*pdqm_nats.natsConnection_Connect)
#undef natsConnection_Destroy
#define natsConnection_Destroy (*pdqm_nats.natsConnection_Destroy)
#undef natsConnection_GetMaxPayload
#define natsConnection_GetMaxPayload (*pdqm_nats.natsConnection_GetMaxPayload)
#undef natsConnection_JetStream
#define natsConnection_JetStream (*pdqm_nats.natsConnection_JetStream)
#undef natsConnection_Status
#define natsConnection_Status (*pdqm_nats.natsConnection_Status)
#undef natsMsgHeader_Get
#define natsMsgHeader_Get (*pdqm_nats.natsMsgHeader_Get)
#undef natsMsg_Create
#define natsMsg_Create (*pdqm_nats.natsMsg_Create)
#undef natsMsg_Destroy
#define natsMsg_Destroy (*pdqm_nats.natsMsg_Destroy)
#undef natsMsg_GetData
#define natsMsg_GetData (*pdqm_nats.natsMsg_GetData)
#undef natsMsg_GetDataLength
#define natsMsg_GetDataLength (*pdqm_nats.natsMsg_GetDataLength)
#undef natsMsg_GetMetaData
#define natsMsg_GetMetaData (*pdqm_nats.natsMsg_GetMetaData)
#undef natsOptions_Create
#define natsOptions_Create (*pdqm_nats.natsOptions_Create)
#undef natsOptions_Destroy
#define natsOptions_Destroy (*pdqm_nats.natsOptions_Destroy)
#undef natsOptions_LoadCATrustedCertificates
#define natsOptions_LoadCATrustedCertificates (*pdqm_nats.natsOptions_LoadCATrustedCertificates)
#undef natsOptions_LoadCertificatesChain
#define natsOptions_LoadCertificatesChain (*pdqm_nats.natsOptions_LoadCertificatesChain)
#undef natsOptions_SetMaxReconnect
#define natsOptions_SetMaxReconnect (*pdqm_nats.natsOptions_SetMaxReconnect)
#undef natsOptions_SetName
#define natsOptions_SetName (*pdqm_nats.natsOptions_SetName)
#undef natsOptions_SetPingInterval
#define natsOptions_SetPingInterval (*pdqm_nats.natsOptions_SetPingInterval)
#undef natsOptions_SetReconnectWait
#define natsOptions_SetReconnectWait (*pdqm_nats.natsOptions_SetReconnectWait)
#undef natsOptions_SetRetryOnFailedConnect
#define natsOptions_SetRetryOnFailedConnect (*pdqm_nats.natsOptions_SetRetryOnFailedConnect)
#undef natsOptions_SetServers
#define natsOptions_SetServers (*pdqm_nats.natsOptions_SetServers)
#undef natsOptions_SetTimeout
#define natsOptions_SetTimeout (*pdqm_nats.natsOptions_SetTimeout)
#undef natsOptions_SetUserCredentialsFromFiles
#define natsOptions_SetUserCredentialsFromFiles (*pdqm_nats.natsOptions_SetUserCredentialsFromFiles)
#undef natsStatus_GetText
#define natsStatus_GetText (*pdqm_nats.natsStatus_GetText)
#undef natsSubscription_Destroy
#define natsSubscription_Destroy (*pdqm_nats.natsSubscription_Destroy)
#undef natsSubscription_GetPending
#define natsSubscription_GetPending (*pdqm_nats.natsSubscription_GetPending)
#undef natsSubscription_NextMsg
#define natsSubscription_NextMsg (*pdqm_nats.natsSubscription_NextMsg)
#undef natsSubscription_SetPendingLimits
#define natsSubscription_SetPendingLimits (*pdqm_nats.natsSubscription_SetPendingLimits)
#undef natsSubscription_Unsubscribe
#define natsSubscription_Unsubscribe (*pdqm_nats.natsSubscription_Unsubscribe)
#undef nats_GetLastError
#define nats_GetLastError (*pdqm_nats.nats_GetLastError)
#endif

#endif

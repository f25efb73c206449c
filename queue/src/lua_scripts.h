#pragma once

// The queue's Lua scripts (queue/lua/*.lua), embedded at build time as one Redis function
// library (queue/CMakeLists.txt): the prelude (queue/lua/PRELUDE) once, then each script as a
// function of the library. k_<script> is the script's name (the function is registered as
// "<k_library_name>_<name>").
namespace reelq::queue::lua {
extern const char* const k_library_name;
extern const char* const k_library;
extern const char* const k_submit;
extern const char* const k_dispatch;
extern const char* const k_lease;
extern const char* const k_heartbeat;
extern const char* const k_register;
extern const char* const k_phase;
extern const char* const k_create_permit;
extern const char* const k_complete;
extern const char* const k_fail;
extern const char* const k_handback;
extern const char* const k_reap;
extern const char* const k_cancel;
extern const char* const k_retry;
extern const char* const k_sync_config;
extern const char* const k_get;
extern const char* const k_list;
extern const char* const k_stats;
extern const char* const k_poll_token;
extern const char* const k_retention;
// Tenants and tokens (auth_store.cpp).
extern const char* const k_auth_create_tenant;
extern const char* const k_auth_add_token;
extern const char* const k_auth_revoke_token;
extern const char* const k_auth_set_weight;
extern const char* const k_auth_apply_weights;
extern const char* const k_auth_claim_batch;
// Wallets and tenant limits (wallet_store.cpp).
extern const char* const k_wallet_topup;
extern const char* const k_tenant_limits;
// Webhook deliveries (webhook_store.cpp).
extern const char* const k_webhook_claim;
extern const char* const k_webhook_settle;
extern const char* const k_webhook_get;
extern const char* const k_batch_webhook;
extern const char* const k_webhook_rotate;
}  // namespace reelq::queue::lua

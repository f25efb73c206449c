#pragma once

// The queue's Lua scripts (queue/lua/*.lua with common.lua prepended), embedded at build time.
namespace reelq::queue::lua {
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
}  // namespace reelq::queue::lua

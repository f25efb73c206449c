#pragma once

// Sending a submit again when its answer may hide a stored job. A scheduler answers UNAVAILABLE
// or DEADLINE_EXCEEDED when it cannot confirm a write (a replica wait that fell short, a script
// that timed out after it was sent): the job may be stored all the same. Sent again with the
// same idempotency key, the scheduler answers for the job it holds instead of making (and
// billing) a second one.

#include <chrono>
#include <string>
#include <string_view>

#include <grpcpp/support/status.h>

#include "context.h"
#include "reelq/v1/admin.pb.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::cli {

// Sends of a submit whose answer may hide a stored job: the first and up to three more.
inline constexpr int kSendAttempts = 4;

// UNAVAILABLE or DEADLINE_EXCEEDED (a grpc::StatusCode or a BatchItemResult.code).
bool MayBeStored(int code);

// The wait before send `attempt` + 1: 200 ms after the first, doubling, at most 2 s.
std::chrono::milliseconds ResendBackoff(int attempt);

// "cli-" and 32 random hex digits.
std::string NewIdempotencyKey();

// SubmitJob with `spec`; a spec without an idempotency key gets a new one first. A submit
// answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again with the same key, up to
// kSendAttempts sends. Returns 0 with `response` filled, or an exit code after printing the
// error, and, when the job may be stored, the key to run the command again with.
int SubmitJobResending(Context& context, v1::JobSpec spec, v1::SubmitJobResponse* response);

// AdminService.TopUp, sent again as a submit is: a request without a request id gets a new one
// first, and a top-up answered UNAVAILABLE or DEADLINE_EXCEEDED (the credit may be made: a
// replica wait that fell short, an answer lost) is sent again with the same id, which credits
// once, up to kSendAttempts sends. Returns 0 with `response` filled, or an exit code after
// printing the error, and, when the credit may be made, the id to run the command again with.
int TopUpResending(Context& context, v1::TopUpRequest request, v1::Wallet* response);

}  // namespace reelq::cli

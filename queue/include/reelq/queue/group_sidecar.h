#pragma once

// What a group's sidecar (issue 13) says about its children, built from their job records: by
// the worker that makes the group's output, and again by PickTake when a compare's take is
// chosen, so both write the same document.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reelq/queue/job_record.h"

namespace reelq::queue {

// USD per second of clip for a model id at a resolution (the catalogue's
// price_per_second_by_resolution where it has one); <= 0 when unknown.
using PriceOf = std::function<double(const std::string& model, const std::string& resolution)>;

// One child: index, job id, state, prompt, length, model, account, upstream id, attempt, clip
// and sidecar keys, SHA-256, timings (created, started, finished), "seconds" from start to end,
// "cost_usd_estimate": what the wallet settled for the child (JobRecord::cost_micros) once it
// did, else the price at the child's resolution times its clip's seconds when the price is
// known; and "error" (category, message, provider_code) for a child that did not succeed (a
// compare's failed take).
nlohmann::json GroupChildEntry(const JobRecord& child, const PriceOf& price);

// A compare: the prompt, the grid video and PNG sheet keys, every take (those that failed
// too, with their state and error; "takes_failed" counts them), and the picked take's job id
// (null until one is picked).
nlohmann::json CompareSidecar(const JobRecord& group, const std::vector<JobRecord>& takes,
                              const PriceOf& price, const std::string& grid_key,
                              const std::string& sheet_key, const std::string& picked);

}  // namespace reelq::queue

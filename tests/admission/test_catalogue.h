#pragma once

#include "reelq/providers/catalogue.h"

namespace reelq::testing {

// The shipped catalogue (deploy/catalogue.yaml), built by hand so that these tests do not
// depend on the YAML parser.
inline providers::Catalogue ShippedCatalogue() {
  providers::Catalogue c;
  providers::ModelSpec kling{.id = "kling-3.0",
                             .provider = "kling",
                             .upstream_model = "kling-v3",
                             .durations = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                             .max_clip_seconds = 15,
                             .aspect_ratios = {"16:9", "9:16", "1:1"},
                             .resolutions = {"720p", "1080p"},
                             .max_shots = 6,
                             .audio = true,
                             .latency = {60, 120, 180, 300},
                             .price_per_second = 0.112,
                             .max_prompt_chars = 2500,
                             .max_shot_prompt_chars = 512,
                             .inputs = {.first_frame = true, .last_frame = true}};
  providers::ModelSpec sora{.id = "sora-2",
                            .provider = "sora",
                            .upstream_model = "sora-2",
                            .durations = {4, 8, 12},
                            .max_clip_seconds = 12,
                            .aspect_ratios = {"16:9", "9:16"},
                            .resolutions = {"720p"},
                            .max_shots = 1,
                            .audio = true,
                            .latency = {90, 180, 280, 360},
                            .price_per_second = 0.10,
                            .max_prompt_chars = 32000,
                            .inputs = {.first_frame = true}};
  providers::ModelSpec veo{
      .id = "veo-3.1",
      .provider = "veo",
      .upstream_model = "veo-3.1-generate-preview",
      .durations = {4, 6, 8},
      .durations_by_resolution = {{"1080p", {8}}},
      .max_clip_seconds = 8,
      .aspect_ratios = {"16:9", "9:16"},
      .resolutions = {"720p", "1080p"},
      .max_shots = 1,
      .audio = true,
      .latency = {11, 75, 240, 360},
      .price_per_second = 0.40,
      .inputs = {.first_frame = true, .last_frame = true, .reference_images = 3}};
  providers::ModelSpec seedance{.id = "seedance-2.0",
                                .provider = "seedance",
                                .upstream_model = "dreamina-seedance-2-0-260128",
                                .durations = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                .max_clip_seconds = 15,
                                .aspect_ratios = {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9"},
                                .resolutions = {"480p", "720p", "1080p"},
                                .max_shots = 1,
                                .audio = true,
                                .latency = {20, 45, 60, 90},
                                .price_per_second = 0.10,
                                .inputs = {.first_frame = true,
                                           .last_frame = true,
                                           .reference_images = 9,
                                           .last_frame_needs_first = true}};
  c.models = {kling, sora, veo, seedance};
  // One account per provider: admission refuses a model no account can run.
  for (const char* provider : {"kling", "sora", "veo", "seedance"}) {
    c.accounts.push_back({.id = std::string(provider) + "-main", .provider = provider});
  }
  c.use_case_first_choice = {
      {"photorealism", "sora-2"},
      {"multi_shot_narrative", "kling-3.0"},
      {"character_consistency", "kling-3.0"},
      {"long_clip", "kling-3.0"},
      {"intercut_live_footage", "sora-2"},
      {"camera_direction", "veo-3.1"},
      {"fast_social", "seedance-2.0"},
  };
  return c;
}

}  // namespace reelq::testing

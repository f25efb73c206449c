#pragma once

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "sim_client.h"

namespace reelq::simtest {

// One simulator for the read-mostly tests (tests that change limits use key "b" and put it
// back). Latency scale 0.001: a 2-minute generation takes about 120 ms. A static object, not a
// leaked pointer: its destructor stops the simulator and removes its directory when the test
// binary exits (and the child dies with the binary if it crashes, see ChildProcess).
inline SimProcess& SharedSim() {
  static SimProcess sim({"--latency-scale", "0.001", "--seed", "7"});
  return sim;
}

// Polls `fetch` until `done(json)` or the deadline; returns the last answer.
inline nlohmann::json PollUntil(const std::function<HttpResult()>& fetch,
                                const std::function<bool(const nlohmann::json&)>& done,
                                std::chrono::milliseconds deadline = std::chrono::seconds(15)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  nlohmann::json last;
  while (std::chrono::steady_clock::now() < end) {
    HttpResult r = fetch();
    EXPECT_EQ(r.status, 200) << r.error << " " << r.body;
    if (r.status != 200) return r.Json();
    last = r.Json();
    if (done(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "timed out polling; last answer: " << last.dump();
  return last;
}

// Checks bytes are an MP4 and, when ffprobe is present, its duration and display ratio.
inline void ExpectMp4(const HttpResult& r, double duration, const std::string& ratio) {
  ASSERT_EQ(r.status, 200) << r.error;
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_GT(r.body.size(), 12u);
  EXPECT_EQ(r.body.substr(4, 4), "ftyp");
  EXPECT_EQ(r.Header("content-length"), std::to_string(r.body.size()));
  testing::TempDir dir;
  const auto file = dir.path() / "clip.mp4";
  std::ofstream(file, std::ios::binary) << r.body;
  auto probe = FfProbe(file);
  if (!probe) {
    std::cerr << "ffprobe not installed: duration/ratio of the clip not checked\n";
    return;
  }
  EXPECT_NEAR(probe->duration, duration, 0.3);
  EXPECT_EQ(probe->display_aspect_ratio, ratio) << probe->width << "x" << probe->height;
}

inline std::map<std::string, std::string> Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace reelq::simtest

#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

namespace reelq::scheduler {

// How many WatchJob streams are open, per principal and in all (scheduler.max_watches_per_tenant,
// scheduler.max_watches). Every watch costs the io thread a re-read a second or so while idle, so
// a tool opening one per job of a big batch is refused past the limit instead of slowing
// everyone. Thread-safe; a Slot may outlive the WatchLimits that gave it.
class WatchLimits {
 public:
  // One open watch, counted until it is destroyed (however the watch ended).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        Release();
        state_ = std::move(other.state_);
        principal_ = std::move(other.principal_);
      }
      return *this;
    }
    ~Slot() { Release(); }

   private:
    friend class WatchLimits;
    struct State;
    Slot(std::shared_ptr<State> state, std::string principal)
        : state_(std::move(state)), principal_(std::move(principal)) {}
    void Release();
    std::shared_ptr<State> state_;
    std::string principal_;
  };

  WatchLimits();

  // A slot for a watch of `tenant` (empty: an admin token, or authentication off, counted as one
  // principal), or, past `per_principal` of its watches or `total` of all, the refusal: a message
  // naming the limit and the setting that raises it.
  std::variant<Slot, std::string> Open(const std::string& tenant, size_t per_principal,
                                       size_t total);

  size_t open() const;
  size_t open(const std::string& tenant) const;

 private:
  std::shared_ptr<Slot::State> state_;
};

}  // namespace reelq::scheduler

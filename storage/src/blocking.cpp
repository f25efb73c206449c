#include "blocking.h"

#include <map>
#include <mutex>

namespace reelq::storage::detail {

asio::thread_pool& BlockingPool(int threads) {
  static std::mutex mutex;
  // Leaked on purpose: the pools outlive every store, and joining at static destruction (or
  // from one of a pool's own threads, where a store's last reference may be dropped) could hang.
  static auto* pools = new std::map<int, asio::thread_pool*>();
  const int size = threads < 1 ? 1 : threads;
  std::lock_guard lock(mutex);
  auto& pool = (*pools)[size];
  if (pool == nullptr) pool = new asio::thread_pool(static_cast<size_t>(size));
  return *pool;
}

}  // namespace reelq::storage::detail

#include "blocking.h"

namespace reelq::storage::detail {

asio::thread_pool& BlockingPool() {
  // Leaked on purpose: outlives every store, and joining at static destruction could hang.
  static auto* pool = new asio::thread_pool(2);
  return *pool;
}

}  // namespace reelq::storage::detail

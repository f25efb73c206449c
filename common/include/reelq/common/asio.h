#pragma once

// One place that pulls in Boost.Asio for the whole project, so that every target gets the
// same coroutine helpers and the Boost 1.74 / g++ 12 include-order fix.
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it.

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace reelq {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
// Completion token that returns (error_code, results...) instead of throwing.
inline constexpr auto use_nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace reelq

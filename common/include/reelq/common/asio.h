#pragma once

// One place that pulls in Boost.Asio for the whole project, so that every target gets the
// same coroutine helpers and the Boost 1.74 / g++ 12 include-order fix.
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it.

#include <tuple>
#include <type_traits>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#if __has_include(<boost/asio/experimental/as_tuple.hpp>)
#include <boost/asio/experimental/as_tuple.hpp>
#define REELQ_HAVE_ASIO_AS_TUPLE 1
#endif

#ifndef REELQ_HAVE_ASIO_AS_TUPLE
// Boost 1.74 predates asio::experimental::as_tuple (added in 1.78). This is a minimal
// equivalent: it turns a completion signature void(Args...) into void(std::tuple<Args...>), so
// `co_await op(use_nothrow_awaitable)` yields (error_code, results...) instead of throwing.
namespace reelq::detail {

template <class Token>
struct AsTuple {
  Token token;
};

template <class Handler>
struct AsTupleHandler {
  Handler handler;
  template <class... Args>
  void operator()(Args&&... args) {
    std::move(handler)(std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...));
  }
};

template <class Initiation>
struct AsTupleInitiation {
  Initiation initiation;
  template <class Handler, class... Args>
  void operator()(Handler&& handler, Args&&... args) {
    std::move(initiation)(AsTupleHandler<std::decay_t<Handler>>{std::forward<Handler>(handler)},
                          std::forward<Args>(args)...);
  }
};

}  // namespace reelq::detail

namespace boost::asio {

template <class Token, class R, class... Args>
struct async_result<reelq::detail::AsTuple<Token>, R(Args...)> {
  // Beast 1.74 still names the result through the pre-initiate `return_type`.
  using return_type =
      typename async_result<Token, void(std::tuple<std::decay_t<Args>...>)>::return_type;
  template <class Initiation, class RawToken, class... InitArgs>
  static auto initiate(Initiation&& initiation, RawToken&& token, InitArgs&&... args) {
    Token inner = token.token;  // the wrapper may be const (a constexpr token object)
    return async_initiate<Token, void(std::tuple<std::decay_t<Args>...>)>(
        reelq::detail::AsTupleInitiation<std::decay_t<Initiation>>{
            std::forward<Initiation>(initiation)},
        inner, std::forward<InitArgs>(args)...);
  }
};

// Completions must run where the wrapped handler would (the coroutine's executor).
template <class Handler, class Executor>
struct associated_executor<reelq::detail::AsTupleHandler<Handler>, Executor> {
  using type = associated_executor_t<Handler, Executor>;
  static type get(const reelq::detail::AsTupleHandler<Handler>& h,
                  const Executor& ex = Executor()) noexcept {
    return associated_executor<Handler, Executor>::get(h.handler, ex);
  }
};

template <class Handler, class Allocator>
struct associated_allocator<reelq::detail::AsTupleHandler<Handler>, Allocator> {
  using type = associated_allocator_t<Handler, Allocator>;
  static type get(const reelq::detail::AsTupleHandler<Handler>& h,
                  const Allocator& a = Allocator()) noexcept {
    return associated_allocator<Handler, Allocator>::get(h.handler, a);
  }
};

}  // namespace boost::asio
#endif

namespace reelq {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
// Completion token that returns (error_code, results...) instead of throwing.
#ifdef REELQ_HAVE_ASIO_AS_TUPLE
inline constexpr auto use_nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);
#else
inline constexpr detail::AsTuple<asio::use_awaitable_t<>> use_nothrow_awaitable{};
#endif

}  // namespace reelq

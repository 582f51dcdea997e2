#pragma once

#include "common/errors.hpp"
#include "common/event.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "http/handlers.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>

namespace customcode::http {

// HTTP_MAX_CONNECTIONS when it is 0: half the descriptor limit, the other half left for the
// workers' pipes, the store's files and npm. At least 1, at most 2^20.
std::size_t defaultMaxConnections(std::uint64_t descriptorLimit);

// Accepts connections and serves HTTP/1.1 on them (keep-alive, REQUEST_MAX_SIZE), one coroutine
// per connection, requests handled in order. Runs on the event loop.
//
// Exhaustion: at most HTTP_MAX_CONNECTIONS connections are open; one beyond it is closed as soon
// as it is accepted. When accept() fails for want of descriptors (EMFILE, ENFILE) the loop sheds
// the connection it could not take (closing it through a descriptor held in reserve), waits
// (10 ms, doubling to 1 s while it keeps failing) and tries again: no spin, and the connections
// already open keep being served. Both are counted in /metrics and logged with a rate limit.
// Timeouts: HTTP_IDLE_TIMEOUT for a connection waiting for its next request, HTTP_HEADER_TIMEOUT
// for the whole request head from its first byte (a deadline: a trickle of bytes does not extend
// it); the connection is closed when one passes.
class Listener {
 public:
  Listener(asio::any_io_executor executor, config::HttpConfig config, Api& api, Metrics& metrics);
  ~Listener();

  // Binds and listens. Returns the bound port (useful with PORT=0), or why it cannot listen.
  Result<std::uint16_t> open();
  void start();

  // Stops accepting; connections close after the response in progress.
  void stopAccepting();
  // After stopAccepting(): waits until no request is in flight, or `deadline`; false if it passed.
  asio::awaitable<bool> waitDrained(std::chrono::steady_clock::time_point deadline) {
    co_return co_await drained_.waitUntil(deadline);
  }
  std::size_t requestsInFlight() const { return inFlight_; }
  std::size_t connectionsOpen() const { return connections_; }

 private:
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  // After accept() failed for want of descriptors: frees the reserve descriptor, accepts the
  // connection waiting and closes it, and takes the reserve back.
  void shedOneConnection();
  void requestDone();

  asio::any_io_executor executor_;
  config::HttpConfig config_;
  Api& api_;          // Owned by Server.
  Metrics& metrics_;  // Owned by Server.
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer backoff_;
  int reserveFd_ = -1;  // /dev/null, given up for a moment when descriptors run out
  bool draining_ = false;
  Event drained_;  // set once draining_ and no request is in flight
  std::size_t inFlight_ = 0;
  std::size_t connections_ = 0;
};

}  // namespace customcode::http

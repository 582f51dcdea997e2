#pragma once

#include "common/errors.hpp"
#include "config/config.hpp"
#include "http/handlers.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>

namespace customcode::http {

// Accepts connections and serves HTTP/1.1 on them (keep-alive, REQUEST_MAX_SIZE), one coroutine
// per connection, requests handled in order. Runs on the event loop.
class Listener {
 public:
  Listener(asio::any_io_executor executor, config::HttpConfig config, Api& api);

  // Binds and listens. Returns the bound port (useful with PORT=0), or why it cannot listen.
  Result<std::uint16_t> open();
  void start();

  // Stops accepting; connections close after the response in progress.
  void stopAccepting();
  std::size_t requestsInFlight() const { return inFlight_; }

 private:
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);

  asio::any_io_executor executor_;
  config::HttpConfig config_;
  Api& api_;  // Owned by Server.
  asio::ip::tcp::acceptor acceptor_;
  bool draining_ = false;
  std::size_t inFlight_ = 0;
};

}  // namespace customcode::http

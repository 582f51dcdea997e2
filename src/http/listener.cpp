#include "http/listener.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "http/error_response.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace customcode::http {
namespace beast = boost::beast;
using asio::as_tuple;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

std::string sizeText(std::size_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + "mb";
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + "kb";
  return std::to_string(bytes) + " bytes";
}

// Small responses (every run's answer, typically) go out as one buffer that Beast's serializer
// fills once: writing the message directly walks Beast's buffer views several times per write,
// which the profile showed. Large bodies are not copied: Beast writes them as they are.
constexpr std::size_t kFlattenBodyMax = 64 * 1024;

std::string flatten(Response& response) {
  std::string wire;
  wire.reserve(256 + response.body().size());
  bhttp::response_serializer<bhttp::string_body> serializer(response);
  boost::system::error_code ec;
  while (!ec && !serializer.is_done()) {
    serializer.next(ec, [&](boost::system::error_code& error, const auto& buffers) {
      error = {};
      std::size_t size = 0;
      for (auto buffer : beast::buffers_range_ref(buffers)) {
        wire.append(static_cast<const char*>(buffer.data()), buffer.size());
        size += buffer.size();
      }
      serializer.consume(size);
    });
  }
  return wire;
}

constexpr auto kBackoffMin = std::chrono::milliseconds(10);
constexpr auto kBackoffMax = std::chrono::milliseconds(1000);

bool outOfDescriptors(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace

std::size_t defaultMaxConnections(std::uint64_t descriptorLimit) {
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(descriptorLimit / 2, 1, std::uint64_t{1} << 20));
}

Listener::Listener(asio::any_io_executor executor, config::HttpConfig config, Api& api, Metrics& metrics)
    : executor_(executor),
      config_(std::move(config)),
      api_(api),
      metrics_(metrics),
      acceptor_(executor),
      backoff_(executor) {
  if (config_.maxConnections == 0) config_.maxConnections = defaultMaxConnections(1024);
}

Listener::~Listener() {
  if (reserveFd_ >= 0) ::close(reserveFd_);
}

Result<std::uint16_t> Listener::open() {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(config_.host, ec);
  if (ec) return Error{Errc::InvalidRequest, "HOST: not an IP address: " + config_.host};
  tcp::endpoint endpoint(address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  // Non-blocking, so that shedding a connection (shedOneConnection) never waits in accept().
  if (!ec) acceptor_.native_non_blocking(true, ec);
  if (ec) return Error{Errc::InvalidRequest, "PORT: cannot listen on " + config_.host + ":" + std::to_string(config_.port) + ": " + ec.message()};
  reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  log::http()->info("at most {} HTTP connections at once (HTTP_MAX_CONNECTIONS)", config_.maxConnections);
  return acceptor_.local_endpoint().port();
}

void Listener::start() { spawnLogged(executor_, acceptLoop(), "HTTP accept loop"); }

void Listener::stopAccepting() {
  draining_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
  if (inFlight_ == 0) drained_.set();
}

void Listener::requestDone() {
  --inFlight_;
  if (draining_ && inFlight_ == 0) drained_.set();
}

void Listener::shedOneConnection() {
  if (reserveFd_ >= 0) {
    ::close(reserveFd_);
    reserveFd_ = -1;
  }
  int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) ::close(fd);
  reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

asio::awaitable<void> Listener::acceptLoop() {
  static log::RateLimit failureLog;
  static log::RateLimit limitLog;
  auto backoff = kBackoffMin;
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(use_awaitable));
    if (ec) {
      if (!acceptor_.is_open()) break;
      // Never retry at once: an error that repeats (no descriptors, no memory) would spin.
      if (outOfDescriptors(ec)) {
        ++metrics_.httpConnectionsRefusedDescriptors;
        shedOneConnection();
      }
      if (auto note = failureLog.admit())
        log::http()->warn("accept failed: {}; {} connection(s) open, {} refused for want of descriptors since "
                          "start-up; retrying in {} ms{}",
                          ec.message(), connections_, metrics_.httpConnectionsRefusedDescriptors, backoff.count(),
                          *note);
      backoff_.expires_after(backoff);
      co_await backoff_.async_wait(as_tuple(use_awaitable));
      backoff = std::min(backoff * 2, kBackoffMax);
      continue;
    }
    backoff = kBackoffMin;
    if (connections_ >= config_.maxConnections) {
      ++metrics_.httpConnectionsRefusedLimit;
      if (auto note = limitLog.admit())
        log::http()->warn("{} connections open (HTTP_MAX_CONNECTIONS): closing a new one; {} refused since "
                          "start-up{}",
                          connections_, metrics_.httpConnectionsRefusedLimit, *note);
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    spawnLogged(executor_, session(std::move(socket)), "HTTP session");
  }
}

asio::awaitable<void> Listener::session(tcp::socket socket) {
  ++connections_;
  metrics_.httpConnectionsOpen = connections_;
  struct Closed {
    Listener& self;
    ~Closed() { self.metrics_.httpConnectionsOpen = --self.connections_; }
  } closed{*this};
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  bool refusedBody = false;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(config_.requestMaxSize);
    parser.header_limit(64 * 1024);
    if (buffer.size() == 0) {
      // Idle: waiting for the first byte of the next request.
      stream.expires_after(config_.idleTimeout);
      auto [idleError, n] = co_await stream.async_read_some(buffer.prepare(4096), as_tuple(use_awaitable));
      if (idleError) break;
      buffer.commit(n);
    }
    // The whole head from now on: one deadline, which the reads below do not move.
    stream.expires_after(config_.headerTimeout);
    auto [headerError, headerBytes] = co_await bhttp::async_read_header(stream, buffer, parser, as_tuple(use_awaitable));
    if (headerError == bhttp::error::body_limit) {
      // Beast refuses a Content-Length over the limit as soon as the header is parsed.
      auto response = errorResponse(
          Error{Errc::PayloadTooLarge, "Request body is larger than REQUEST_MAX_SIZE (" + sizeText(config_.requestMaxSize) + ")"},
          parser.get().version(), false);
      co_await bhttp::async_write(stream, response, as_tuple(use_awaitable));
      refusedBody = true;
      break;
    }
    if (headerError) break;  // closed, timed out or garbage: nothing to answer
    ++inFlight_;
    struct Done {
      Listener& listener;
      ~Done() { listener.requestDone(); }
    } done{*this};

    const auto& header = parser.get();
    Error tooLarge{Errc::PayloadTooLarge, "Request body is larger than REQUEST_MAX_SIZE (" + sizeText(config_.requestMaxSize) + ")"};
    if (parser.content_length() && *parser.content_length() > config_.requestMaxSize) {
      auto response = errorResponse(tooLarge, header.version(), false);
      co_await bhttp::async_write(stream, response, as_tuple(use_awaitable));
      refusedBody = true;
      break;
    }
    if (header[bhttp::field::expect] == "100-continue") {
      bhttp::response<bhttp::empty_body> go{bhttp::status::continue_, header.version()};
      co_await bhttp::async_write(stream, go, as_tuple(use_awaitable));
    }
    stream.expires_after(std::chrono::seconds(60));
    auto [bodyError, bodyBytes] = co_await bhttp::async_read(stream, buffer, parser, as_tuple(use_awaitable));
    if (bodyError == bhttp::error::body_limit) {
      auto response = errorResponse(tooLarge, header.version(), false);
      co_await bhttp::async_write(stream, response, as_tuple(use_awaitable));
      refusedBody = true;
      break;
    }
    if (bodyError) {
      if (bodyError != bhttp::error::end_of_stream && bodyError != asio::error::eof)
        log::http()->debug("reading a request failed: {}", bodyError.message());
      break;
    }
    stream.expires_never();
    Request request = parser.release();
    const bool keepAlive = request.keep_alive() && !draining_;
    const bool head = request.method() == bhttp::verb::head;
    Response response = co_await api_.handle(std::move(request));
    response.keep_alive(keepAlive);
    if (head) response.body().clear();
    stream.expires_after(std::chrono::seconds(60));
    boost::system::error_code writeError;
    if (response.body().size() <= kFlattenBodyMax) {
      auto wire = flatten(response);
      auto [error, written] = co_await asio::async_write(stream, asio::buffer(wire), as_tuple(use_awaitable));
      writeError = error;
    } else {
      auto [error, written] = co_await bhttp::async_write(stream, response, as_tuple(use_awaitable));
      writeError = error;
    }
    if (writeError || !keepAlive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (refusedBody) {
    // The client may still be sending the body we refused. Closing with unread data resets the
    // connection, and the reset can discard the 413 before the client reads it: drain a while.
    stream.expires_after(std::chrono::seconds(2));
    std::vector<char> sink(16 * 1024);
    for (std::size_t drained = 0; drained < 64 * config_.requestMaxSize + (1u << 20);) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), as_tuple(use_awaitable));
      if (ec) break;
      drained += n;
    }
  }
}

}  // namespace customcode::http

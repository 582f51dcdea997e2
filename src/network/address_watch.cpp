#include "network/address_watch.hpp"

#include "common/log.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace customcode::network {
namespace {

// A new interface brings several addresses at once (IPv4, IPv6, link-local): one reload for all.
constexpr int kQuietMs = 20;

}  // namespace

AddressWatch::~AddressWatch() { stop(); }

std::string AddressWatch::start(std::function<void()> onChange) {
  socket_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (socket_ < 0) return std::string("netlink socket: ") + std::strerror(errno);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (::bind(socket_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    std::string why = std::string("netlink bind: ") + std::strerror(errno);
    stop();
    return why;
  }
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) {
    std::string why = std::string("eventfd: ") + std::strerror(errno);
    stop();
    return why;
  }
  onChange_ = std::move(onChange);
  thread_ = std::thread([this] { loop(); });
  return {};
}

void AddressWatch::stop() {
  if (thread_.joinable()) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    thread_.join();
  }
  for (int* fd : {&socket_, &wake_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void AddressWatch::loop() {
  alignas(nlmsghdr) char buffer[16384];
  bool pending = false;
  for (;;) {
    pollfd fds[2] = {{.fd = socket_, .events = POLLIN, .revents = 0}, {.fd = wake_, .events = POLLIN, .revents = 0}};
    int ready = ::poll(fds, 2, pending ? kQuietMs : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      log::app()->error("worker network: watching the host's addresses failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (ready == 0) {  // quiet again after a burst
      pending = false;
      onChange_();
      continue;
    }
    for (;;) {
      auto n = ::recv(socket_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      // ENOBUFS: notifications were lost; the addresses are read anew anyway.
      if (n < 0 && errno == ENOBUFS) {
        pending = true;
        continue;
      }
      if (n <= 0) break;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n))
        if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) pending = true;
    }
  }
}

}  // namespace customcode::network

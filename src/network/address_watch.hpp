#pragma once

#include <functional>
#include <string>
#include <thread>

// Tells when the host's addresses change: a thread reads the kernel's address notifications
// (netlink, RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR) and calls `onChange` once per burst of
// them, after they have been quiet for a few milliseconds. Used to keep the workers' deny list
// equal to the host's addresses (network/worker_network.hpp).
namespace customcode::network {

class AddressWatch {
 public:
  AddressWatch() = default;
  ~AddressWatch();
  AddressWatch(const AddressWatch&) = delete;
  AddressWatch& operator=(const AddressWatch&) = delete;

  // Subscribes, then starts the thread; `onChange` runs on that thread. Returns why it could not
  // subscribe, or an empty string.
  std::string start(std::function<void()> onChange);
  // Ends the thread (waits for a running `onChange`). Idempotent.
  void stop();

 private:
  void loop();

  int socket_ = -1;
  int wake_ = -1;  // eventfd that stop() writes
  std::function<void()> onChange_;
  std::thread thread_;
};

}  // namespace customcode::network

#include "network/address_watch.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace customcode::network {
namespace {

// In a child of its own, in a new user and network namespace (so that it may add addresses
// without touching the host's): returns the child's exit status, 0 when `onChange` ran after an
// address was added and not before.
int watchInOwnNamespace() {
  pid_t pid = ::fork();
  if (pid == 0) {
    const auto uid = ::geteuid();
    const auto gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) ::_exit(77);
    // Root of the new user namespace, so that `ip` keeps its capabilities across exec.
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    int fired[2];
    if (::pipe(fired) != 0) ::_exit(10);
    AddressWatch watch;
    if (!watch.start([&fired] { [[maybe_unused]] auto n = ::write(fired[1], "x", 1); }).empty()) ::_exit(11);
    pollfd p{.fd = fired[0], .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 100) != 0) ::_exit(12);  // nothing changed yet
    // Two addresses at once: one burst.
    if (std::system("ip addr add 192.0.2.77/32 dev lo && ip addr add 192.0.2.78/32 dev lo") != 0) ::_exit(13);
    if (::poll(&p, 1, 5000) != 1) ::_exit(14);
    char byte;
    if (::read(fired[0], &byte, 1) != 1) ::_exit(15);
    watch.stop();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

TEST(AddressWatch, ReportsAnAddressAddedToAnInterface) {
  if (::access("/usr/sbin/ip", X_OK) != 0 && ::access("/sbin/ip", X_OK) != 0) GTEST_SKIP() << "no iproute2";
  int status = watchInOwnNamespace();
  if (status == 77) GTEST_SKIP() << "user namespaces are refused here";
  EXPECT_EQ(status, 0);
}

TEST(AddressWatch, StopsWithoutAChange) {
  AddressWatch watch;
  ASSERT_EQ(watch.start([] {}), "");
  watch.stop();
  watch.stop();  // idempotent
}

}  // namespace
}  // namespace customcode::network

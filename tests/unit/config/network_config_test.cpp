#include "config/config.hpp"
#include "config/load_from.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Mode = WorkerNetworkConfig::Mode;

template <typename T>
std::vector<std::string> texts(const std::vector<T>& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.text());
  return out;
}

TEST(NetworkConfig, DefaultsToIsolatedThatMayFallBack) {
  auto loaded = loadFrom({});
  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.network.mode, Mode::Isolated);
  EXPECT_FALSE(loaded.config.network.required);
  EXPECT_THAT(loaded.config.network.deny, IsEmpty());
  EXPECT_THAT(loaded.config.network.allow, IsEmpty());
}

TEST(NetworkConfig, AnExplicitIsolatedIsRequired) {
  auto loaded = loadFrom({{"WORKER_NETWORK", " Isolated "}});
  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.network.mode, Mode::Isolated);
  EXPECT_TRUE(loaded.config.network.required);
}

TEST(NetworkConfig, ReadsHostAndNone) {
  EXPECT_EQ(loadFrom({{"WORKER_NETWORK", "host"}}).config.network.mode, Mode::Host);
  EXPECT_EQ(loadFrom({{"WORKER_NETWORK", "none"}}).config.network.mode, Mode::None);
  EXPECT_EQ(loadFrom({{"WORKER_NETWORK", ""}}).config.network.mode, Mode::Isolated);
  EXPECT_FALSE(loadFrom({{"WORKER_NETWORK", ""}}).config.network.required);
}

TEST(NetworkConfig, ReadsDenyAndAllowLists) {
  auto loaded = loadFrom({{"WORKER_NETWORK_DENY", "10.0.0.0/8, 172.16.0.0/12,fd00::/8"},
                          {"WORKER_NETWORK_ALLOW", "10.1.2.3, 127.0.0.1:5432"}});
  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_THAT(texts(loaded.config.network.deny), ElementsAre("10.0.0.0/8", "172.16.0.0/12", "fd00::/8"));
  EXPECT_THAT(texts(loaded.config.network.allow), ElementsAre("10.1.2.3/32", "127.0.0.1/32:5432"));
}

TEST(NetworkConfig, LoopbackCanBeAllowedOnlyPortByPort) {
  auto loaded = loadFrom({{"WORKER_NETWORK_ALLOW", "127.0.0.1"}});
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_THAT(loaded.errors[0], HasSubstr("WORKER_NETWORK_ALLOW: \"127.0.0.1\" opens the host's loopback"));
  // Ports belong to WORKER_NETWORK_ALLOW only.
  EXPECT_EQ(loadFrom({{"WORKER_NETWORK_DENY", "10.0.0.1:80"}}).errors.size(), 1u);
}

TEST(NetworkConfig, BadValuesNameTheVariable) {
  auto loaded = loadFrom({{"WORKER_NETWORK", "open"},
                          {"WORKER_NETWORK_DENY", "10.0.0.0/8,10.0.0.0/99"},
                          {"WORKER_NETWORK_ALLOW", "localhost"}});
  ASSERT_EQ(loaded.errors.size(), 3u);
  EXPECT_THAT(loaded.errors[0], HasSubstr("WORKER_NETWORK: must be isolated, host or none"));
  EXPECT_THAT(loaded.errors[1], HasSubstr("WORKER_NETWORK_DENY: \"10.0.0.0/99\" is not"));
  EXPECT_THAT(loaded.errors[2], HasSubstr("WORKER_NETWORK_ALLOW: \"localhost\" is not"));
}

}  // namespace
}  // namespace customcode::config

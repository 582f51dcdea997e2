#include "process/activity.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace customcode::process {

namespace {

struct Stat {
  pid_t parent = 0;
  char state = '?';
  std::uint64_t ticks = 0;  // utime + stime
};

// /proc/<pid>/stat: "pid (comm) state ppid ... utime(14) stime(15) ...". The command may hold
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<Stat> readStat(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return std::nullopt;
  std::vector<std::string_view> fields;  // fields[0] is the state (field 3 of proc(5))
  std::string_view rest(text);
  rest.remove_prefix(close + 2);
  while (!rest.empty() && fields.size() < 13) {
    auto space = rest.find(' ');
    fields.push_back(rest.substr(0, space));
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  if (fields.size() < 13) return std::nullopt;
  auto number = [](std::string_view field) {
    std::uint64_t value = 0;
    std::from_chars(field.data(), field.data() + field.size(), value);
    return value;
  };
  Stat stat;
  stat.state = fields[0].empty() ? '?' : fields[0][0];
  stat.parent = static_cast<pid_t>(number(fields[1]));
  stat.ticks = number(fields[11]) + number(fields[12]);
  return stat;
}

}  // namespace

std::optional<TreeActivity> lookAtTree(pid_t root) {
  std::unordered_map<pid_t, Stat> all;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    pid_t pid = 0;
    auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (err != std::errc{} || end != name.data() + name.size()) continue;
    if (auto stat = readStat(entry.path() / "stat")) all.emplace(pid, *stat);
  }
  if (!all.contains(root)) return std::nullopt;
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, stat] : all) children[stat.parent].push_back(pid);

  static const long ticksPerSecond = sysconf(_SC_CLK_TCK);
  TreeActivity activity;
  std::uint64_t ticks = 0;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t pid = todo.back();
    todo.pop_back();
    const auto& stat = all.at(pid);
    ticks += stat.ticks;
    if (stat.state == 'R') activity.running = true;
    if (auto it = children.find(pid); it != children.end()) todo.insert(todo.end(), it->second.begin(), it->second.end());
  }
  activity.cpu = std::chrono::nanoseconds(static_cast<std::int64_t>(ticks) * 1'000'000'000 / ticksPerSecond);
  return activity;
}

bool looksBusy(const TreeActivity& before, const TreeActivity& after, std::chrono::nanoseconds elapsed) {
  if (before.running && after.running) return true;
  return elapsed.count() > 0 && (after.cpu - before.cpu) * 2 >= elapsed;
}

}  // namespace customcode::process

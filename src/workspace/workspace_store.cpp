#include "workspace/workspace_store.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "workspace/codegen.hpp"
#include "workspace/validation.hpp"
#include "workspace/workspace_lock.hpp"
#include "workspace/yaml_json.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace customcode::workspace {
namespace fs = std::filesystem;
namespace {

constexpr const char* kYamlName = "workspace.yaml";
constexpr std::string_view kTempMarker = ".tmp-";
constexpr std::string_view kTrashPrefix = ".trash-";

std::string uniqueSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t seed = std::random_device{}();
  return std::to_string(::getpid()) + "-" + std::to_string(seed % 1000000) + "-" +
         std::to_string(counter.fetch_add(1));
}

Error storageError(const std::string& what, const fs::path& path, int err) {
  static log::RateLimit limit;  // a full disk or no descriptors fail every request alike
  if (auto note = limit.admit()) log::store()->error("{} {}: {}{}", what, path.string(), std::strerror(err), *note);
  return Error{Errc::StorageFailed, "Storage failed: " + what + " (" + std::strerror(err) + ")"};
}

Result<void> fsyncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return storageError("cannot open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return storageError("cannot fsync directory", dir, err);
  return {};
}

using files::readFile;

FileIdentity identityOf(const struct stat& st) {
  return FileIdentity{.device = st.st_dev,
                      .inode = st.st_ino,
                      .mtimeNs = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                      .size = st.st_size};
}

std::optional<FileIdentity> statIdentity(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return std::nullopt;
  return identityOf(st);
}

// The whole file into `out`; 0, or the errno of the failure.
int readWhole(const fs::path& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out.clear();
  char buffer[64 * 1024];
  for (;;) {
    auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return 0;
}

// The generated script of `language`, or nullopt when this build has no generator for it.
std::optional<std::string> generated(Language language, const StoredWorkspace& stored) {
  try {
    return generateScript(language, stored.workspace, stored.fingerprint);
  } catch (const std::logic_error&) {
    return std::nullopt;  // Its runs fail at run time.
  }
}

void setScriptVersions(StoredWorkspace& stored) {
  for (auto language : {Language::Node, Language::Python}) {
    std::uint64_t version = 0;
    if (stored.workspace.uses(language))
      if (auto text = generated(language, stored)) version = text::fingerprint(*text);
    (language == Language::Python ? stored.pythonScript : stored.nodeScript) = version;
  }
}

}  // namespace

Result<FileIdentity> writeFileAtomic(const fs::path& path, std::string_view content) {
  auto temp = path.parent_path() / ("." + path.filename().string() + std::string(kTempMarker) + uniqueSuffix());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return storageError("cannot create", temp, errno);
  std::size_t written = 0;
  while (written < content.size()) {
    auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return storageError("cannot write", temp, err);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return storageError("cannot fsync", temp, err);
  }
  // The identity of what we wrote, taken before the rename: a stat of `path` after it could see
  // a file that another process renamed there in between.
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return storageError("cannot stat", temp, err);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return storageError("cannot rename", path, err);
  }
  if (auto r = fsyncDirectory(path.parent_path()); !r) return r.error();
  return identityOf(st);
}

WorkspaceStore::WorkspaceStore(config::StoreConfig config)
    : root_(std::move(config.root)) {}

fs::path WorkspaceStore::directory(const std::string& name) const { return root_ / name; }

Result<void> WorkspaceStore::open() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return storageError("cannot create the storage directory", root_, ec.value());
  root_ = fs::canonical(root_, ec);
  if (ec) return storageError("cannot resolve the storage directory", root_, ec.value());
  rootFd_ = files::Fd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd_) return storageError("cannot open the storage directory", root_, errno);
  // Leftovers of a crash: half-deleted workspaces and temp files that were never renamed.
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with(kTrashPrefix)) {
      fs::remove_all(entry.path(), ec);
      continue;
    }
    if (!entry.is_directory() || name.starts_with(".")) continue;
    // Another replica sharing the directory may be writing this workspace right now: its temp
    // files are not leftovers. Held by nobody, the lock proves they are.
    auto lock = WorkspaceLock::tryAcquire(root_, name);
    if (!lock) continue;
    for (const auto& file : fs::directory_iterator(entry.path(), ec))
      if (file.path().filename().string().find(kTempMarker) != std::string::npos) fs::remove(file.path(), ec);
  }
  return {};
}

Result<StoredWorkspace> WorkspaceStore::save(const Workspace& workspace) {
  auto dir = directory(workspace.name);
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (!fs::create_directory(dir, ec) && ec) return storageError("cannot create", dir, ec.value());
    if (auto r = fsyncDirectory(root_); !r) return r.error();
  }
  StoredWorkspace stored;
  stored.workspace = workspace;
  auto yaml = jsonToYaml(workspace.body);
  stored.fingerprint = text::fingerprint(yaml);
  setScriptVersions(stored);
  if (auto r = syncScripts(stored); !r) return r.error();
  auto identity = writeFileAtomic(dir / kYamlName, yaml);
  if (!identity) return identity.error();
  stored.identity = *identity;
  collectScripts(workspace.name, stored);
  log::store()->info("[ws:{}] saved {} function(s)", workspace.name, workspace.functions.size());
  return stored;
}

Result<StoredWorkspace> WorkspaceStore::load(const std::string& name) const {
  auto path = directory(name) / kYamlName;
  // Identity first: if the file is replaced while we read, the identity is the older one and the
  // next run notices the change.
  auto identity = statIdentity(path.c_str());
  auto yaml = readFile(path);
  if (!identity || !yaml) return Error{Errc::WorkspaceNotFound, "Workspace \"" + name + "\" not found"};
  try {
    auto body = yamlToJson(*yaml);
    auto parsed = parseWorkspace(name, body);
    if (!parsed) {
      log::store()->error("[ws:{}] workspace.yaml is not a valid workspace: {}", name, parsed.error().message);
      return Error{Errc::StorageFailed, "Stored workspace \"" + name + "\" is invalid: " + parsed.error().message};
    }
    StoredWorkspace stored{.workspace = std::move(*parsed), .fingerprint = text::fingerprint(*yaml), .identity = *identity};
    setScriptVersions(stored);
    return stored;
  } catch (const std::exception& e) {
    log::store()->error("[ws:{}] cannot read workspace.yaml: {}", name, e.what());
    return Error{Errc::StorageFailed, "Stored workspace \"" + name + "\" cannot be read"};
  }
}

Result<WorkspaceLock> WorkspaceStore::lock(const std::string& name) const {
  return WorkspaceLock::acquire(root_, name);
}

Result<StoredWorkspace> WorkspaceStore::loadSynced(const std::string& name) {
  auto held = lock(name);
  if (!held) return held.error();
  auto stored = load(name);
  if (!stored) return stored;
  if (auto synced = syncScripts(*stored); !synced) return synced.error();
  return stored;
}

Result<void> WorkspaceStore::remove(const std::string& name) {
  auto dir = directory(name);
  auto held = lock(name);
  if (!held) return held.error();
  std::error_code ec;
  if (!fs::exists(dir / kYamlName, ec)) return Error{Errc::WorkspaceNotFound, "Workspace \"" + name + "\" not found"};
  // Rename first so that the workspace disappears at once and a crash leaves only trash.
  auto trash = root_ / (std::string(kTrashPrefix) + uniqueSuffix());
  if (::rename(dir.c_str(), trash.c_str()) != 0) return storageError("cannot remove", dir, errno);
  if (auto r = fsyncDirectory(root_); !r) return r.error();
  fs::remove_all(trash, ec);
  if (ec) log::store()->warn("[ws:{}] leftover files in {}: {}", name, trash.string(), ec.message());
  log::store()->info("[ws:{}] deleted", name);
  return {};
}

std::vector<std::string> WorkspaceStore::list() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with(".") || !entry.is_directory(ec)) continue;
    if (fs::exists(entry.path() / kYamlName, ec)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<FileIdentity> WorkspaceStore::identity(const std::string& name) const {
  // Called on every run: relative to the open root (a shorter path walk), and a plain string, not a
  // std::filesystem::path (which splits its components).
  std::string relative;
  relative.reserve(name.size() + 16);
  relative.append(name).append("/").append(kYamlName);
  struct stat st {};
  if (!rootFd_ || ::fstatat(rootFd_.get(), relative.c_str(), &st, 0) != 0) return std::nullopt;
  return identityOf(st);
}

Result<void> WorkspaceStore::syncScripts(const StoredWorkspace& stored) {
  for (auto language : {Language::Node, Language::Python}) {
    if (!stored.workspace.uses(language)) continue;
    auto script = syncScript(stored, language);
    if (!script && script.error().code != Errc::FunctionNotFound) return script.error();
  }
  return {};
}

Result<ScriptFile> WorkspaceStore::syncScript(const StoredWorkspace& stored, Language language) {
  auto script = stored.workspace.uses(language) ? generated(language, stored) : std::nullopt;
  if (!script)
    return Error{Errc::FunctionNotFound, "Workspace \"" + stored.workspace.name + "\" has no " +
                                             std::string(languageName(language)) + " function"};
  ScriptFile file{.path = directory(stored.workspace.name) / scriptFileName(language, text::fingerprint(*script)),
                  .text = std::move(*script),
                  .version = 0};
  file.version = text::fingerprint(file.text);
  // The whole text, not only the name: a damaged file keeps its name.
  std::string existing;
  if (readWhole(file.path, existing) == 0 && existing == file.text) {
    ::utimensat(AT_FDCWD, file.path.c_str(), nullptr, 0);  // in use again: not to be collected
    return file;
  }
  if (auto r = writeFileAtomic(file.path, file.text); !r) return r.error();
  return file;
}

void WorkspaceStore::collectScripts(const std::string& name, const StoredWorkspace& keep, std::chrono::seconds grace) {
  auto dir = directory(name);
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto file = entry.path().filename().string();
    bool remove = false;
    for (auto language : {Language::Node, Language::Python}) {
      if (file == scriptFileName(language)) remove = true;  // the layout before content addressing
      auto version = scriptVersion(file, language);
      if (!version || *version == keep.script(language)) continue;
      std::error_code timeError;
      auto written = fs::last_write_time(entry.path(), timeError);
      remove = !timeError && now - written > grace;
    }
    if (remove && ::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
      log::store()->warn("[ws:{}] cannot remove the old script {}: {}", name, file, std::strerror(errno));
  }
}

std::size_t WorkspaceStore::regenerateAll() {
  std::size_t count = 0;
  for (const auto& name : list()) {
    // Under the workspace's lock, so that replicas starting together (or a replica saving this
    // workspace meanwhile) never leave scripts generated from an older workspace.yaml.
    auto held = lock(name);
    if (!held) continue;  // lock() logged it
    auto stored = load(name);
    if (!stored) continue;  // load() logged it
    if (auto r = syncScripts(*stored); !r) continue;
    collectScripts(name, *stored);
    ++count;
  }
  log::store()->info("regenerated the scripts of {} workspace(s)", count);
  return count;
}

}  // namespace customcode::workspace

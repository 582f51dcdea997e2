#include "sandbox/confinement.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace customcode::sandbox {
namespace {

// System calls no function needs, refused with EPERM: debugging other processes, mounting,
// namespaces, kernel keyrings, eBPF, perf counters, kernel modules and kexec, file handles
// (open_by_handle_at walks past directory permissions), userfaultfd, and system administration.
constexpr const char* kRefused[] = {
    "ptrace",          "process_vm_readv", "process_vm_writev", "kcmp",           "mount",
    "umount2",         "pivot_root",       "chroot",            "unshare",        "setns",
    "fsopen",          "fsmount",          "fsconfig",          "move_mount",     "open_tree",
    "mount_setattr",   "bpf",              "keyctl",            "add_key",        "request_key",
    "perf_event_open", "kexec_load",       "kexec_file_load",   "init_module",    "finit_module",
    "delete_module",   "open_by_handle_at", "name_to_handle_at", "userfaultfd",   "fanotify_init",
    "swapon",          "swapoff",          "reboot",            "acct",           "quotactl",
    "syslog",          "iopl",             "ioperm",            "settimeofday",   "clock_settime",
    "adjtimex",        "clock_adjtime",    "sethostname",       "setdomainname",  "lookup_dcookie",
    "pidfd_send_signal", "pidfd_getfd",    "landlock_create_ruleset", "io_uring_setup"};

constexpr std::uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                                          CLONE_NEWUTS | CLONE_NEWCGROUP;

// Landlock ABI 1: every file system right it knows.
constexpr std::uint64_t kLandlockHandled =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;
constexpr std::uint64_t kLandlockRead =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t kLandlockReadFile = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE;

bool addLandlockRule(int ruleset, const char* path, std::uint64_t access) {
  int fd = ::open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;  // a system file this host does not have
  landlock_path_beneath_attr rule{.allowed_access = access, .parent_fd = fd};
  long added = ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  int err = errno;
  ::close(fd);
  errno = err;
  return added == 0;
}

// The signal filter, built in the child around its own pid: kill() only to its own process group
// (0 or -pid) or itself; tgkill() and rt_(tg)sigqueueinfo() only within its own thread group;
// tkill() not at all. Processes the worker starts inherit it with the worker's pid.
constexpr std::size_t kSignalFilterSize = 18;

void signalFilter(sock_filter (&out)[kSignalFilterSize], std::uint32_t pid) {
  const std::uint32_t group = static_cast<std::uint32_t>(-static_cast<std::int32_t>(pid));
  const std::uint32_t eperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  const std::uint32_t arg0 = offsetof(seccomp_data, args[0]);
  sock_filter program[kSignalFilterSize] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 15),  // other ABIs: the main filter
      /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 4, 0),
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 7, 0),
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_tgsigqueueinfo, 6, 0),
      /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigqueueinfo, 5, 0),
      /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tkill, 8, 9),
      /* 8: kill */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0),
      /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 0),
      /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, group, 6, 0),
      /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, pid, 5, 4),
      /* 12: tgkill, rt_(tg)sigqueueinfo */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0),
      /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, pid, 3, 2),
      /* 14, 15: unreachable */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* 16: refused */ BPF_STMT(BPF_RET | BPF_K, eperm),
      /* 17: allowed */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  std::memcpy(out, program, sizeof program);
}

}  // namespace

std::shared_ptr<const SeccompFilter> SeccompFilter::compile(std::string& error) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    error = "seccomp_init failed";
    return nullptr;
  }
  auto fail = [&](std::string why) -> std::shared_ptr<const SeccompFilter> {
    seccomp_release(ctx);
    error = std::move(why);
    return nullptr;
  };
  // A 32-bit or x32 process could call what the native table refuses under other numbers.
  if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0)
    return fail("cannot refuse foreign system call ABIs");
  const auto refuse = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kRefused) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, refuse, nr, 0) != 0) return fail(std::string("cannot add a rule for ") + name);
  }
  // New namespaces through clone(), one rule per flag (a rule matches when the flag is set);
  // clone3 passes its flags in memory a filter cannot read, so it answers ENOSYS and the C
  // libraries fall back to clone().
  for (std::uint64_t flag : {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
                             CLONE_NEWCGROUP}) {
    if (seccomp_rule_add(ctx, refuse, SCMP_SYS(clone), 1, SCMP_A0_64(SCMP_CMP_MASKED_EQ, flag, flag)) != 0)
      return fail("cannot add the clone rules");
  }
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) return fail("cannot add the clone3 rule");
  // ioctl(TIOCSTI) would type into the service's terminal, if it has one.
  if (seccomp_rule_add(ctx, refuse, SCMP_SYS(ioctl), 1, SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI)) != 0)
    return fail("cannot add the ioctl rule");

  int fd = ::memfd_create("seccomp", MFD_CLOEXEC);
  if (fd < 0) return fail(std::string("memfd_create: ") + std::strerror(errno));
  bool exported = seccomp_export_bpf(ctx, fd) == 0;
  seccomp_release(ctx);
  off_t size = ::lseek(fd, 0, SEEK_END);
  auto filter = std::make_shared<SeccompFilter>();
  if (exported && size > 0 && size % static_cast<off_t>(sizeof(sock_filter)) == 0) {
    filter->program_.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
    exported = ::pread(fd, filter->program_.data(), static_cast<std::size_t>(size), 0) == size;
  } else {
    exported = false;
  }
  ::close(fd);
  if (!exported) {
    error = "cannot export the seccomp filter";
    return nullptr;
  }
  return filter;
}

int landlockAbi() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

bool Confinement::apply(const void* self) {
  const auto& c = *static_cast<const Confinement*>(self);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  if (c.landlock) {
    // Zeroed first: newer kernel headers add fields (network, scopes) that stay unhandled.
    landlock_ruleset_attr attr{};
    attr.handled_access_fs = kLandlockHandled;
    int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
    if (ruleset < 0) return false;
    bool ok = true;
    for (const auto& dir : c.readable) ok = ok && addLandlockRule(ruleset, dir.c_str(), kLandlockRead);
    for (const auto& file : c.readableFiles) ok = ok && addLandlockRule(ruleset, file.c_str(), kLandlockReadFile);
    ok = ok && addLandlockRule(ruleset, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE);
    ok = ok && ::syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
    int err = errno;
    ::close(ruleset);
    errno = err;
    if (!ok) return false;
  }
  sock_filter signals[kSignalFilterSize];
  signalFilter(signals, static_cast<std::uint32_t>(::getpid()));
  sock_fprog signalProgram{.len = kSignalFilterSize, .filter = signals};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &signalProgram) != 0) return false;
  if (c.seccomp) {
    const auto& program = c.seccomp->program();
    sock_fprog main{.len = static_cast<unsigned short>(program.size()), .filter = const_cast<sock_filter*>(program.data())};
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &main) != 0) return false;
  }
  return true;
}

}  // namespace customcode::sandbox

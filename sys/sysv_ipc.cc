#include "sys/sysv_ipc.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "sys/namespaces.h"
#include "sys/proc.h"

#ifndef MSG_COPY
#define MSG_COPY 040000  // include/uapi/linux/msg.h
#endif

namespace ro::sys {
namespace {

constexpr uint64_t kPage = 4096;

std::string Name(const char* what, const SysvPerm& p) { return std::string(what) + " " + std::to_string(p.id); }

SysvPerm PermOf(int id, const ipc_perm& p) {
  return SysvPerm{id, static_cast<uint32_t>(p.__key), p.uid, p.gid, p.cuid, p.cgid, p.mode};
}

// The open file of segment `s` (none for hugetlb): attached read-only for
// as long as it takes to open it through /proc/self/map_files.
Result<UniqueFd> OpenSegment(SysvShmSegment& s) {
  void* at = ::shmat(s.perm.id, nullptr, SHM_RDONLY);
  if (at == reinterpret_cast<void*>(-1)) return SysError("shmat(" + std::to_string(s.perm.id) + ", SHM_RDONLY)");
  const uint64_t start = reinterpret_cast<uint64_t>(at), end = start + (s.size + kPage - 1) / kPage * kPage;
  char path[96];
  std::snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", static_cast<unsigned long>(start), static_cast<unsigned long>(end));
  UniqueFd contents(::open(path, O_RDONLY | O_CLOEXEC));
  Status st = contents ? Status() : SysError(std::string("open ") + path);
  struct statfs fs {};
  if (st.ok() && ::fstatfs(contents.get(), &fs) != 0) st = SysError("fstatfs of the segment");
  if (st.ok() && static_cast<unsigned long>(fs.f_type) == HUGETLBFS_MAGIC) {
    s.hugetlb = true;
    contents.reset();
  }
  if (::shmdt(at) != 0 && st.ok()) st = SysError("shmdt");
  if (!st.ok()) return std::move(st).error();
  return contents;
}

Status ReadSegments(std::vector<SysvShmSegment>& out, const SegmentReader& read_contents) {
  shm_info info {};
  int max = ::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&info));
  if (max < 0) return SysError("shmctl(SHM_INFO)");
  for (int i = 0; i <= max; ++i) {
    shmid_ds ds {};
    int id = ::shmctl(i, SHM_STAT, &ds);
    if (id < 0 && errno == EINVAL) continue;  // a free slot
    if (id < 0) return SysError("shmctl(" + std::to_string(i) + ", SHM_STAT)");
    SysvShmSegment s;
    s.perm = PermOf(id, ds.shm_perm);
    s.size = ds.shm_segsz;
    s.nattch = ds.shm_nattch;
    if (read_contents) {
      auto contents = OpenSegment(s);
      if (!contents.ok()) return std::move(contents).error().Within(Name("shared memory segment", s.perm));
      if (*contents) RO_TRY(read_contents(s, contents->get()));
    }
    out.push_back(std::move(s));
  }
  return {};
}

Status ReadQueues(std::vector<SysvMsgQueue>& out) {
  msginfo info {};
  int max = ::msgctl(0, MSG_INFO, reinterpret_cast<msqid_ds*>(&info));
  if (max < 0) return SysError("msgctl(MSG_INFO)");
  for (int i = 0; i <= max; ++i) {
    msqid_ds ds {};
    int id = ::msgctl(i, MSG_STAT, &ds);
    if (id < 0 && errno == EINVAL) continue;
    if (id < 0) return SysError("msgctl(" + std::to_string(i) + ", MSG_STAT)");
    SysvMsgQueue q;
    q.perm = PermOf(id, ds.msg_perm);
    q.qbytes = ds.msg_qbytes;
    // No message is longer than the bytes the queue holds.
    std::vector<char> buf(sizeof(long) + ds.__msg_cbytes + 1);
    for (msgqnum_t n = 0; n < ds.msg_qnum; ++n) {
      ssize_t got = ::msgrcv(id, buf.data(), buf.size() - sizeof(long), static_cast<long>(n), IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
      if (got < 0) return SysError("msgrcv(MSG_COPY) of message " + std::to_string(n)).Within(Name("message queue", q.perm));
      long mtype = 0;
      std::memcpy(&mtype, buf.data(), sizeof(long));
      q.messages.push_back(SysvMessage{static_cast<uint64_t>(mtype), std::string(buf.data() + sizeof(long), static_cast<size_t>(got))});
    }
    out.push_back(std::move(q));
  }
  return {};
}

Status ReadSets(std::vector<SysvSemSet>& out) {
  seminfo info {};
  int max = ::semctl(0, 0, SEM_INFO, &info);
  if (max < 0) return SysError("semctl(SEM_INFO)");
  for (int i = 0; i <= max; ++i) {
    semid_ds ds {};
    int id = ::semctl(i, 0, SEM_STAT, &ds);
    if (id < 0 && errno == EINVAL) continue;
    if (id < 0) return SysError("semctl(" + std::to_string(i) + ", SEM_STAT)");
    SysvSemSet s;
    s.perm = PermOf(id, ds.sem_perm);
    s.values.resize(ds.sem_nsems);
    if (!s.values.empty() && ::semctl(id, 0, GETALL, s.values.data()) != 0) return SysError("semctl(GETALL)").Within(Name("semaphore set", s.perm));
    out.push_back(std::move(s));
  }
  return {};
}

// For the life of the object, the calling thread's effective uid and gid
// are another's (raw syscalls: this thread only), and back after.
class AsCreator {
 public:
  AsCreator(uint32_t uid, uint32_t gid) {
    ::getresuid(&ruid_, &euid_, &suid_);
    ::getresgid(&rgid_, &egid_, &sgid_);
    if (gid != egid_ && ::syscall(SYS_setresgid, -1, gid, -1) != 0) {
      status_ = SysError("setresgid(-1, " + std::to_string(gid) + ", -1)");
      return;
    }
    if (uid != euid_ && ::syscall(SYS_setresuid, -1, uid, -1) != 0) status_ = SysError("setresuid(-1, " + std::to_string(uid) + ", -1)");
  }
  ~AsCreator() {
    // Back to root's effective ids: the uid first, for the right to set the gid.
    (void)::syscall(SYS_setresuid, -1, euid_, -1);
    (void)::syscall(SYS_setresgid, -1, egid_, -1);
  }
  AsCreator(const AsCreator&) = delete;
  AsCreator& operator=(const AsCreator&) = delete;
  const Status& status() const { return status_; }

 private:
  uid_t ruid_ = 0, euid_ = 0, suid_ = 0;
  gid_t rgid_ = 0, egid_ = 0, sgid_ = 0;
  Status status_;
};

// Makes one object as its creator with the id it had: `get` is the
// shmget/msgget/semget call, `set` its IPC_SET of owner and mode.
Status MakeWithId(int proc_dir, const char* next_id, const SysvPerm& perm, const std::function<int()>& get,
                  const std::function<int(int)>& set) {
  RO_TRY(WriteSysctls(proc_dir, {{next_id, std::to_string(perm.id)}}));
  AsCreator creator(perm.cuid, perm.cgid);
  RO_TRY(creator.status());
  int id = get();
  if (id < 0) return SysError("create it (key " + SysvKeyName(perm.key) + ")");
  if (id != perm.id) return Fail("took id " + std::to_string(id) + " (kernel/" + std::string(next_id).substr(7) + " was ignored)");
  if (set(id) != 0) return SysError("IPC_SET of its owner " + std::to_string(perm.uid) + ":" + std::to_string(perm.gid) + " and mode");
  return {};
}

// A sysctl of the calling thread's IPC namespace set to another value
// for a while: Restore() (or the destructor) writes the old one back.
class SysctlOverride {
 public:
  static Result<std::unique_ptr<SysctlOverride>> Set(const std::string& path, const std::string& value) {
    RO_ASSIGN_OR_RETURN(std::string old, ReadProcFile("/proc/sys/" + path));
    while (!old.empty() && old.back() == '\n') old.pop_back();
    RO_TRY(Write(path, value));
    return std::unique_ptr<SysctlOverride>(new SysctlOverride(path, old));
  }
  ~SysctlOverride() { (void)Restore(); }
  Status Restore() {
    if (done_) return {};
    done_ = true;
    return Write(path_, old_);
  }

 private:
  SysctlOverride(std::string path, std::string old) : path_(std::move(path)), old_(std::move(old)) {}
  static Status Write(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(("/proc/sys/" + path).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return SysError("write '" + text + "' to /proc/sys/" + path);
    }
    return {};
  }
  std::string path_, old_;
  bool done_ = false;
};

}  // namespace

std::string SysvKeyName(uint32_t key) { return fmt::format("{:#010x}", key); }

Result<SysvObjects> ReadSysvObjects(const SegmentReader& read_contents) {
  // Reading must not change the namespace: with kernel/shm_rmid_forced 1
  // the detach after reading a segment would destroy it (ipc/shm.c,
  // shm_may_destroy), so it is 0 meanwhile; MSG_COPY copies at most
  // kernel/msgmax bytes (ipc/msg.c, do_msgrcv), which may have been
  // lowered below a queued message's size, so it is raised meanwhile.
  RO_ASSIGN_OR_RETURN(std::string rmid, ReadProcFile("/proc/sys/kernel/shm_rmid_forced"));
  std::unique_ptr<SysctlOverride> keep_segments;
  if (rmid.rfind("0", 0) != 0) {
    RO_ASSIGN_OR_RETURN(keep_segments, SysctlOverride::Set("kernel/shm_rmid_forced", "0"));
  }
  std::unique_ptr<SysctlOverride> long_messages;
  RO_ASSIGN_OR_RETURN(long_messages, SysctlOverride::Set("kernel/msgmax", "2147483647"));
  SysvObjects out;
  Status read = ReadSegments(out.shm, read_contents);
  if (read.ok()) read = ReadQueues(out.msg);
  if (read.ok()) read = ReadSets(out.sem);
  Status back = long_messages->Restore();
  if (keep_segments) {
    Status b = keep_segments->Restore();
    if (back.ok()) back = std::move(b);
  }
  if (!read.ok()) return std::move(read).error();
  if (!back.ok()) return std::move(back).error();
  return out;
}

Status MakeShmSegment(int proc_dir, const SysvPerm& perm, uint64_t size, bool locked, const std::function<Status(char* base)>& fill) {
  auto get = [&] { return ::shmget(static_cast<key_t>(perm.key), size, IPC_CREAT | IPC_EXCL | 0600); };
  auto set = [&](int id) {
    shmid_ds ds {};
    ds.shm_perm.uid = perm.uid;
    ds.shm_perm.gid = perm.gid;
    ds.shm_perm.mode = static_cast<unsigned short>(perm.mode & 0777);
    return ::shmctl(id, IPC_SET, &ds);
  };
  Status s = MakeWithId(proc_dir, "kernel/shm_next_id", perm, get, set);
  if (s.ok()) {
    void* at = ::shmat(perm.id, nullptr, 0);
    if (at == reinterpret_cast<void*>(-1)) {
      s = SysError("shmat to write its contents");
    } else {
      s = fill(static_cast<char*>(at));
      if (::shmdt(at) != 0 && s.ok()) s = SysError("shmdt");
    }
  }
  if (s.ok() && locked && ::shmctl(perm.id, SHM_LOCK, nullptr) != 0) s = SysError("shmctl(SHM_LOCK)");
  if (!s.ok()) return std::move(s).error().Within(Name("shared memory segment", perm));
  return {};
}

Status MakeMsgQueue(int proc_dir, const SysvPerm& perm, uint64_t qbytes, const std::vector<SysvMessage>& messages) {
  auto fail = [&](Status s) { return std::move(s).error().Within(Name("message queue", perm)); };
  auto limit = ReadSysctl(proc_dir, "kernel/msgmnb");
  if (!limit.ok()) return fail(std::move(limit).error());
  // A new queue's msg_qbytes is the namespace's msgmnb (newque()).
  if (Status s = WriteSysctls(proc_dir, {{"kernel/msgmnb", std::to_string(qbytes)}}); !s.ok()) return fail(std::move(s));
  auto get = [&] { return ::msgget(static_cast<key_t>(perm.key), IPC_CREAT | IPC_EXCL | 0600); };
  auto set = [&](int id) {
    msqid_ds ds {};
    if (::msgctl(id, IPC_STAT, &ds) != 0) return -1;
    ds.msg_perm.uid = perm.uid;
    ds.msg_perm.gid = perm.gid;
    ds.msg_perm.mode = static_cast<unsigned short>(perm.mode & 0777);
    return ::msgctl(id, IPC_SET, &ds);
  };
  Status s = MakeWithId(proc_dir, "kernel/msg_next_id", perm, get, set);
  Status back = WriteSysctls(proc_dir, {{"kernel/msgmnb", *limit}});
  if (s.ok()) s = std::move(back);
  std::vector<char> buf;
  for (size_t i = 0; s.ok() && i < messages.size(); ++i) {
    const SysvMessage& m = messages[i];
    buf.assign(sizeof(long) + m.text.size(), 0);
    long mtype = static_cast<long>(m.mtype);
    std::memcpy(buf.data(), &mtype, sizeof(long));
    std::memcpy(buf.data() + sizeof(long), m.text.data(), m.text.size());
    if (::msgsnd(perm.id, buf.data(), m.text.size(), IPC_NOWAIT) != 0) s = SysError("msgsnd of message " + std::to_string(i));
  }
  if (!s.ok()) return fail(std::move(s));
  return {};
}

Status MakeSemSet(int proc_dir, const SysvPerm& perm, const std::vector<uint16_t>& values) {
  auto get = [&] { return ::semget(static_cast<key_t>(perm.key), static_cast<int>(values.size()), IPC_CREAT | IPC_EXCL | 0600); };
  auto set = [&](int id) {
    semid_ds ds {};
    ds.sem_perm.uid = perm.uid;
    ds.sem_perm.gid = perm.gid;
    ds.sem_perm.mode = static_cast<unsigned short>(perm.mode & 0777);
    return ::semctl(id, 0, IPC_SET, &ds);
  };
  Status s = MakeWithId(proc_dir, "kernel/sem_next_id", perm, get, set);
  std::vector<unsigned short> v(values.begin(), values.end());
  if (s.ok() && !v.empty() && ::semctl(perm.id, 0, SETALL, v.data()) != 0) s = SysError("semctl(SETALL)");
  if (!s.ok()) return std::move(s).error().Within(Name("semaphore set", perm));
  return {};
}

}  // namespace ro::sys

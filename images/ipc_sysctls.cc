#include "images/ipc_sysctls.h"

#include <charconv>
#include <climits>
#include <optional>
#include <set>
#include <tuple>
#include <sstream>

namespace ro::images {
namespace {

constexpr uint32_t kNone = 0xffffffffu;          // a *_next_id of -1
constexpr uint64_t kHardMsgMax = 65536;          // HARD_MSGMAX, include/linux/ipc_namespace.h
constexpr uint64_t kHardMsgSizeMax = 16u << 20;  // HARD_MSGSIZEMAX

// The numbers of a sysctl file ("250\t32000\t32\t128\n"); -1 (a next id
// not asked for) reads as kNone.
std::optional<std::vector<uint64_t>> Numbers(const std::string& text) {
  std::istringstream in(text);
  std::vector<uint64_t> out;
  for (std::string word; in >> word;) {
    if (word == "-1") {
      out.push_back(kNone);
      continue;
    }
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
    if (ec != std::errc() || end != word.data() + word.size()) return std::nullopt;
    out.push_back(v);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& IpcSysctlPaths() {
  static const std::vector<std::string> paths = {
      "kernel/sem",         "kernel/msgmax",         "kernel/msgmnb",       "kernel/msgmni",          "kernel/auto_msgmni",
      "kernel/shmmax",      "kernel/shmall",         "kernel/shmmni",       "kernel/shm_rmid_forced", "fs/mqueue/queues_max",
      "fs/mqueue/msg_max",  "fs/mqueue/msgsize_max", "fs/mqueue/msg_default", "fs/mqueue/msgsize_default",
      "kernel/msg_next_id", "kernel/sem_next_id",    "kernel/shm_next_id"};
  return paths;
}

Result<img::ipc_var_entry> IpcVarFromSysctls(const std::map<std::string, std::string>& text) {
  // What a kernel may lack (CONFIG_CHECKPOINT_RESTORE's next ids, the
  // mqueue defaults of Linux 3.5 on): left out of the entry, as CRIU does.
  static const std::set<std::string> kOptional = {"fs/mqueue/msg_default", "fs/mqueue/msgsize_default", "kernel/msg_next_id",
                                                  "kernel/sem_next_id", "kernel/shm_next_id"};
  std::map<std::string, std::vector<uint64_t>> v;
  for (const std::string& path : IpcSysctlPaths()) {
    auto it = text.find(path);
    if (it == text.end() && kOptional.count(path)) continue;
    if (it == text.end()) return Fail("/proc/sys/" + path + ": not read");
    auto numbers = Numbers(it->second);
    size_t want = path == "kernel/sem" ? 4 : 1;
    if (!numbers || numbers->size() != want) return Fail("/proc/sys/" + path + ": not " + std::to_string(want) + " number(s): '" + it->second + "'");
    v[path] = *numbers;
  }
  auto u32 = [&](const char* path) { return static_cast<uint32_t>(v[path][0]); };
  img::ipc_var_entry e;
  for (uint64_t s : v["kernel/sem"]) e.add_sem_ctls(static_cast<uint32_t>(s));
  e.set_msg_ctlmax(u32("kernel/msgmax"));
  e.set_msg_ctlmnb(u32("kernel/msgmnb"));
  e.set_msg_ctlmni(u32("kernel/msgmni"));
  e.set_auto_msgmni(u32("kernel/auto_msgmni"));
  e.set_shm_ctlmax(v["kernel/shmmax"][0]);
  e.set_shm_ctlall(v["kernel/shmall"][0]);
  e.set_shm_ctlmni(u32("kernel/shmmni"));
  e.set_shm_rmid_forced(u32("kernel/shm_rmid_forced"));
  e.set_mq_queues_max(u32("fs/mqueue/queues_max"));
  e.set_mq_msg_max(u32("fs/mqueue/msg_max"));
  e.set_mq_msgsize_max(u32("fs/mqueue/msgsize_max"));
  if (v.count("fs/mqueue/msg_default")) e.set_mq_msg_default(u32("fs/mqueue/msg_default"));
  if (v.count("fs/mqueue/msgsize_default")) e.set_mq_msgsize_default(u32("fs/mqueue/msgsize_default"));
  // -1 (no id asked for) is left out: CRIU writes every next id it has,
  // and the kernel refuses -1 written back.
  if (v.count("kernel/msg_next_id") && u32("kernel/msg_next_id") != kNone) e.set_msg_next_id(u32("kernel/msg_next_id"));
  if (v.count("kernel/sem_next_id") && u32("kernel/sem_next_id") != kNone) e.set_sem_next_id(u32("kernel/sem_next_id"));
  if (v.count("kernel/shm_next_id") && u32("kernel/shm_next_id") != kNone) e.set_shm_next_id(u32("kernel/shm_next_id"));
  return e;
}

std::vector<std::pair<std::string, std::string>> IpcSysctlsToWrite(const img::ipc_var_entry& e) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const char* path, uint64_t value) { out.emplace_back(path, std::to_string(value)); };
  std::string sem;
  for (uint32_t s : e.sem_ctls()) sem += (sem.empty() ? "" : " ") + std::to_string(s);
  out.emplace_back("kernel/sem", sem);
  add("kernel/msgmax", e.msg_ctlmax());
  add("kernel/msgmnb", e.msg_ctlmnb());
  add("kernel/msgmni", e.msg_ctlmni());
  add("kernel/shmmax", e.shm_ctlmax());
  add("kernel/shmall", e.shm_ctlall());
  add("kernel/shmmni", e.shm_ctlmni());
  add("kernel/shm_rmid_forced", e.shm_rmid_forced());
  add("fs/mqueue/queues_max", e.mq_queues_max());
  add("fs/mqueue/msg_max", e.mq_msg_max());
  add("fs/mqueue/msgsize_max", e.mq_msgsize_max());
  if (e.has_mq_msg_default()) add("fs/mqueue/msg_default", e.mq_msg_default());
  if (e.has_mq_msgsize_default()) add("fs/mqueue/msgsize_default", e.mq_msgsize_default());
  if (e.has_msg_next_id() && e.msg_next_id() != kNone) add("kernel/msg_next_id", e.msg_next_id());
  if (e.has_sem_next_id() && e.sem_next_id() != kNone) add("kernel/sem_next_id", e.sem_next_id());
  if (e.has_shm_next_id() && e.shm_next_id() != kNone) add("kernel/shm_next_id", e.shm_next_id());
  return out;
}

std::vector<std::string> IpcVarProblems(const img::ipc_var_entry& e) {
  std::vector<std::string> out;
  auto within = [&](const char* field, uint64_t value, uint64_t lo, uint64_t hi) {
    if (value < lo || value > hi) {
      out.push_back(std::string(field) + " " + std::to_string(value) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    }
  };
  if (e.sem_ctls_size() != 4) out.push_back("sem_ctls holds " + std::to_string(e.sem_ctls_size()) + " values, not 4 (semmsl semmns semopm semmni)");
  for (int i = 0; i < e.sem_ctls_size(); ++i) within("a sem_ctls value", e.sem_ctls(i), 0, INT_MAX);
  within("shm_rmid_forced", e.shm_rmid_forced(), 0, 1);
  within("auto_msgmni", e.auto_msgmni(), 0, 1);
  within("msg_ctlmax", e.msg_ctlmax(), 0, INT_MAX);
  within("msg_ctlmnb", e.msg_ctlmnb(), 0, INT_MAX);
  within("msg_ctlmni", e.msg_ctlmni(), 0, INT_MAX);
  within("shm_ctlmni", e.shm_ctlmni(), 0, INT_MAX);
  within("mq_queues_max", e.mq_queues_max(), 0, INT_MAX);
  within("mq_msg_max", e.mq_msg_max(), 1, kHardMsgMax);
  within("mq_msgsize_max", e.mq_msgsize_max(), 128, kHardMsgSizeMax);
  if (e.has_mq_msg_default()) within("mq_msg_default", e.mq_msg_default(), 1, kHardMsgMax);
  if (e.has_mq_msgsize_default()) within("mq_msgsize_default", e.mq_msgsize_default(), 128, kHardMsgSizeMax);
  for (auto [field, has, value] : {std::tuple{"msg_next_id", e.has_msg_next_id(), e.msg_next_id()},
                                   std::tuple{"sem_next_id", e.has_sem_next_id(), e.sem_next_id()},
                                   std::tuple{"shm_next_id", e.has_shm_next_id(), e.shm_next_id()}}) {
    if (has && value != kNone) within(field, value, 0, INT_MAX);
  }
  return out;
}

}  // namespace ro::images

// A port of the snapshot() of the CRIU fixtures' make.sh (Python there),
// line for line where the output depends on it: the same walks, the same
// orders, the same spellings (Python's "None", oct(), repr()).
#include "test/helpers/tree_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

namespace ro::test {
namespace {

using Fields = std::vector<std::string>;

std::string Str(long long v) { return std::to_string(v); }

std::optional<std::string> ReadWhole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Python's os.readlink, "None" when it fails (make.sh prints rl()'s None).
std::string ReadLinkOrNone(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "None" : std::string(buf, static_cast<size_t>(n));
}

Fields SplitWs(const std::string& s) {
  Fields out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string Strip(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\n\r\f\v");
  return s.substr(b, e - b + 1);
}

// "k: v" lines: v stripped (fdinfo) or split (status), by partition(':').
std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& l : Lines(text)) {
    size_t c = l.find(':');
    if (c == std::string::npos) {
      out[l] = "";
    } else {
      out[l.substr(0, c)] = l.substr(c + 1);
    }
  }
  return out;
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.push_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Oct(unsigned long long v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llo", v);
  return buf;
}

// Python's oct(): 0o755, 0o0.
std::string PyOct(unsigned long long v) { return "0o" + Oct(v); }

struct Task {
  std::map<std::string, Fields> status;
  const std::string& Last(const std::string& key) const {
    static const std::string kNone = "None";
    auto it = status.find(key);
    return it == status.end() || it->second.empty() ? kNone : it->second.back();
  }
  std::string First(const std::string& key) const {
    auto it = status.find(key);
    return it == status.end() || it->second.empty() ? "None" : it->second.front();
  }
};

struct Fd {
  pid_t host;
  int fd;
  std::string kind;
};

// The key of a pipe or FIFO object: (kind, dev, ino, target).
using ObjKey = std::tuple<std::string, dev_t, ino_t, std::string>;

}  // namespace

std::string SnapshotTree(pid_t root) {
  std::ostringstream o;
  const std::string proc = "/proc/";

  // ---- tasks: every task below root through /proc/PID/task/*/children
  std::map<pid_t, Task> tasks;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t h = todo.back();
    todo.pop_back();
    if (tasks.count(h)) continue;
    auto st = ReadWhole(proc + Str(h) + "/status");
    if (!st) continue;
    Task t;
    for (const auto& [k, v] : KeyValues(*st)) t.status[k] = SplitWs(v);
    tasks[h] = std::move(t);
    for (const std::string& tid : ListDir(proc + Str(h) + "/task")) {
      auto kids = ReadWhole(proc + Str(h) + "/task/" + tid + "/children");
      if (!kids) continue;
      for (const std::string& k : SplitWs(*kids)) todo.push_back(static_cast<pid_t>(std::stol(k)));
    }
  }
  std::map<pid_t, long> ns;  // host pid -> pid in the tree's namespace
  for (const auto& [h, t] : tasks) {
    const std::string& v = t.Last("NSpid");
    ns[h] = v == "None" ? -1 : std::stol(v);
  }
  std::vector<pid_t> order;
  for (const auto& [h, t] : tasks) order.push_back(h);
  std::stable_sort(order.begin(), order.end(), [&](pid_t a, pid_t b) { return ns[a] < ns[b]; });
  std::vector<pid_t> live;
  for (pid_t h : order) {
    if (tasks[h].First("State")[0] != 'Z') live.push_back(h);
  }

  o << "[tasks] ns pid, ppid, pgid, sid, state, comm, threads, cwd and root (zombies: exit status)\n";
  for (pid_t h : order) {
    const Task& st = tasks[h];
    long ppid = 0;
    if (st.First("PPid") != "None") {
      auto it = ns.find(static_cast<pid_t>(std::stol(st.First("PPid"))));
      if (it != ns.end()) ppid = it->second;
    }
    std::string comm = Strip(ReadWhole(proc + Str(h) + "/comm").value_or(""));
    std::string head = "pid=" + Str(ns[h]) + " ppid=" + Str(ppid) + " pgid=" + st.Last("NSpgid") + " sid=" + st.Last("NSsid");
    if (st.First("State")[0] == 'Z') {
      std::string stat = ReadWhole(proc + Str(h) + "/stat").value_or("");
      size_t paren = stat.rfind(')');
      Fields f = SplitWs(paren == std::string::npos ? "" : stat.substr(paren + 1));
      long code = f.size() > 49 ? std::stol(f[49]) : -1;
      o << head << " state=Z comm=" << comm << " exit_code=" << (code >> 8) << " (wait status " << code << ")\n";
    } else {
      o << head << " state=" << st.First("State")[0] << " comm=" << comm << " threads=" << st.First("Threads")
        << " cwd=" << ReadLinkOrNone(proc + Str(h) + "/cwd") << " root=" << ReadLinkOrNone(proc + Str(h) + "/root") << "\n";
    }
  }

  // ---- fds
  const std::string mountinfo = ReadWhole(proc + Str(root) + "/mountinfo").value_or("");
  const std::vector<std::string> lines = Lines(mountinfo);
  std::map<std::string, std::string> mnts;  // mount id -> mount point
  for (const std::string& l : lines) {
    Fields f = SplitWs(l);
    if (f.size() > 4) mnts[f[0]] = f[4];
  }
  static const std::pair<unsigned, const char*> kFlags[] = {
      {02000, "O_APPEND"},        {04000, "O_NONBLOCK"},     {040000, "O_DIRECT"},
      {0100000, "O_LARGEFILE"},   {02000000, "O_CLOEXEC"},   {0200000, "O_DIRECTORY"},
      {0400000, "O_NOFOLLOW"},    {01000, "O_TRUNC"},        {0100, "O_CREAT"}};
  o << "\n[fds] pid:fd kind target access flags(octal, from fdinfo) pos mount\n";
  std::vector<Fd> fds;
  std::vector<ObjKey> obj_order;
  std::map<ObjKey, std::vector<std::string>> objs;
  std::map<std::pair<dev_t, ino_t>, std::string> pipe_label;
  for (pid_t h : live) {
    std::vector<int> numbers;
    for (const std::string& n : ListDir(proc + Str(h) + "/fd")) numbers.push_back(std::stoi(n));
    std::sort(numbers.begin(), numbers.end());
    for (int fd : numbers) {
      std::string p = proc + Str(h) + "/fd/" + Str(fd);
      std::string link = ReadLinkOrNone(p);
      std::map<std::string, std::string> info;
      for (const auto& [k, v] : KeyValues(ReadWhole(proc + Str(h) + "/fdinfo/" + Str(fd)).value_or(""))) info[k] = Strip(v);
      struct stat s {};
      if (::stat(p.c_str(), &s) != 0) std::memset(&s, 0, sizeof(s));
      unsigned fl = static_cast<unsigned>(std::stoul(info.count("flags") ? info["flags"] : "0", nullptr, 8));
      std::string kind, target;
      if (link.rfind("pipe:", 0) == 0) {
        kind = "pipe";
        auto key = std::make_pair(s.st_dev, s.st_ino);
        if (!pipe_label.count(key)) pipe_label[key] = "pipe#" + Str(static_cast<long long>(pipe_label.size()) + 1);
        target = pipe_label[key];
      } else if (S_ISFIFO(s.st_mode)) {
        kind = "fifo", target = link;
      } else if (S_ISREG(s.st_mode)) {
        kind = "reg", target = link;
      } else if (S_ISDIR(s.st_mode)) {
        kind = "dir", target = link;
      } else if (S_ISCHR(s.st_mode)) {
        kind = "chr(" + Str(major(s.st_rdev)) + "," + Str(minor(s.st_rdev)) + ")", target = link;
      } else {
        kind = "other", target = link;
      }
      static const char* kAcc[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "?"};
      std::string acc = kAcc[fl & 3];
      std::string names;
      for (const auto& [bit, name] : kFlags) {
        if (fl & bit) names += (names.empty() ? "" : "|") + std::string(name);
      }
      std::string mp = kind == "pipe" ? "(pipefs)" : (info.count("mnt_id") && mnts.count(info["mnt_id"]) ? mnts[info["mnt_id"]] : "?");
      std::string pos = info.count("pos") ? info["pos"] : "-";
      o << ns[h] << ":" << fd << " " << kind << " " << target << " " << acc << " flags=0" << Oct(fl) << "("
        << (names.empty() ? "-" : names) << ") pos=" << pos << " mnt=" << mp << "\n";
      fds.push_back({h, fd, kind});
      if (kind == "pipe" || kind == "fifo") {
        ObjKey key{kind, s.st_dev, s.st_ino, target};
        if (!objs.count(key)) obj_order.push_back(key);
        objs[key].push_back(Str(ns[h]) + ":" + Str(fd) + "(" + (acc == "O_RDONLY" ? "r" : acc == "O_WRONLY" ? "w" : "rw") + ")");
      }
    }
  }

  // ---- open file descriptions: grouped by kcmp(KCMP_FILE) with each
  // group's first fd, in the order of the fds above
  std::vector<std::vector<Fd>> groups;
  for (const Fd& x : fds) {
    bool placed = false;
    for (auto& g : groups) {
      const Fd& y = g[0];
      if (::syscall(SYS_kcmp, x.host, y.host, 0 /* KCMP_FILE */, x.fd, y.fd) == 0) {
        g.push_back(x);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({x});
  }
  o << "\n[open file descriptions shared by several fds] (kcmp KCMP_FILE)\n";
  for (const auto& g : groups) {
    if (g.size() < 2) continue;
    std::string l;
    for (const Fd& x : g) l += (l.empty() ? "" : " ") + Str(ns[x.host]) + ":" + Str(x.fd);
    o << l << "\n";
  }

  // ---- pipes and FIFOs: bytes queued, by FIONREAD on a fresh open of the
  // first fd on each (nothing is consumed)
  o << "\n[pipes and FIFOs] object, fds on it, bytes queued (FIONREAD)\n";
  for (const ObjKey& key : obj_order) {
    const auto& [kind, dev, ino, target] = key;
    std::string queued = "?";
    for (const Fd& f : fds) {
      if (f.kind != kind) continue;
      std::string p = proc + Str(f.host) + "/fd/" + Str(f.fd);
      struct stat s {};
      if (::stat(p.c_str(), &s) != 0 || s.st_dev != dev || s.st_ino != ino) continue;
      int q = ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      int n = 0;
      if (q >= 0 && ::ioctl(q, FIONREAD, &n) == 0) queued = Str(n);
      if (q >= 0) ::close(q);
      break;
    }
    std::string members;
    for (const std::string& m : objs[key]) members += (members.empty() ? "" : " ") + m;
    o << kind << " " << target << " fds=" << members << " queued=" << queued << "\n";
  }

  // ---- mountinfo, normalized
  std::map<std::string, Fields> byid;
  for (const std::string& l : lines) {
    Fields f = SplitWs(l);
    if (!f.empty()) byid[f[0]] = f;
  }
  auto depth = [&](Fields f) {
    int d = 0;
    while (byid.count(f[1]) && byid[f[1]][4] == f[4] && d < 50) {
      ++d;
      f = byid[f[1]];
    }
    return d;
  };
  std::vector<std::tuple<std::string, int, Fields>> rows;
  for (const std::string& l : lines) {
    Fields f = SplitWs(l);
    if (f.size() < 10) continue;
    rows.emplace_back(f[4], depth(f), f);
  }
  std::sort(rows.begin(), rows.end());
  std::map<std::string, int> group_ids;
  std::map<pid_t, long> host2ns = ns;
  o << "\n[mountinfo] mountpoint depth parent root mount-options tags - fstype source super-options\n";
  o << "  (normalized: sorted, parent by mount point, group ids renumbered, autofs pgrp= in ns pids, pipe_ino= as a pipe label)\n";
  auto sep_of = [](const Fields& f) { return static_cast<size_t>(std::find(f.begin(), f.end(), "-") - f.begin()); };
  for (const auto& [mp, d, f] : rows) {
    size_t sep = sep_of(f);
    std::string tags;
    for (size_t i = 6; i < sep; ++i) {
      const std::string& t = f[i];
      size_t c = t.find(':');
      std::string tag = t;
      if (c != std::string::npos && c + 1 < t.size()) {
        std::string v = t.substr(c + 1);
        if (!group_ids.count(v)) group_ids[v] = static_cast<int>(group_ids.size()) + 1;
        tag = t.substr(0, c) + ":" + Str(group_ids[v]);
      }
      tags += (tags.empty() ? "" : " ") + tag;
    }
    const std::string& fstype = f[sep + 1];
    const std::string& src = f[sep + 2];
    std::string sopts = f[sep + 3];
    if (fstype == "autofs") {
      std::string out;
      std::istringstream in(sopts);
      for (std::string kv; std::getline(in, kv, ',');) {
        size_t eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (k == "pgrp") {
          auto it = host2ns.find(static_cast<pid_t>(std::stol(v)));
          kv = "pgrp=" + (it != host2ns.end() ? Str(it->second) : "outside:" + v);
        } else if (k == "pipe_ino") {
          std::string lab;
          for (const ObjKey& key : obj_order) {
            if (std::get<0>(key) == "pipe" && std::to_string(std::get<2>(key)) == v) {
              lab = std::get<3>(key);
              break;
            }
          }
          kv = "pipe_ino=(" + (lab.empty() ? std::string("a pipe no task holds") : lab) + ")";
        }
        out += (out.empty() ? "" : ",") + kv;
      }
      sopts = out;
    }
    std::string parent = byid.count(f[1]) ? byid[f[1]][4] : "(outside)";
    o << mp << " depth=" << d << " parent=" << parent << " root=" << f[3] << " " << f[5] << " " << (tags.empty() ? "-" : tags)
      << " - " << fstype << " " << src << " " << sopts << "\n";
  }

  // ---- AutoFS: owner, which ends of its pipe the owner holds
  bool any_autofs = false;
  for (const auto& [mp, d, f] : rows) {
    size_t sep = sep_of(f);
    if (f[sep + 1] != "autofs") continue;
    if (!any_autofs) {
      o << "\n[autofs] mountpoint type timeout owner(ns pid) owner-is-group-leader owner-fds-on-the-pipe write-end\n";
      any_autofs = true;
    }
    std::map<std::string, std::string> opt;
    std::istringstream in(f[sep + 3]);
    for (std::string kv; std::getline(in, kv, ',');) {
      size_t eq = kv.find('=');
      opt[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
    auto get = [&](const std::string& k) { return opt.count(k) ? opt[k] : std::string("None"); };
    std::string kind = opt.count("direct") ? "direct" : (opt.count("offset") ? "offset" : "indirect");
    if (get("fd") == "-1") {
      o << f[4] << " " << kind << " timeout=" << get("timeout") << " catatonic\n";
      continue;
    }
    pid_t owner = static_cast<pid_t>(std::stol(opt.count("pgrp") ? opt["pgrp"] : "0"));
    std::vector<std::string> held;
    if (tasks.count(owner)) {
      for (const Fd& x : fds) {
        if (x.host != owner || x.kind != "pipe") continue;
        struct stat s {};
        std::string p = proc + Str(x.host) + "/fd/" + Str(x.fd);
        if (::stat(p.c_str(), &s) == 0 && std::to_string(s.st_ino) == get("pipe_ino")) {
          auto info = KeyValues(ReadWhole(proc + Str(x.host) + "/fdinfo/" + Str(x.fd)).value_or(""));
          unsigned fl = static_cast<unsigned>(std::stoul(Strip(info["flags"]).empty() ? "0" : Strip(info["flags"]), nullptr, 8));
          held.push_back(Str(x.fd) + ((fl & 3) == 0 ? "r" : "w"));
        }
      }
    }
    std::string wr = std::find(held.begin(), held.end(), get("fd") + "w") != held.end()
                         ? "kept at fd=" + get("fd")
                         : "closed (mount option fd=" + get("fd") + ")";
    bool leader = tasks.count(owner) && tasks[owner].Last("NSpgid") == Str(ns[owner]);
    std::string holds;
    for (const std::string& x : held) holds += (holds.empty() ? "" : ",") + x;
    o << f[4] << " " << kind << " timeout=" << get("timeout") << " owner=" << (ns.count(owner) ? Str(ns[owner]) : "outside")
      << " leader=" << (leader ? "yes" : "no") << " holds=" << (holds.empty() ? "none" : holds) << " write-end=" << wr
      << " proto=" << get("minproto") << "-" << get("maxproto") << "\n";
  }

  // ---- tmpfs contents: every tmpfs reachable by its path, in mountinfo's
  // order (the first mount on a path: the path reaches the one on top)
  o << "\n[tmpfs contents] as reached by path (a covered mount shows the mount on top)\n";
  std::set<std::string> seen;
  for (const std::string& l : lines) {
    Fields f = SplitWs(l);
    size_t sep = sep_of(f);
    if (sep + 1 >= f.size() || f[sep + 1] != "tmpfs" || seen.count(f[4])) continue;
    seen.insert(f[4]);
    const std::string& mp = f[4];
    std::string start = proc + Str(root) + "/root" + (mp != "/" ? mp : "");
    struct stat top {};
    if (::lstat((start + "/").c_str(), &top) != 0) std::memset(&top, 0, sizeof(top));
    std::vector<std::string> stack{""};
    std::vector<std::string> out;
    while (!stack.empty()) {
      std::string rel = stack.back();
      stack.pop_back();
      std::string dir = start + rel;
      for (const std::string& n : ListDir(dir + "/")) {
        std::string p = dir + "/" + n;
        struct stat s {};
        if (::lstat(p.c_str(), &s) != 0) {
          out.push_back("  " + rel + "/" + n + " (lstat failed: " + std::strerror(errno) + ")");
          continue;
        }
        if (s.st_dev != top.st_dev) {
          out.push_back("  " + rel + "/" + n + " (mountpoint)");
          continue;
        }
        std::string mode = PyOct(s.st_mode & 07777);
        if (S_ISDIR(s.st_mode)) {
          out.push_back("  " + rel + "/" + n + "/ dir " + mode);
          stack.push_back(rel + "/" + n);
        } else if (S_ISREG(s.st_mode)) {
          std::string data = ReadWhole(p).value_or("");
          std::string txt = data.size() <= 60 && data.find('\0') == std::string::npos ? PyReprLatin1(data) : "md5=" + Md5Hex(data);
          out.push_back("  " + rel + "/" + n + " reg " + mode + " size=" + Str(s.st_size) + " " + txt);
        } else if (S_ISFIFO(s.st_mode)) {
          out.push_back("  " + rel + "/" + n + " fifo " + mode);
        } else if (S_ISLNK(s.st_mode)) {
          out.push_back("  " + rel + "/" + n + " symlink -> " + ReadLinkOrNone(p));
        } else if (S_ISCHR(s.st_mode)) {
          out.push_back("  " + rel + "/" + n + " chr " + Str(major(s.st_rdev)) + "," + Str(minor(s.st_rdev)) + " " + mode);
        } else {
          out.push_back("  " + rel + "/" + n + " other " + PyOct(s.st_mode));
        }
      }
    }
    std::sort(out.begin(), out.end());
    o << "tmpfs at " << mp << ":\n";
    if (out.empty()) o << "  (empty)\n";
    for (const std::string& x : out) o << x << "\n";
  }
  return o.str();
}

Sections ParseSections(const std::string& text) {
  Sections s;
  std::string cur;
  for (const std::string& line : Lines(text)) {
    if (!line.empty() && line[0] == '[') {
      cur = line.substr(0, line.find(']')) + "]";
      if (!s.lines.count(cur)) s.names.push_back(cur);
      s.lines[cur].clear();
    } else if (!cur.empty() && !Strip(line).empty() && line.rfind("  (normalized", 0) != 0) {
      s.lines[cur].push_back(line);
    }
  }
  return s;
}

std::string PyReprLatin1(const std::string& data) {
  bool has_single = data.find('\'') != std::string::npos;
  bool has_double = data.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : data) {
    char buf[8];
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0xa0) || c == 0xad) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {  // U+00A1..U+00FF, printable: UTF-8
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  out += quote;
  return out;
}

// RFC 1321.
std::string Md5Hex(const std::string& data) {
  static const uint32_t kK[64] = {
      0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
      0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
      0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
      0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
      0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
      0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
      0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
      0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
  static const int kR[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9,  14, 20, 5, 9,
                             14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                             4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
  uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  std::string msg = data;
  uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  msg += static_cast<char>(0x80);
  while (msg.size() % 64 != 56) msg += '\0';
  for (int i = 0; i < 8; ++i) msg += static_cast<char>((bits >> (8 * i)) & 0xff);
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + off + 4 * i);
      w[i] = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; ++i) {
      uint32_t f;
      int g;
      if (i < 16) {
        f = (b & c) | (~b & d), g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d, g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d), g = (7 * i) % 16;
      }
      uint32_t t = d;
      d = c;
      c = b;
      uint32_t x = a + f + kK[i] + w[g];
      b = b + ((x << kR[i]) | (x >> (32 - kR[i])));
      a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
  }
  std::string out;
  char buf[3];
  for (uint32_t v : h) {
    for (int i = 0; i < 4; ++i) {
      std::snprintf(buf, sizeof(buf), "%02x", (v >> (8 * i)) & 0xff);
      out += buf;
    }
  }
  return out;
}

}  // namespace ro::test

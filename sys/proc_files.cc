#include "sys/proc_files.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>

#include "sys/proc.h"

namespace ro::sys {

Result<std::vector<FdEntry>> ReadFdTable(pid_t outer) {
  std::string base = "/proc/" + std::to_string(outer) + "/";
  std::vector<int> numbers;
  DIR* d = ::opendir((base + "fd").c_str());
  if (d == nullptr) return SysError("opendir " + base + "fd");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') numbers.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  std::sort(numbers.begin(), numbers.end());
  std::vector<FdEntry> out;
  out.reserve(numbers.size());
  for (int n : numbers) {
    FdEntry f;
    f.fd = n;
    std::string link = base + "fd/" + std::to_string(n);
    auto target = ReadProcLink(link);
    if (!target.ok() && target.error().err == ENOENT) continue;  // closed meanwhile
    if (!target.ok()) return std::move(target).error();
    f.target = std::move(target).value();
    if (::stat(link.c_str(), &f.st) != 0) return SysError("stat " + link);
    RO_ASSIGN_OR_RETURN(std::string info_text, ReadProcFile(base + "fdinfo/" + std::to_string(n)));
    auto info = ParseFdInfo(info_text);
    if (!info.ok()) return std::move(info).error().Within(base + "fdinfo/" + std::to_string(n));
    f.flags = info->flags;
    f.pos = info->pos;
    f.mnt_id = info->mnt_id;
    f.locks = std::move(info->locks);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ro::sys

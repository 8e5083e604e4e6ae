#include "sys/proc_maps.h"

#include <cstdlib>
#include <sstream>

#include "sys/proc.h"

namespace ro::sys {

Result<std::vector<MapsEntry>> ParseMaps(const std::string& text) {
  std::vector<MapsEntry> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    MapsEntry e;
    char* p = nullptr;
    e.start = std::strtoull(line.c_str(), &p, 16);
    if (*p != '-') return Fail("maps line \"" + line + "\": no range");
    e.end = std::strtoull(p + 1, &p, 16);
    std::istringstream fields(p);
    std::string offset, dev;
    fields >> e.perms >> offset >> dev >> e.inode;
    if (e.perms.size() != 4 || offset.empty() || dev.empty()) return Fail("maps line \"" + line + "\": malformed");
    if (e.end <= e.start || e.start % 4096 != 0 || e.end % 4096 != 0) {
      return Fail("maps line \"" + line + "\": not a page-aligned range");
    }
    e.offset = std::strtoull(offset.c_str(), nullptr, 16);
    std::string rest;
    std::getline(fields, rest);
    size_t first = rest.find_first_not_of(' ');
    e.path = first == std::string::npos ? "" : rest.substr(first);
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<MapsEntry>> ReadMaps(pid_t pid) {
  RO_ASSIGN_OR_RETURN(std::string text, ReadProcFile("/proc/" + std::to_string(pid) + "/maps"));
  return ParseMaps(text);
}

}  // namespace ro::sys

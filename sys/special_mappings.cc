#include "sys/special_mappings.h"

#include <charconv>
#include <sstream>

#include "sys/proc.h"

namespace ro::sys {

Result<std::vector<SpecialMapping>> ParseSpecialMappings(const std::string& maps) {
  std::vector<SpecialMapping> out;
  std::istringstream in(maps);
  for (std::string line; std::getline(in, line);) {
    size_t open = line.rfind('[');
    if (open == std::string::npos || line.back() != ']') continue;
    std::string name = line.substr(open);
    if (name != "[vdso]" && name != "[vvar]" && name != "[vvar_vclock]") continue;
    SpecialMapping m;
    m.name = name;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    auto first = std::from_chars(p, end, m.start, 16);
    if (first.ec != std::errc() || first.ptr == end || *first.ptr != '-') return Fail("maps line \"" + line + "\": no range");
    auto second = std::from_chars(first.ptr + 1, end, m.end, 16);
    if (second.ec != std::errc() || m.end <= m.start) return Fail("maps line \"" + line + "\": no range");
    out.push_back(m);
  }
  return out;
}

Result<std::vector<SpecialMapping>> ReadSpecialMappings() {
  RO_ASSIGN_OR_RETURN(std::string text, ReadProcFile("/proc/self/maps"));
  return ParseSpecialMappings(text);
}

const SpecialLayout& HostSpecialLayout() {
  static const SpecialLayout layout = [] {
    SpecialLayout l;
    auto have = ReadSpecialMappings();
    if (!have.ok()) return l;
    l.known = true;
    uint64_t vvar_start = 0, vdso_start = 0;
    for (const SpecialMapping& m : *have) {
      if (m.name == "[vdso]") {
        vdso_start = m.start;
        l.vdso_size = m.end - m.start;
      } else {
        if (l.vvar_size == 0) vvar_start = m.start;
        l.vvar_size = m.end - vvar_start;
      }
    }
    if (l.vdso_size != 0 && l.vvar_size != 0) l.vdso_offset = static_cast<int64_t>(vdso_start - vvar_start);
    return l;
  }();
  return layout;
}

}  // namespace ro::sys

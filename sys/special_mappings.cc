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

}  // namespace ro::sys

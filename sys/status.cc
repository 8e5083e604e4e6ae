#include "sys/status.h"

#include <cstring>

namespace ro {

std::string Error::ToString() const {
  std::string out = context;
  if (!what.empty()) {
    if (!out.empty()) out += ": ";
    out += what;
  }
  if (err != 0) {
    out += ": ";
    out += std::strerror(err);
  }
  return out;
}

Error& Error::Within(std::string_view outer) {
  if (context.empty()) {
    context = std::string(outer);
  } else {
    context = std::string(outer) + ": " + context;
  }
  return *this;
}

Error SysError(std::string what) { return SysError(std::move(what), errno); }

Error SysError(std::string what, int err) { return Error{std::move(what), err, {}}; }

Error Fail(std::string what) { return Error{std::move(what), 0, {}}; }

}  // namespace ro

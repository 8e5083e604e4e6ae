// The command line's value checks (see cli_values.h).
#include "orchestrator/cli_values.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace ro::cli {

CLI::Validator Seconds() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        double v = std::strtod(s.c_str(), &end);
        bool number = !s.empty() && end != s.c_str() && *end == '\0' && errno == 0 && std::isfinite(v);
        if (!number || v <= 0 || v > 1e6) {
          return "expected a number of seconds greater than 0 and at most 1000000 (like 30 or 0.5), got '" + s + "'";
        }
        return {};
      },
      "");
}

CLI::Validator ProcessId() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        bool digits = !s.empty() && s.size() <= 7 && s.find_first_not_of("0123456789") == std::string::npos;
        long v = digits ? std::strtol(s.c_str(), nullptr, 10) : 0;
        if (v < 1 || v > 4194303) return "expected a process id (a number from 1 to 4194303), got '" + s + "'";
        return {};
      },
      "");
}

CLI::Validator LogLevel() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s.size() != 1 || s[0] < '0' || s[0] > '4') return "expected a level from 0 to 4 (as CRIU's -v0 .. -v4), got '" + s + "'";
        return {};
      },
      "");
}

CLI::Validator ExistingDir() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (::stat(s.c_str(), &st) != 0) return "no such directory: '" + s + "'";
        if (!S_ISDIR(st.st_mode)) return "'" + s + "' is not a directory";
        return {};
      },
      "");
}

CLI::Validator Executable() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (::stat(s.c_str(), &st) != 0) return "no such file: '" + s + "'";
        if (!S_ISREG(st.st_mode) || ::access(s.c_str(), X_OK) != 0) return "'" + s + "' is not an executable file";
        return {};
      },
      "");
}

CLI::Validator OneOf(std::vector<std::string> values) {
  return CLI::Validator(
      [values](std::string& s) -> std::string {
        for (const std::string& v : values) {
          if (s == v) return {};
        }
        std::string list;
        for (const std::string& v : values) list += (list.empty() ? "" : ", ") + v;
        return "expected one of " + list + ", got '" + s + "'";
      },
      "");
}

}  // namespace ro::cli

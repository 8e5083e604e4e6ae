// One logging facade: every line carries time, pid and the current stage,
// and goes out with a single write(2) so lines from forked tasks never mix.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "sys/status.h"

namespace ro::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void SetLevel(Level level);
Level GetLevel();
// Sends lines to this fd (default 2). The caller keeps the fd open.
void SetSink(int fd);
int GetSink();
// The stage name put on each line ("plan", "mounts", ...).
void SetStage(std::string_view stage);
// While true, each line starts by erasing the terminal line it lands on
// ("\r", erase to end of line): a progress line (sys/progress.h) shown
// there. Forked tasks inherit the setting.
void SetClearsLine(bool clears);

void Write(Level level, std::string_view message);

template <class... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLevel() >= Level::kWarn) Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLevel() >= Level::kInfo) Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLevel() >= Level::kDebug) Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ro::log

#include "sys/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace ro::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kWarn)};
std::atomic<int> g_sink{2};
std::atomic<bool> g_clears_line{false};
char g_stage[32] = "main";

char LevelChar(Level level) {
  switch (level) {
    case Level::kError: return 'E';
    case Level::kWarn: return 'W';
    case Level::kInfo: return 'I';
    case Level::kDebug: return 'D';
  }
  return '?';
}

}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
void SetSink(int fd) { g_sink = fd; }
int GetSink() { return g_sink.load(); }

void SetClearsLine(bool clears) { g_clears_line = clears; }

void SetStage(std::string_view stage) {
  size_t n = std::min(stage.size(), sizeof(g_stage) - 1);
  stage.copy(g_stage, n);
  g_stage[n] = '\0';
}

void Write(Level level, std::string_view message) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm local{};
  localtime_r(&tv.tv_sec, &local);
  std::string line = fmt::format("{}{:02}:{:02}:{:02}.{:03} {:>6} {:<8} {}: {}\n", g_clears_line ? "\r\033[K" : "", local.tm_hour,
                                 local.tm_min, local.tm_sec, tv.tv_usec / 1000, getpid(), g_stage,
                                 LevelChar(level), message);
  int saved = errno;
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(g_sink.load(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  errno = saved;
}

}  // namespace ro::log

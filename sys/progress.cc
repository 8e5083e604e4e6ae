#include "sys/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sys/futex.h"
#include "sys/io.h"
#include "sys/log.h"

namespace ro::sys {
namespace {

constexpr uint64_t kTerminalEveryNs = 100'000'000;
constexpr uint64_t kLineEveryNs = 1'000'000'000;
constexpr std::string_view kErase = "\r\033[K";

// The live line of this process (one command runs at a time), or null.
ProgressLine* g_current = nullptr;

}  // namespace

std::string ProgressText(std::string_view verb, std::string_view stage, size_t done, size_t total, uint64_t elapsed_ns) {
  std::string text = fmt::format("restore-orch: {}: {}", verb, stage);
  if (total > 0) text += fmt::format(", {}/{} tasks", done, total);
  text += fmt::format(", {:.1f} s", static_cast<double>(elapsed_ns) / 1e9);
  return text;
}

ProgressLine::ProgressLine(ProgressMode mode, std::string_view verb)
    : ProgressLine(verb, Options{.terminal = ::isatty(2) == 1}) {
  enabled_ = mode == ProgressMode::kOn || (mode == ProgressMode::kAuto && options_.terminal);
  Arm();
}

ProgressLine::ProgressLine(std::string_view verb, Options options) : verb_(verb), options_(std::move(options)), enabled_(true) {
  if (!options_.now) options_.now = MonotonicNs;
  start_ns_ = options_.now();
  g_current = this;
  Arm();
}

void ProgressLine::Arm() {
  // From the start: tasks forked before the line first shows log too.
  log::SetClearsLine(enabled_ && options_.terminal && log::GetSink() == options_.fd);
}

void EraseProgressLine() {
  if (g_current != nullptr) g_current->Finish();
}

void ProgressLine::Update(std::string_view stage, size_t done, size_t total) {
  if (!enabled_) return;
  uint64_t now = options_.now();
  if (now - start_ns_ < options_.delay_ns) return;
  bool new_stage = stage != last_stage_;
  uint64_t every = options_.terminal ? kTerminalEveryNs : kLineEveryNs;
  if (last_ns_ != 0 && now - last_ns_ < every && !(options_.terminal && new_stage)) return;
  last_ns_ = now;
  last_stage_ = stage;
  std::string text = ProgressText(verb_, stage, done, total, now - start_ns_);
  if (options_.terminal) {
    // One row: a line the terminal wraps would leave all but its last row behind.
    winsize ws{};
    if (::ioctl(options_.fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && text.size() >= ws.ws_col) text.resize(ws.ws_col - 1u);
    Write(std::string(kErase) + text);
    shown_ = true;
  } else {
    Write(text + "\n");
  }
}

void ProgressLine::Finish() {
  if (!shown_) return;
  shown_ = false;
  Write(std::string(kErase));
}

ProgressLine::~ProgressLine() {
  Finish();
  if (g_current == this) {
    g_current = nullptr;
    log::SetClearsLine(false);
  }
}

void ProgressLine::Write(const std::string& text) {
  // Progress is best effort: a full or closed stderr does not fail the command.
  (void)WriteAll(options_.fd, text, "stderr");
}

}  // namespace ro::sys

// The progress line of a long restore or dump: which stage it is in, how
// many of its tasks are through it, how long it has run. It stays silent for
// the first second, so that quick commands print nothing more than before.
// On a terminal it is one line redrawn in place (at most ten times a
// second) and erased when the command ends; elsewhere (a file, a pipe, when
// asked for with --progress) a whole line at most once a second.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ro::sys {

enum class ProgressMode {
  kAuto,  // shown when stderr is a terminal (the default)
  kOff,   // -q: never
  kOn,    // --progress: also when stderr is not a terminal
};

// -q/--quiet wins, then --progress, else kAuto.
inline ProgressMode ProgressModeFor(bool quiet, bool forced) {
  return quiet ? ProgressMode::kOff : forced ? ProgressMode::kOn : ProgressMode::kAuto;
}

class ProgressLine {
 public:
  struct Options {
    int fd = 2;
    bool terminal = false;            // redraw in place: "\r", the line, erase to its end
    uint64_t delay_ns = 1'000'000'000;  // nothing shows before this much has passed
    std::function<uint64_t()> now;    // CLOCK_MONOTONIC ns; null: sys::MonotonicNs
  };

  // A line for `verb` ("restore", "dump") on stderr, as `mode` says
  // (kAuto: when stderr is a terminal). Its clock starts now. While it
  // lives, on a terminal, log lines (of tasks forked meanwhile too) start
  // by erasing the line they land on (log::SetClearsLine). A terminal line
  // is cut to the terminal's width.
  ProgressLine(ProgressMode mode, std::string_view verb);
  // Explicit fd, terminal flag and clock (the unit tests).
  ProgressLine(std::string_view verb, Options options);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine();  // Finish()

  // Where the command is: `stage` with `done` of `total` tasks through it
  // (total 0: no count, the stage alone). Cheap to call often: it writes
  // only when the line is due (its delay passed, and 100 ms on a terminal,
  // 1 s elsewhere, since it last wrote, or a new stage on a terminal).
  void Update(std::string_view stage, size_t done = 0, size_t total = 0);

  // Erases a terminal line that is shown (before the command prints its
  // result or error); a later Update shows it again. Idempotent.
  void Finish();

  bool enabled() const { return enabled_; }

 private:
  void Write(const std::string& text);
  void Arm();

  std::string verb_;
  Options options_;
  bool enabled_ = false;
  bool shown_ = false;          // a terminal line is on screen
  uint64_t start_ns_ = 0;
  uint64_t last_ns_ = 0;        // when it last wrote, 0: never
  std::string last_stage_;
};

// Erases the progress line of this process that is shown on a terminal,
// if any (ProgressLine::Finish of the live one): call before printing to
// stderr outside the log (an error line, a warning).
void EraseProgressLine();

// The text of one progress line, without line end: "restore-orch: restore:
// forking, 530/1000 tasks, 1.4 s". `elapsed_ns` since the command started.
std::string ProgressText(std::string_view verb, std::string_view stage, size_t done, size_t total, uint64_t elapsed_ns);

}  // namespace ro::sys

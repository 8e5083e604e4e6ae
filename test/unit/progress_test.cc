// The progress line (sys/progress.h): silent for its first second, then a
// line in place on a terminal or whole lines at most once a second
// elsewhere, erased when it ends; log lines erase it first.
#include "sys/progress.h"

#include <fcntl.h>
#include <pty.h>
#include <termios.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "sys/log.h"

namespace ro::sys {
namespace {

constexpr uint64_t kMs = 1'000'000;

// What the line wrote, read from a pipe; the clock is the test's.
class Screen {
 public:
  Screen() {
    EXPECT_EQ(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC), 0);
  }
  ~Screen() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  ProgressLine::Options Options(bool terminal) {
    return ProgressLine::Options{.fd = fds_[1], .terminal = terminal, .now = [this] { return now_; }};
  }
  std::string Take() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  int write_fd() const { return fds_[1]; }
  uint64_t now_ = 5000 * kMs;

 private:
  int fds_[2] = {-1, -1};
};

TEST(ProgressText, NamesVerbStageCountAndSeconds) {
  EXPECT_EQ(ProgressText("restore", "forking", 530, 1000, 1'420 * kMs), "restore-orch: restore: forking, 530/1000 tasks, 1.4 s");
  EXPECT_EQ(ProgressText("dump", "checking", 0, 0, 12'050 * kMs), "restore-orch: dump: checking, 12.1 s");
}

TEST(ProgressLine, SaysNothingInItsFirstSecond) {
  Screen screen;
  {
    ProgressLine line("restore", screen.Options(true));
    screen.now_ += 999 * kMs;
    line.Update("forking", 1, 10);
  }
  EXPECT_EQ(screen.Take(), "");
}

TEST(ProgressLine, OnATerminalRedrawsInPlaceAndErasesItselfAtTheEnd) {
  Screen screen;
  {
    ProgressLine line("restore", screen.Options(true));
    screen.now_ += 1'000 * kMs;
    line.Update("forking", 3, 10);
    screen.now_ += 50 * kMs;
    line.Update("forking", 4, 10);  // within 100 ms of the last: not drawn
    screen.now_ += 10 * kMs;
    line.Update("files", 0, 10);  // a new stage: drawn at once
    EXPECT_EQ(screen.Take(), "\r\033[Krestore-orch: restore: forking, 3/10 tasks, 1.0 s"
                             "\r\033[Krestore-orch: restore: files, 0/10 tasks, 1.1 s");
    screen.now_ += 100 * kMs;
    line.Update("files", 9, 10);
    EXPECT_EQ(screen.Take(), "\r\033[Krestore-orch: restore: files, 9/10 tasks, 1.2 s");
    line.Finish();
    EXPECT_EQ(screen.Take(), "\r\033[K");
    line.Finish();  // nothing shown: nothing to erase
    EXPECT_EQ(screen.Take(), "");
  }
  EXPECT_EQ(screen.Take(), "") << "the destructor erased a line that was not shown";
}

TEST(ProgressLine, ElsewhereWritesWholeLinesAtMostOnceASecond) {
  Screen screen;
  ProgressLine line("dump", screen.Options(false));
  screen.now_ += 1'200 * kMs;
  line.Update("collecting", 10, 1000);
  screen.now_ += 500 * kMs;
  line.Update("checking");  // a new stage, but within the second: not written
  screen.now_ += 500 * kMs;
  line.Update("checking");
  line.Finish();  // no line on screen to erase
  EXPECT_EQ(screen.Take(), "restore-orch: dump: collecting, 10/1000 tasks, 1.2 s\n"
                           "restore-orch: dump: checking, 2.2 s\n");
}

TEST(ProgressLine, LogLinesEraseTheTerminalLineWhileItLives) {
  Screen screen;
  int old_sink = log::GetSink();
  log::SetSink(screen.write_fd());
  log::Warn("before");
  {
    ProgressLine line("restore", screen.Options(true));
    log::Warn("not shown yet");
    screen.now_ += 2'000 * kMs;
    line.Update("memory", 1, 2);
    log::Warn("while shown");
  }
  log::Warn("after");
  log::SetSink(old_sink);
  std::string out = screen.Take();
  const std::string erase = "\r\033[K";
  auto line_of = [&](const std::string& text) {
    size_t at = out.find(text);
    size_t start = out.rfind('\n', at);
    return at == std::string::npos ? std::string("(none)") : out.substr(start == std::string::npos ? 0 : start + 1, at - (start == std::string::npos ? 0 : start + 1));
  };
  EXPECT_EQ(line_of("before").find(erase), std::string::npos) << out;
  EXPECT_EQ(line_of("not shown yet").find(erase), 0u) << out;
  EXPECT_EQ(line_of("while shown").find(erase + "restore-orch: restore: memory, 1/2 tasks, 2.0 s" + erase), 0u) << out;
  // After it: the destructor's erase at most, and no more erasing lines.
  std::string after = line_of("after");
  EXPECT_EQ(after.rfind(erase), after.find(erase)) << out;
  log::SetSink(screen.write_fd());
  log::Warn("later");
  log::SetSink(old_sink);
  EXPECT_EQ(screen.Take().find(erase), std::string::npos);
}

TEST(ProgressLine, OnATerminalIsCutToItsWidth) {
  int master = -1, slave = -1;
  winsize ws{.ws_row = 24, .ws_col = 30};
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  termios raw{};
  ::tcgetattr(slave, &raw);
  ::cfmakeraw(&raw);  // bytes through as written
  ::tcsetattr(slave, TCSANOW, &raw);
  uint64_t now = 5000 * kMs;
  {
    ProgressLine line("restore", ProgressLine::Options{.fd = slave, .terminal = true, .now = [&now] { return now; }});
    now += 2'000 * kMs;
    line.Update("forking", 123, 1000);
  }
  ::close(slave);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(master, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(master);
  // 29 columns: the cursor never wraps to a second row.
  EXPECT_EQ(out, "\r\033[K" + std::string("restore-orch: restore: forking, 123/1000 tasks, 2.0 s").substr(0, 29) + "\r\033[K");
}

TEST(ProgressLine, OffSaysNothingAndAutoFollowsTheTerminal) {
  ProgressLine off(ProgressMode::kOff, "dump");
  EXPECT_FALSE(off.enabled());
  ProgressLine on(ProgressMode::kOn, "dump");
  EXPECT_TRUE(on.enabled());
  ProgressLine automatic(ProgressMode::kAuto, "dump");
  EXPECT_EQ(automatic.enabled(), ::isatty(2) == 1);
  EXPECT_EQ(ProgressModeFor(true, true), ProgressMode::kOff);
  EXPECT_EQ(ProgressModeFor(false, true), ProgressMode::kOn);
  EXPECT_EQ(ProgressModeFor(false, false), ProgressMode::kAuto);
}

}  // namespace
}  // namespace ro::sys

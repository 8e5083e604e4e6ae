// Resume: how each task hands over at the end of the restore. A zombie
// exits as it was; a task with a resume-<pid>.img (restore-orch's own kind)
// execs its program; any other live task holds its kernel objects.
#include "images/plan/context.h"
#include "images/proto/resume.pb.h"

namespace ro::images::plan {
namespace {

std::optional<ResumePlan> ReadResume(Context& ctx, pid_t pid) {
  const ImageFile* f = ctx.dir.Find(ResumeKind(), static_cast<uint32_t>(pid));
  if (f == nullptr) return std::nullopt;
  const std::string name = MakeFileName(ResumeKind(), static_cast<uint32_t>(pid));
  const auto& r = f->As<img::resume_entry>(0);
  if (r.exe().empty() || r.exe().find('\0') != std::string::npos) {
    ctx.problems.Add(name, 0, "exe is empty or holds a NUL byte");
    return std::nullopt;
  }
  // execve would resolve a relative path against the restored cwd, which
  // the images do not tie to this program.
  if (!NormalizeAbsolutePath(r.exe())) {
    ctx.problems.Add(name, 0, "exe \"" + r.exe() + "\" is not absolute or contains \"..\"");
    return std::nullopt;
  }
  if (r.has_cwd() && !NormalizeAbsolutePath(r.cwd())) {
    ctx.problems.Add(name, 0, "cwd \"" + r.cwd() + "\" is not absolute or contains \"..\"");
    return std::nullopt;
  }
  ResumePlan rp;
  rp.exe = r.exe();
  rp.argv.assign(r.argv().begin(), r.argv().end());
  rp.env.assign(r.env().begin(), r.env().end());
  rp.cwd = r.cwd();
  return rp;
}

}  // namespace

void PlanResume(Context& ctx) {
  for (auto& [pid, t] : ctx.tasks) {
    switch (t.kind) {
      case TaskKind::kZombie:
        t.resume_mode = ResumeMode::kZombie;
        break;
      case TaskKind::kAlive:
        t.resume = ReadResume(ctx, pid);
        t.resume_mode = t.resume ? ResumeMode::kExec : ResumeMode::kHold;
        break;
      case TaskKind::kHelper:
        break;  // planned later; helpers exit before the resume stage
    }
  }
}

}  // namespace ro::images::plan

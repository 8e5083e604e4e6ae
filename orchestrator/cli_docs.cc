// What the command line's documentation says beyond the options (one table
// per command), and the man pages and bash completion generated from the
// definition in cli.cc.
#include <fmt/format.h>

#include <map>
#include <set>

#include "orchestrator/cli.h"
#include "orchestrator/cli_model.h"
#include "orchestrator/commands.h"

#ifndef RESTORE_ORCH_VERSION
#define RESTORE_ORCH_VERSION "0.0.0"
#endif

namespace ro {
namespace cli {
namespace {

const char* kUsage = "bad usage: an unknown option, an option of another command, a value that does not parse, a "
                     "required option missing, --root or --action-script naming no directory or executable (one line "
                     "says which); nothing was done";

CommandDoc RestoreDoc() {
  CommandDoc d;
  d.description = {
      "Restores the process tree whose images are in DIR. Every image is read and validated into a restore plan "
      "first: all checks of the input happen before anything is created, and an image directory that would not "
      "restore is one line per problem and exit status 2. External mounts (a filesystem that lives outside the tree) "
      "are bound from the caller's tree, and only from what the caller names: the tree's root mount from --root, any "
      "other from --external or --ext-mount-map; each source is found before anything is created. A tmpfs's "
      "contents are unpacked under a cap, charged before anything is written (data in pages, sparse files at their "
      "whole size, hard links' data again, long symlinks' pages, extended attributes): the tmpfs's size= option, "
      "1 GiB without one, or --tmpfs-limit; an archive that would unpack to more fails the restore with the cap in "
      "its one line. A tmpfs the images make unlimited (size=0, nr_blocks=0, nr_inodes=0) is refused (exit 2) unless "
      "--allow-unlimited-tmpfs is given.",
      "The root task is cloned with its pid into new PID and mount namespaces (when the tree had them), and new UTS, "
      "IPC and network namespaces when the tree had its own, which it gives their names, sysctls and System V "
      "objects, and lo's flags, MTU and addresses; it builds the mount tree and pivots into it; every task forks its children with their pids, joins its session "
      "and process group, places its fds at their numbers, prepares its memory and installs its seccomp filters; then "
      "every task resumes by its kind: it continues where it was dumped (memory and registers, when the images hold "
      "them), execs the program of its resume-PID.img with RESTORE_ORCH_RESTORED=1 in its environment, stays a "
      "holder, or exits as the zombie it was.",
      "Without --detach restore-orch then waits for the root task and exits with its status. A tree in a PID "
      "namespace of its own dies with restore-orch (its root is the namespace's init); a tree restored into the "
      "caller's PID namespace is on its own once it has resumed (as it was before the dump): only its root task "
      "dies with restore-orch, its other tasks are reparented. With --detach it prints the root task's pid (as the caller sees it) and returns; the tree runs "
      "on. Any failure before the hand-over (a task dying, a syscall failing, the timeout, a signal) prints one line "
      "naming task, stage, operation and errno, kills the tree and exits 1: no process, mount or shared-memory "
      "segment is left.",
      "CRIU's spellings work: restore-orch restore -D DIR -d --pidfile FILE -o LOG -v4 --root DIR "
      "--external mnt[KEY]:PATH --ext-mount-map KEY:PATH --action-script FILE."};
  d.exit_codes = {
      {"0", "restored: with --detach every task has resumed (its root's pid printed); with --dry-run the images "
            "would restore (the plan printed)"},
      {"N", "without --detach, once the tree is restored: the root task's exit status, or 128+n when it was killed "
            "by signal n (137 when restore-orch killed the tree after SIGINT or SIGTERM, see SIGNALS)"},
      {"1", "the restore failed and was rolled back (one line names task, stage, operation and errno): nothing it "
            "made is left; also an external mount's source or the pidfile's directory that cannot be used"},
      {"2", "the image directory is missing or cannot be read, or the images are invalid or cannot be restored as "
            "they are (one line per problem: restore-orch: DIR: FILE: entry N: problem); nothing was created"},
      {"64", kUsage}};
  d.sections = {
      {"SIGNALS",
       {"Before the hand-over (while the tree is being restored), SIGINT, SIGTERM and SIGHUP abort the restore: it "
        "is rolled back and restore-orch exits 1.",
        "After the hand-over, while restore-orch waits for the root task, a signal goes to the root task as it would "
        "to an ordinary process. When the root task catches it (or it is not the init of a PID namespace), it is "
        "forwarded. When the root task is the init of the tree's PID namespace and leaves the signal at its default "
        "action, the kernel would drop it: restore-orch kills the tree instead (SIGKILL to the init, so every task "
        "dies), which is what the default action does to an ordinary process.",
        "After a forwarded SIGINT or SIGTERM, a second SIGINT or SIGTERM, or the root task still alive --kill-after "
        "seconds (default 10) later, kills the tree. SIGHUP is only forwarded (a daemon may take it as 'reload'). "
        "Each kill prints one line saying why; restore-orch then exits 137 (the root task was killed by SIGKILL).",
        "With --detach restore-orch returns once the tree has resumed; signals to it no longer concern the tree."}},
      {"ENVIRONMENT",
       {"RESTORE_ORCH_FAULT=NAME[:N] is --fault NAME[:N]. RESTORE_ORCH_PAUSE_AT=STAGE:PID:FILE (for tests) makes task "
        "PID write its pid to FILE, a path inside the restored tree, when it enters STAGE, and wait there.",
        "Action scripts get RESTORE_ORCH_ACTION and CRTOOLS_SCRIPT_ACTION (the point: pre-restore, "
        "post-setup-namespaces, post-restore, pre-resume, post-resume) and RESTORE_ORCH_ROOT_PID and "
        "CRTOOLS_INIT_PID (the root task's pid as the caller sees it, 0 before it exists)."}},
      {"FILES",
       {"/usr/libexec/restore-orch/restart-autofs-masters.sh: an action script that, at post-resume, restarts inside "
        "the restored namespaces the systemd units (RESTORE_ORCH_RESTART_UNITS) or runs the commands "
        "(RESTORE_ORCH_RESTART_COMMANDS) the caller names, for AutoFS masters that remember the old device number.",
        "/usr/share/doc/restore-orch/: README.md (how a restore and a dump run, limits) and image-format.md (the "
        "files of an image directory: which kinds restore-orch reads, requires and ignores)."}}};
  return d;
}

CommandDoc TopDoc() {
  CommandDoc d = RestoreDoc();
  d.description.insert(
      d.description.begin(),
      {"restore-orch is a checkpoint/restore engine for Linux process trees that reads and writes CRIU's image "
       "format. Without a command (or with 'restore') it restores a tree from an image directory; 'dump' checkpoints "
       "a live tree into one; 'verify' compares a live tree with its images; 'check' probes the kernel; 'image' "
       "decodes, encodes and summarises image files as CRIU's crit does. Each command takes only its own options, "
       "after its name; every command takes the logging options. The options below are restore's, given without "
       "the command's name; restore-orch-restore(1) says the same with the name."});
  d.sections.insert(
      d.sections.begin(),
      {"COMMANDS",
       {"restore-orch-restore(1): restore a tree (the default command).",
        "restore-orch-dump(1): checkpoint a live tree into an image directory.",
        "restore-orch-check(1): probe the kernel for what a restore needs.",
        "restore-orch-verify(1): compare a live tree with its images.",
        "restore-orch-image(1): image decode, image encode, image show."}});
  d.sections.push_back(
      {"CRIU'S NAMES",
       {"Where the meaning is the same, CRIU's spellings are accepted alongside restore-orch's: -D/--images-dir, "
        "-t/--tree, -R/--leave-running, -d/--restore-detached, -o/--log-file, -v0 .. -v4, --pidfile, -r/--root, "
        "--external mnt[KEY]:PATH, --ext-mount-map KEY:PATH and auto, --action-script (with CRIU's action names and "
        "CRTOOLS_* variables), dump --timeout (restore-orch's --freeze-timeout), check --feature NAME and --all with "
        "CRIU's feature names where they match. Log files and pidfiles are relative to the current directory (CRIU "
        "puts them in its work directory). -j/--shell-job as CRIU's for sessions and groups (a job stays in "
        "restore-orch's session and group; without it a dump refuses such a tree and a restore such images), but "
        "fds on terminals are taken only with it and reopened by their path; no terminal state is checkpointed."}});
  return d;
}

CommandDoc DumpDoc() {
  CommandDoc d;
  d.description = {
      "Checkpoints the live tree whose root task is PID into DIR (made if absent; it must hold no images): freezes "
      "every thread of every task (PTRACE_SEIZE and interrupt, passes repeated until no new child or thread "
      "appears), reads the tree from /proc, checks that the images would restore (they are encoded, read back and "
      "planned as a restore plans them), writes them, then kills the tree, or with --leave-running lets it run on "
      "(released before the write). Until the images are written nothing about the tree changes: on any failure it "
      "is released running, and DIR is left as it was; but the freeze is a stop, after which the kernel ends some "
      "waits with EINTR instead of restarting them (epoll_wait, epoll_pwait, semop, semtimedop, io_getevents, "
      "sigtimedwait, sigwaitinfo: signal(7)), so a refusal that /proc alone shows (a socket, an anonymous-inode fd) "
      "is given before the freeze, touching nothing.",
      "Anything the tree holds that restore-orch could not restore (a socket, an eventfd or other anonymous-inode "
      "file, a deleted file, a task whose main thread exited while its other threads run, a thread with an fd "
      "table, cwd, namespace or seccomp filters other than its task's, a stopped or traced task, credentials "
      "restore-orch cannot give back (ids its user namespace does not map, or that need capabilities it lacks), a "
      "namespace of its own other than PID, mount, UTS, IPC and network, a task in another UTS, IPC or network "
      "namespace than the root task, a System V segment attached from outside the tree or a POSIX message queue in "
      "the tree's IPC namespace, in its network namespace a link other than lo, a route the kernel did not make, "
      "other rules than a new namespace's, a firewall table or a sysctl a restore would not bring back, memory or fd tables "
      "shared between tasks, an "
      "AutoFS mount served from outside the tree, a bind mount of a directory removed since, a file lock held through an fd, a task in vfork waiting for its "
      "child, a parent-death signal of the root task, SCHED_DEADLINE, a hard resource limit above restore-orch's "
      "own, a VMA locked on fault, sealed or registered with userfaultfd) is refused with one line naming the task "
      "and the fd, mount, mapping or attribute, and exit status 3.",
      "--dry-run does all of this but the write: the tree is released running (as --leave-running releases it), "
      "nothing is written, DIR is not made, and the files the dump would write are printed with their sizes, then "
      "the counts. It runs no action script.",
      "On stdout the dump prints which flags a restore of its images will need (--root, --external), if any."};
  d.exit_codes = {
      {"0", "the images are written (the tree killed, or running with --leave-running); with --dry-run: nothing "
            "written, the tree runs on, what would be written printed"},
      {"1", "a failure while running (a syscall, the write, an action script, SIGINT/SIGTERM/SIGHUP, or anything "
            "else that is not a refusal or a try again): nothing written, the tree runs on"},
      {"3", "refused: the tree holds something restore-orch cannot checkpoint or restore (one line names the task "
            "and the fd, mount or property); nothing written, the tree runs on"},
      {"64", kUsage},
      {"75", "try again: an AutoFS request was pending, or a task did not stop within --freeze-timeout (it waits "
             "uninterruptibly: the line names where); nothing written, the tree runs on"}};
  d.sections = {
      {"SIGNALS",
       {"SIGINT, SIGTERM or SIGHUP during a dump take effect at the next phase boundary: the tree is released running "
        "and nothing is written (files already written are removed); exit 1. If restore-orch is killed outright, the "
        "kernel detaches the tree, which runs on."}},
      {"ENVIRONMENT",
       {"Action scripts get RESTORE_ORCH_ACTION and CRTOOLS_SCRIPT_ACTION (pre-dump or post-dump) and "
        "RESTORE_ORCH_ROOT_PID and CRTOOLS_INIT_PID (PID). A script still running after 60 s is killed and fails the "
        "dump."}}};
  return d;
}

CommandDoc CheckDoc() {
  CommandDoc d;
  d.description = {
      "Probes, in a throw-away child in new PID and mount namespaces (nothing it does is visible outside), every "
      "kernel feature a restore needs, and prints one line per feature: its name, ok or FAIL, and what was seen. "
      "The tree and its mounts need PID and mount namespaces, clone3 with set_tid, MOVE_MOUNT_SET_GROUP, AutoFS's "
      "pipe_ino= and /dev/autofs; the memory restore needs PTRACE_SEIZE and PTRACE_INTERRUPT with the options it "
      "seizes continuing tasks with, PR_SET_MM_MAP and rseq(2). Two are only speed-ups, shown as optional and "
      "failing the check only when named with --feature: PAGEMAP_SCAN (the dump's page scan) and "
      "MADV_POPULATE_WRITE (the restore's page fill).",
      "Features, as restore-orch and CRIU name them (CRIU's name where CRIU checks the same thing): " +
          [] {
            std::string list;
            for (const auto& [ours, criu] : CheckFeatureNames()) {
              list += (list.empty() ? "" : ", ") + ours + (criu.empty() ? "" : " (" + criu + ")");
            }
            return list;
          }() +
          "."};
  d.exit_codes = {{"0", "every feature checked is present"},
                  {"1", "a feature is missing (its line says what was seen), or the probe could not run"},
                  {"64", std::string(kUsage) + "; also an unknown feature name"}};
  return d;
}

CommandDoc VerifyDoc() {
  CommandDoc d;
  d.description = {
      "Compares the live tree whose root task is PID with its images and prints each difference, one line each: "
      "tasks (pids, parents, sessions, groups, zombies), fds (numbers, kinds, paths, flags, shared descriptions), the "
      "mount namespace (mountpoints, types, roots, flags, peer groups up to renumbering, AutoFS owners, the files of each "
      "restored tmpfs: modes, owners, times, data, hard links, extended attributes), the "
      "address space of tasks that continued (VMAs and their madvise advice), and each live task's attributes "
      "(resource limits, umask, OOM score, subreaper flag; each thread's no_new_privs, nice, policy, parent-death "
      "signal, TSC mode, timer slack, uids and gids, capability sets, securebits and supplementary groups; every signal's "
      "disposition of a task that continued). What only a task can "
      "tell is asked by syscalls injected into it, the tree stopped for that moment. What must change is not "
      "compared (ids, device numbers).",
      "PID must be the root task of a tree the images describe: a pid that names no process, or a task whose pid in "
      "its namespace is not the images' root pid, is one line and exit 1."};
  d.exit_codes = {{"0", "the tree matches its images"},
                  {"1", "differences (each printed), or PID is not a live tree's root"},
                  {"2", "the image directory is missing or cannot be read, or the images are invalid (one line per "
                        "problem)"},
                  {"64", kUsage}};
  return d;
}

CommandDoc ImageDoc() {
  CommandDoc d;
  d.description = {
      "image decode prints one image file as JSON, as crit decode does: crit's magic names, CRIU's field names, "
      "64-bit integers exact, enums by name, bytes in base64; --pretty prints what crit show prints. Raw files "
      "(pages-N.img, tmpfs tarballs) print as one entry holding the whole file.",
      "image encode turns that JSON (ours or crit's, plain or pretty) back into the binary file: decode | encode "
      "gives back every file of a CRIU dump byte for byte.",
      "Both write standard output, or with -o FILE: a new file or an existing regular one is written to FILE.tmp and "
      "renamed over FILE, so a failure leaves no half file; any other FILE (a device such as /dev/null, a FIFO, a "
      "symlink such as /dev/stdout, whatever it points at) is opened and written through, as crit does, and stays "
      "what it was.",
      "image show summarises an image directory: the process tree with pid, pgid and sid and each task's fds, the "
      "mount tree with propagation, AutoFS mounts with their masters, and the namespaces of the tree's own (a UTS "
      "namespace's names, an IPC namespace's object counts, a network namespace's links and addresses). It works on "
      "directories that do not validate."};
  d.exit_codes = {{"0", "done"},
                  {"1", "the output could not be written, or standard input read"},
                  {"2", "the input (an image file, its JSON, an image directory) is missing, cannot be read or is not "
                        "valid, or holds a field JSON cannot hold (one line says which)"},
                  {"64", std::string(kUsage) + "; also encode to a terminal"}};
  return d;
}

// Roff-escaped text: backslashes and hyphens, and a leading control character.
std::string Roff(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\\') {
      out += "\\e";
    } else if (ch == '-') {
      out += "\\-";
    } else {
      out += ch;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string Upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string ManOptions(const CLI::App* app) {
  std::string out;
  std::string group;
  for (const CLI::Option* o : DocumentedOptions(app)) {
    if (o->get_group() != group && o->get_group() != "Options" && o->get_group() != "OPTIONS") {
      group = o->get_group();
      out += ".SS " + Roff(group) + "\n";
    }
    std::string names;
    for (const std::string& n : OptionNames(o)) {
      names += (names.empty() ? "" : ", ") + (n.starts_with("-") ? "\\fB" + Roff(n) + "\\fR" : "\\fI" + Roff(n) + "\\fR");
    }
    if (!o->get_positional() && o->get_expected_max() > 0) names += " \\fI" + Roff(o->get_type_name()) + "\\fR";
    std::string desc = o->get_description();
    if (!o->get_default_str().empty()) desc += " (default: " + o->get_default_str() + ")";
    if (o->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll && desc.find("repeatable") == std::string::npos) {
      desc += "; repeatable";
    }
    out += ".TP\n" + names + "\n" + Roff(desc) + "\n";
  }
  return out;
}

std::string ManPage(const std::string& name, const std::string& summary, const std::string& synopsis,
                    const std::vector<const CLI::App*>& commands, const CommandDoc& doc) {
  std::string out = ".\\\" Generated from restore-orch's command line definition (orchestrator/cli*.cc): do not edit.\n";
  out += ".TH " + Upper(Roff(name)) + " 1 \"\" \"restore-orch " RESTORE_ORCH_VERSION "\" \"restore-orch manual\"\n";
  out += ".SH NAME\n" + Roff(name) + " \\- " + Roff(summary) + "\n";
  out += ".SH SYNOPSIS\n.nf\n" + Roff(synopsis) + ".fi\n";
  out += ".SH DESCRIPTION\n";
  for (const std::string& p : doc.description) out += ".PP\n" + Roff(p) + "\n";
  bool several = commands.size() > 1;
  out += ".SH OPTIONS\n";
  for (const CLI::App* app : commands) {
    if (several) out += ".SS " + Roff(CommandPath(app).substr(13)) + "\n" + Roff(app->get_description()) + "\n";
    out += ManOptions(app);
  }
  out += ".SH EXIT STATUS\n";
  for (const ExitCode& c : doc.exit_codes) out += ".TP\n.B " + Roff(c.code) + "\n" + Roff(c.meaning) + "\n";
  for (const auto& [title, paragraphs] : doc.sections) {
    out += ".SH " + Roff(title) + "\n";
    for (const std::string& p : paragraphs) out += ".PP\n" + Roff(p) + "\n";
  }
  out += ".SH SEE ALSO\n";
  std::string see;
  for (const char* page : {"restore-orch", "restore-orch-restore", "restore-orch-dump", "restore-orch-check",
                           "restore-orch-verify", "restore-orch-image"}) {
    if (page != name) see += (see.empty() ? "" : ",\n") + std::string("\\fB") + Roff(page) + "\\fR(1)";
  }
  out += see + ",\n\\fBcriu\\fR(8), \\fBcrit\\fR(1); /usr/share/doc/restore\\-orch/README.md\n";
  return out;
}

// bash: a value completion for an option's TYPE.
std::string ValueCompletion(const std::string& type) {
  if (type == "DIR") return "_restore_orch_dirs";
  if (type == "FILE" || type == "JSON") return "_restore_orch_files";
  if (type == "PID") return "_restore_orch_pids";
  if (type == "NAME") return "_restore_orch_words 'list" + [] {
    std::string w;
    for (const auto& [ours, criu] : CheckFeatureNames()) w += " " + ours + (criu.empty() ? "" : " " + criu);
    return w;
  }() + "'";
  // "fail|catatonic", "auto|KEY:PATH": the literal words.
  std::string words;
  size_t start = 0;
  while (start <= type.size()) {
    size_t bar = type.find('|', start);
    std::string w = type.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (!w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") == std::string::npos) words += " " + w;
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return words.empty() ? "return 0" : "_restore_orch_words '" + words.substr(1) + "'";
}

}  // namespace

const CommandDoc& DocOf(const CLI::App* app) {
  static const std::map<std::string, CommandDoc> docs = {
      {"restore-orch", TopDoc()},          {"restore-orch restore", RestoreDoc()}, {"restore-orch dump", DumpDoc()},
      {"restore-orch check", CheckDoc()},  {"restore-orch verify", VerifyDoc()},   {"restore-orch image", ImageDoc()},
      {"restore-orch image decode", ImageDoc()}, {"restore-orch image encode", ImageDoc()},
      {"restore-orch image show", ImageDoc()}};
  return docs.at(CommandPath(app));
}

}  // namespace cli

std::map<std::string, std::string> CliManPages() {
  auto c = cli::BuildCli();
  std::map<std::string, std::string> pages;
  auto add = [&](const CLI::App* doc_of, const std::string& summary, const std::string& synopsis,
                 const std::vector<const CLI::App*>& commands) {
    std::string name = cli::ManPageOf(commands.front());
    pages[name + ".1"] = cli::ManPage(name, summary, synopsis, commands, cli::DocOf(doc_of));
  };
  add(c->app.get(), "restore and checkpoint Linux process trees in CRIU's image format", CliSynopsis(), {c->app.get()});
  add(c->restore, c->restore->get_description(), cli::CommandSynopsis(c->restore), {c->restore});
  add(c->dump, c->dump->get_description(), cli::CommandSynopsis(c->dump), {c->dump});
  add(c->check, c->check->get_description(), cli::CommandSynopsis(c->check), {c->check});
  add(c->verify, c->verify->get_description(), cli::CommandSynopsis(c->verify), {c->verify});
  add(c->image, c->image->get_description(),
      cli::CommandSynopsis(c->decode) + cli::CommandSynopsis(c->encode) + cli::CommandSynopsis(c->show),
      {c->decode, c->encode, c->show});
  return pages;
}

std::string CliBashCompletion() {
  auto c = cli::BuildCli();
  std::string out =
      "# bash completion for restore-orch, generated from its command line definition: do not edit.\n"
      "_restore_orch_words() { COMPREPLY=($(compgen -W \"$1\" -- \"$cur\")); }\n"
      "_restore_orch_files() { COMPREPLY=($(compgen -f -- \"$cur\")); }\n"
      "_restore_orch_dirs() { COMPREPLY=($(compgen -d -- \"$cur\")); }\n"
      "_restore_orch_pids() { COMPREPLY=($(compgen -W \"$(cd /proc 2>/dev/null && echo [0-9]*)\" -- \"$cur\")); }\n"
      "_restore_orch() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"$cmd:${COMP_WORDS[i]}\" in\n"
      "      :restore | :dump | :check | :verify | :image) cmd=${COMP_WORDS[i]} ;;\n"
      "      image:decode | image:encode | image:show) cmd=\"image ${COMP_WORDS[i]}\" ;;\n"
      "    esac\n"
      "  done\n"
      "  local opts= words= positional=\n"
      "  case \"$cmd\" in\n";
  std::vector<const CLI::App*> commands = cli::Commands(*c);
  commands.push_back(c->image);
  for (const CLI::App* app : commands) {
    std::string key = app->get_parent() == nullptr ? "" : cli::CommandPath(app).substr(13);
    out += "    \"" + key + "\")\n      case \"$prev\" in\n";
    std::string opts, positional;
    for (const CLI::Option* o : cli::DocumentedOptions(app)) {
      std::vector<std::string> names = cli::OptionNames(o);
      if (o->get_positional()) {
        positional = cli::ValueCompletion(o->get_type_name());
        names.erase(names.begin());
      }
      std::string alternatives;
      for (const std::string& n : names) {
        opts += " " + n;
        alternatives += (alternatives.empty() ? "" : " | ") + n;
      }
      if (o->get_expected_max() > 0 && !alternatives.empty()) {
        out += "        " + alternatives + ") " + cli::ValueCompletion(o->get_type_name()) + "; return 0 ;;\n";
      }
    }
    out += "      esac\n      opts=\"" + opts.substr(1) + "\"\n";
    std::string subs;
    for (const CLI::App* s : app->get_subcommands({})) subs += " " + s->get_name();
    if (!subs.empty()) out += "      words=\"" + subs.substr(1) + "\"\n";
    if (!positional.empty()) out += "      positional=\"" + positional + "\"\n";
    out += "      ;;\n";
  }
  out +=
      "  esac\n"
      "  if [[ $cur == -* ]]; then\n"
      "    _restore_orch_words \"$opts\"\n"
      "  elif [ -n \"$words\" ]; then\n"
      "    _restore_orch_words \"$words\"\n"
      "  elif [ -n \"$positional\" ]; then\n"
      "    $positional\n"
      "  else\n"
      "    _restore_orch_words \"$opts\"\n"
      "  fi\n"
      "}\n"
      "complete -F _restore_orch restore-orch\n";
  return out;
}

}  // namespace ro

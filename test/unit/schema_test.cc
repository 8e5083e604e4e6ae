// The complete schemas: every CRIU kind by its file name and magic, the
// loader that lists what it does not restore without reading it, and the
// JSON crit prints (numbers, hex, devices, flags, names, base64).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <set>

#include "images/image_dir.h"
#include "images/image_file.h"
#include "images/json.h"
#include "images/kinds.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pagemap.pb.h"
#include "images/proto/stats.pb.h"
#include "test/helpers/test_util.h"

namespace ro::images {
namespace {

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

template <class M>
ImageFile One(const Kind& kind, std::unique_ptr<M> m) {
  ImageFile f;
  f.kind = &kind;
  f.entries.push_back(Entry{std::move(m), {}});
  return f;
}

TEST(Kinds, EveryCriuFileNameHasItsKind) {
  struct Case {
    const char* file;
    const char* kind;
    uint32_t magic;
  };
  for (const Case& c : std::vector<Case>{
           {"pagemap-5.img", "PAGEMAP", 0x56084025},      {"pagemap-shmem-13217.img", "SHMEM_PAGEMAP", 0x56084025},
           {"pages-3.img", "PAGES", 0},                   {"tmpfs-dev-40.tar.gz.img", "TMPFS_DEV", 0},
           {"tmpfs-7.tar.gz.img", "TMPFS", 0},            {"mm-1.img", "MM", 0x57492820},
           {"timens-0.img", "TIMENS", 0x43114433},        {"memfd.img", "MEMFD_INODE", 0x48453499},
           {"creds-3.img", "CREDS", 0x54023547},          {"sigacts-3.img", "SIGACT", 0x55344201},
           {"utsns-11.img", "UTSNS", 0x54473203},         {"ipcns-var-11.img", "IPC_VAR", 0x53115007},
           {"tty.img", "TTY_FILES", 0x59433025},          {"tty-info.img", "TTY_INFO", 0x59453036},
           {"tty-data.img", "TTY_DATA", 0x59413026},      {"stats-dump", "STATS", 0x57093306},
           {"stats-restore", "STATS_RESTORE", 0x57093306}, {"fifo-data.img", "FIFO_DATA", 0x59333054},
       }) {
    auto f = ParseFileName(c.file);
    ASSERT_TRUE(f) << c.file;
    EXPECT_EQ(f->kind->name, c.kind) << c.file;
    EXPECT_EQ(f->kind->magic, c.magic) << c.file;
    EXPECT_EQ(MakeFileName(*f->kind, f->key), c.file);
  }
  EXPECT_EQ(ParseFileName("stats-dump")->kind->head_magic, kServiceHeadMagic);
  EXPECT_EQ(ParseFileName("inventory.img")->kind->head_magic, 0u);
  EXPECT_EQ(ParseFileName("pagemap-shmem-5.img")->kind->JsonName(), "PAGEMAP") << "crit names it by its magic";
  EXPECT_EQ(*ParseFileName("pagemap-shmem-18446744073709551615.img")->key, UINT64_MAX) << "shm ids are %lu";
  EXPECT_FALSE(ParseFileName("core-4294967296.img")) << "pids are %u";
  // Every kind's names parse back to it: no two kinds share a name.
  for (const Kind& k : AllKinds()) {
    auto f = ParseFileName(MakeFileName(k, 7));
    ASSERT_TRUE(f) << k.name;
    EXPECT_EQ(f->kind, &k) << MakeFileName(k, 7);
  }
}

TEST(Kinds, RestoredAreTheKindsRestoreOrchReads) {
  std::set<std::string_view> restored;
  for (const Kind& k : AllKinds()) {
    if (k.restored) restored.insert(k.name);
  }
  EXPECT_EQ(restored, (std::set<std::string_view>{"INVENTORY", "PSTREE", "CORE", "IDS", "MNTS", "AUTOFS", "FDINFO", "FILES",
                                                  "PIPES_DATA", "FIFO_DATA", "SECCOMP", "FS", "RESUME", "TMPFS_DEV", "MM", "PAGEMAP",
                                                  "SHMEM_PAGEMAP", "PAGES", "MEMFD_INODE", "TIMENS", "ATTRS", "UTSNS", "IPC_VAR", "IPCNS_SHM", "IPCNS_MSG", "IPCNS_SEM",
                                                  "NETNS", "NETDEV", "IFADDR", "ROUTE", "ROUTE6", "RULE", "IPTABLES",
                                                  "IP6TABLES", "NFTABLES", "PIPE_OWNERS", "POSIX_MQUEUES"}));
}

TEST(ImageDir, KindsNotRestoredAreListedWithoutBeingRead) {
  test::TempDir dir;
  // A FIFO would block a reader, and a directory cannot be read: the loader
  // must not even open them.
  ASSERT_EQ(::mkfifo(dir.File("tty-info.img").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(dir.File("tty-data.img").c_str(), 0700), 0);
  dir.Write("creds-1.img", "garbage");
  dir.Write("stats-dump", "garbage");
  dir.Write("sockets-9.img", "garbage");
  auto loaded = LoadImageDir(dir.path(), Limits{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
  EXPECT_EQ(loaded->unsupported, (std::vector<std::string>{"creds-1.img", "sockets-9.img", "tty-data.img", "tty-info.img"}));
  EXPECT_TRUE(loaded->files.empty());
}

TEST(Json, PrettyFollowsTheSchemasOptions) {
  auto mnt = std::make_unique<img::mnt_entry>();
  mnt->set_fstype(img::TMPFS);
  mnt->set_mnt_id(40);
  mnt->set_root_dev((1u << 20) | 22);
  mnt->set_parent_mnt_id(1);
  mnt->set_flags(0x200000);
  mnt->set_root("/");
  mnt->set_mountpoint("/");
  mnt->set_source("fx");
  mnt->set_options("rw");
  mnt->set_sb_flags(0);
  ImageFile mounts = One(MountpointsKind(), std::move(mnt));
  auto plain = ImageToJson(mounts, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->find("\"root_dev\":1048598,"), std::string::npos) << *plain;
  auto pretty = ImageToJson(mounts, true);
  ASSERT_TRUE(pretty.ok());
  for (const char* want : {"\"root_dev\": \"1:22\"", "\"flags\": \"0x200000\"", "\"sb_flags\": \"0x0\"", "\"fstype\": 5"}) {
    EXPECT_NE(pretty->find(want), std::string::npos) << want << " in " << *pretty;
  }
  auto back = ImageFromJson(*pretty, Limits{});
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*SerializeImage(*back), *SerializeImage(mounts));

  auto file = std::make_unique<img::file_entry>();
  file->set_type(img::REG);
  file->set_id(3);
  auto* reg = file->mutable_reg();
  reg->set_id(3);
  reg->set_flags(02 | 02000 | 0x40000000);  // O_RDWR | O_APPEND and a bit crit has no name for
  reg->set_pos(7);
  reg->set_name("/log.txt");
  reg->mutable_fown()->set_uid(0);
  reg->mutable_fown()->set_euid(0);
  reg->mutable_fown()->set_signum(0);
  reg->mutable_fown()->set_pid_type(0);
  reg->mutable_fown()->set_pid(0);
  ImageFile files = One(FilesKind(), std::move(file));
  auto shown = ImageToJson(files, true);
  ASSERT_TRUE(shown.ok());
  EXPECT_NE(shown->find("\"flags\": \"O_RDWR | O_APPEND | 0x40000000\""), std::string::npos) << *shown;
  EXPECT_NE(shown->find("\"type\": \"REG\""), std::string::npos) << *shown;
  auto files_back = ImageFromJson(*shown, Limits{});
  ASSERT_TRUE(files_back.ok()) << files_back.error().ToString();
  EXPECT_EQ(*SerializeImage(*files_back), *SerializeImage(files));
}

TEST(Json, HexIsInheritedBelowAHexMessageAndDictionariesNameValues) {
  auto core = std::make_unique<img::core_entry>();
  core->set_mtype(img::core_entry::X86_64);
  auto* tc = core->mutable_tc();
  tc->set_task_state(1);
  tc->set_exit_code(0);
  tc->set_personality(0);
  tc->set_flags(0);
  tc->set_blk_sigset(UINT64_MAX);
  tc->set_comm("init");
  auto* ti = core->mutable_thread_info();
  ti->set_clear_tid_addr(0x7f00);
  auto* regs = ti->mutable_gpregs();
  const google::protobuf::Reflection* r = regs->GetReflection();
  for (int i = 0; i < regs->GetDescriptor()->field_count(); ++i) {
    const auto* f = regs->GetDescriptor()->field(i);
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) r->SetUInt64(regs, f, 0);
  }
  regs->set_ax(0x1f);
  auto* fp = ti->mutable_fpregs();
  fp->set_cwd(0x37f);
  fp->set_swd(0);
  fp->set_twd(0);
  fp->set_fop(0);
  fp->set_rip(0);
  fp->set_rdp(0);
  fp->set_mxcsr(0x1f80);
  fp->set_mxcsr_mask(0xffff);
  ImageFile file = One(CoreKind(), std::move(core));
  auto pretty = ImageToJson(file, true);
  ASSERT_TRUE(pretty.ok()) << pretty.error().ToString();
  for (const char* want : {"\"task_state\": \"Alive\"", "\"blk_sigset\": \"0xffffffffffffffff\"", "\"ax\": \"0x1f\"",
                           "\"clear_tid_addr\": \"0x7f00\"", "\"mxcsr\": 8064"}) {
    EXPECT_NE(pretty->find(want), std::string::npos) << want << " in " << *pretty;
  }
  EXPECT_EQ(pretty->find("\"mode\""), std::string::npos) << "an unset optional is not printed";
  auto plain = ImageToJson(file, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->find("\"blk_sigset\":18446744073709551615,"), std::string::npos) << "64 bits, exact, a number";
  for (const std::string& text : {*plain, *pretty}) {
    auto back = ImageFromJson(text, Limits{});
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*SerializeImage(*back), *SerializeImage(file));
  }
}

TEST(Json, ReadsDecimalHexAndRefusesOutOfRange) {
  std::string head = R"({"magic": "CORE", "entries": [{"mtype": "X86_64", "tc": {"task_state": 1, "exit_code": 0,
      "personality": 0, "flags": 0, "comm": "x", "blk_sigset": )";
  for (const char* v : {"18446744073709551615", "\"18446744073709551615\"", "\"0xffffffffffffffff\""}) {
    auto f = ImageFromJson(head + v + "}}]}", Limits{});
    ASSERT_TRUE(f.ok()) << v << ": " << f.error().ToString();
    EXPECT_EQ(f->As<img::core_entry>(0).tc().blk_sigset(), UINT64_MAX) << v;
  }
  auto over = ImageFromJson(head + "\"0x10000000000000000\"}}]}", Limits{});
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().what.find("tc.blk_sigset: value out of range"), std::string::npos) << over.error().what;
  auto neg = ImageFromJson(R"({"magic": "PSTREE", "entries": [{"pid": -1, "ppid": 0, "pgid": 1, "sid": 1}]})", Limits{});
  ASSERT_FALSE(neg.ok());
  auto unknown = ImageFromJson(R"({"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "bogus": 2}]})",
                               Limits{});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().what.find("bogus: no such field in pstree_entry"), std::string::npos) << unknown.error().what;
}

TEST(Json, CritsOlderFieldNameMeansTheFieldItNamedThen) {
  // crit 3.17 calls field 2 of pagemap_entry nr_pages; CRIU 4 calls it
  // compat_nr_pages and has a 64-bit nr_pages at 5.
  auto old = ImageFromJson(
      R"({"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": "0x1000", "nr_pages": 3, "flags": "PE_PRESENT"}]})",
      Limits{});
  ASSERT_TRUE(old.ok()) << old.error().ToString();
  const auto& e = old->As<img::pagemap_entry>(1);
  EXPECT_EQ(e.compat_nr_pages(), 3u);
  EXPECT_FALSE(e.has_nr_pages());
  EXPECT_EQ(e.flags(), 4u);
  auto both = ImageFromJson(
      R"({"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": 4096, "compat_nr_pages": 0, "nr_pages": 3}]})",
      Limits{});
  ASSERT_TRUE(both.ok()) << both.error().ToString();
  EXPECT_EQ(both->As<img::pagemap_entry>(1).nr_pages(), 3u);
  EXPECT_EQ(both->As<img::pagemap_entry>(1).compat_nr_pages(), 0u);
}

TEST(Json, NestingIsBoundedAsInBinary) {
  // cgroup directories nest: JSON may not nest them deeper than the limit.
  std::string dirs = R"({"dir_name": "d"})";
  for (int i = 0; i < 40; ++i) dirs = R"({"dir_name": "d", "children": [)" + dirs + "]}";
  auto deep = ImageFromJson(R"({"magic": "CGROUP", "entries": [{"controllers": [{"dirs": [)" + dirs + "]}]}]}", Limits{});
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().what.find("nested too deep"), std::string::npos) << deep.error().what;
  auto flat = ImageFromJson(R"({"magic": "CGROUP", "entries": [{"controllers": [{"dirs": [{"dir_name": "d"}]}]}]})", Limits{});
  EXPECT_TRUE(flat.ok()) << flat.error().ToString();
}

TEST(Json, Base64LinesAreCrits) {
  EXPECT_EQ(Base64EncodeLines(""), "");
  EXPECT_EQ(Base64EncodeLines("hello"), "aGVsbG8=\n");
  std::string line(57, 'a');
  EXPECT_EQ(Base64EncodeLines(line), Base64Encode(line) + "\n");
  EXPECT_EQ(Base64Encode(line).size(), 76u);
  EXPECT_EQ(Base64EncodeLines(line + "b"), Base64Encode(line) + "\n" + Base64Encode("b") + "\n");
}

TEST(Json, RawKindsAndServiceFilesRoundTrip) {
  ImageFile pages;
  pages.kind = KindByName("PAGES");
  pages.entries.push_back(Entry{nullptr, "abc"});
  auto json = ImageToJson(pages, false);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, "{\"magic\":\"PAGES\",\"entries\":[{\"extra\":\"YWJj\\n\"}]}\n");
  auto back = ImageFromJson(*json, Limits{});
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->entries[0].payload, "abc");
  auto raw = ParseImageFile("\x01\x02", "/x/pages-9.img", Limits{});
  ASSERT_TRUE(raw.ok()) << "a raw kind is known by its name, never by a magic";
  EXPECT_EQ(raw->kind->name, "PAGES");

  auto stats = std::make_unique<img::stats_entry>();
  auto* dump = stats->mutable_dump();
  dump->set_freezing_time(1);
  dump->set_frozen_time(2);
  dump->set_memdump_time(3);
  dump->set_memwrite_time(4);
  dump->set_pages_scanned(5);
  dump->set_pages_skipped_parent(6);
  dump->set_pages_written(7);
  dump->set_pages_lazy(0);
  auto bytes = SerializeImage(One(*KindByName("STATS"), std::move(stats)));
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 8), U32(kServiceHeadMagic) + U32(0x57093306));
  auto parsed = ParseImageFile(*bytes, "stats-dump", Limits{});
  ASSERT_TRUE(parsed.ok());
  auto text = ImageToJson(*parsed, false);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*SerializeImage(*ImageFromJson(*text, Limits{})), *bytes);
}

TEST(Json, DecodeRefusesWhatItCannotCarry) {
  auto file = std::make_unique<img::file_entry>();
  file->set_type(img::UNIXSK);
  file->set_id(1);
  file->GetReflection()->MutableUnknownFields(file.get())->AddLengthDelimited(16, "sock");
  auto unknown = ImageToJson(One(FilesKind(), std::move(file)), false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().what.find("file_entry holds field 16"), std::string::npos) << unknown.error().what;

  auto core = std::make_unique<img::core_entry>();
  core->set_mtype(img::core_entry::X86_64);
  auto* tc = core->mutable_tc();
  tc->set_task_state(1);
  tc->set_exit_code(0);
  tc->set_personality(0);
  tc->set_flags(0);
  tc->set_blk_sigset(0);
  tc->set_comm("\xff\xfe");
  auto bad = ImageToJson(One(CoreKind(), std::move(core)), false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().what.find("comm is not UTF-8"), std::string::npos) << bad.error().what;
}

}  // namespace
}  // namespace ro::images

// The image layer: framing, magics, limits, JSON, file names.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <set>

#include <cstring>

#include "images/image_file.h"
#include "images/json.h"
#include "images/kinds.h"
#include "images/payloads.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/ipc-var.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/netdev.pb.h"
#include "images/proto/owners.pb.h"
#include "images/proto/posix-mqueue.pb.h"
#include "images/proto/utsns.pb.h"
#include "test/helpers/test_util.h"

namespace ro::images {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

ImageFile Pstree(std::initializer_list<uint32_t> pids) {
  ImageFile f;
  f.kind = &PstreeKind();
  for (uint32_t pid : pids) {
    auto m = std::make_unique<img::pstree_entry>();
    m->set_pid(pid);
    m->set_ppid(pid == 1 ? 0 : 1);
    m->set_pgid(1);
    m->set_sid(1);
    m->add_threads(pid);
    f.entries.push_back(Entry{std::move(m), {}});
  }
  return f;
}

void ExpectSameFile(const ImageFile& a, const ImageFile& b) {
  ASSERT_EQ(a.kind, b.kind);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    ASSERT_EQ(a.entries[i].message == nullptr, b.entries[i].message == nullptr);
    if (a.entries[i].message) {
      std::string diff;
      MessageDifferencer d;
      d.ReportDifferencesToString(&diff);
      EXPECT_TRUE(d.Compare(*a.entries[i].message, *b.entries[i].message)) << a.kind->name << " entry " << i << ": " << diff;
    }
    EXPECT_EQ(a.entries[i].payload, b.entries[i].payload);
  }
}

// Every kind of the demo set goes through writer and reader unchanged,
// and through JSON and back unchanged.
TEST(ImageFile, EveryDemoKindRoundTrips) {
  test::ImageSet set = test::DemoImages();
  // The demo tree shares the caller's UTS and IPC namespaces: what a tree
  // of its own has (namespaces_test dumps such trees) is added here.
  auto uts = std::make_unique<img::utsns_entry>();
  uts->set_nodename("box-1");
  uts->set_domainname("example.org");
  auto ipc = std::make_unique<img::ipc_var_entry>();
  for (uint32_t v : {32000u, 1024000000u, 500u, 32000u}) ipc->add_sem_ctls(v);
  ipc->set_msg_ctlmax(8192);
  ipc->set_msg_ctlmnb(16384);
  ipc->set_msg_ctlmni(32000);
  ipc->set_auto_msgmni(0);
  ipc->set_shm_ctlmax(18446744073692774399ull);
  ipc->set_shm_ctlall(18446744073692774399ull);
  ipc->set_shm_ctlmni(4096);
  ipc->set_shm_rmid_forced(0);
  ipc->set_mq_queues_max(256);
  ipc->set_mq_msg_max(10);
  ipc->set_mq_msgsize_max(8192);
  ipc->set_shm_next_id(7);
  auto add = [&](const char* name, const Kind& kind, std::unique_ptr<google::protobuf::Message> entry) {
    ImageFile f;
    f.kind = &kind;
    f.entries.push_back(Entry{std::move(entry), {}});
    set.emplace(name, std::move(f));
  };
  add("utsns-7.img", UtsnsKind(), std::move(uts));
  add("ipcns-var-5.img", IpcVarKind(), std::move(ipc));
  // Its System V objects, each with the payload that follows it.
  auto desc = [](img::ipc_desc_entry* d, uint32_t id) {
    d->set_key(0x1234);
    d->set_uid(1);
    d->set_gid(2);
    d->set_cuid(3);
    d->set_cgid(4);
    d->set_mode(0600);
    d->set_id(id);
  };
  auto with_payload = [&](const char* name, const Kind& kind, std::unique_ptr<google::protobuf::Message> entry, std::string payload) {
    ImageFile f;
    f.kind = &kind;
    f.entries.push_back(Entry{std::move(entry), std::move(payload)});
    set.emplace(name, std::move(f));
  };
  auto seg = std::make_unique<img::ipc_shm_entry>();
  desc(seg->mutable_desc(), 1);
  seg->set_size(6);
  with_payload("ipcns-shm-5.img", IpcShmKind(), std::move(seg), std::string("shmem!\0\0", 8));
  auto queue = std::make_unique<img::ipc_msg_entry>();
  desc(queue->mutable_desc(), 2);
  queue->set_qbytes(100);
  queue->set_qnum(2);
  with_payload("ipcns-msg-5.img", IpcMsgKind(), std::move(queue), MsgQueuePayload({{3, "message"}, {1, ""}}));
  auto sems = std::make_unique<img::ipc_sem_entry>();
  desc(sems->mutable_desc(), 3);
  sems->set_nsems(5);
  with_payload("ipcns-sem-5.img", IpcSemKind(), std::move(sems), SemPayload({1, 2, 3, 4, 5}));
  // Who owns a pipe root does not (attrs_test dumps one).
  auto owner = std::make_unique<img::pipe_owner_entry>();
  owner->set_pipe_id(11);
  owner->set_uid(1000);
  owner->set_gid(1001);
  add("pipe-owners.img", PipeOwnersKind(), std::move(owner));
  // POSIX message queues of an IPC namespace (namespaces_test dumps them).
  auto mq = std::make_unique<img::posix_mqueue_entry>();
  mq->set_name("jobs");
  mq->set_uid(1000);
  mq->set_gid(1001);
  mq->set_mode(0640);
  mq->set_maxmsg(8);
  mq->set_msgsize(128);
  mq->add_messages()->set_prio(7);
  mq->mutable_messages(0)->set_data(std::string("beta\0", 5));
  add("posix-mqueues-5.img", PosixMqueuesKind(), std::move(mq));
  // A network namespace of its own (netns_test dumps such trees): its
  // sysctls, its loopback, and the raw files CRIU writes beside them.
  auto netns = std::make_unique<img::netns_entry>();
  netns->add_all_conf4()->set_type(img::CTL_32);
  netns->mutable_all_conf4(0)->set_iarg(1);
  netns->add_def_conf6()->set_type(img::CTL_STR);
  netns->mutable_def_conf6(0)->set_sarg("::1");
  netns->add_unix_conf()->set_type(img::CTL_32);
  add("netns-9.img", NetnsKind(), std::move(netns));
  auto lo = std::make_unique<img::net_device_entry>();
  lo->set_type(img::LOOPBACK);
  lo->set_ifindex(1);
  lo->set_mtu(65536);
  lo->set_flags(0x10049);
  lo->set_name("lo");
  lo->set_address(std::string(6, '\0'));
  add("netdev-9.img", NetdevKind(), std::move(lo));
  for (const char* raw : {"ifaddr-9.img", "route-9.img", "route6-9.img", "rule-9.img", "iptables-9.img", "ip6tables-9.img", "nftables-9.img"}) {
    ImageFile f;
    f.kind = ParseFileName(raw)->kind;
    f.entries.push_back(Entry{nullptr, std::string("\x22\x12\x36\x47", 4)});
    set.emplace(raw, std::move(f));
  }
  std::set<std::string_view> kinds;
  for (const auto& [name, file] : set) {
    auto bytes = SerializeImage(file);
    ASSERT_TRUE(bytes.ok()) << name << ": " << bytes.error().ToString();
    auto back = ParseImage(*bytes, file.kind, Limits{});
    ASSERT_TRUE(back.ok()) << name << ": " << back.error().ToString();
    ExpectSameFile(file, *back);
    auto json = ImageToJson(file, false);
    ASSERT_TRUE(json.ok());
    auto from_json = ImageFromJson(*json, Limits{});
    ASSERT_TRUE(from_json.ok()) << from_json.error().ToString();
    ExpectSameFile(file, *from_json);
    kinds.insert(file.kind->name);
  }
  // The demo set must keep covering every kind restore-orch reads; memory
  // kinds come from real dumps (the CRIU fixtures, interop_fixtures_test).
  const std::set<std::string_view> memory = {"MM", "PAGEMAP", "SHMEM_PAGEMAP", "PAGES", "MEMFD_INODE"};
  for (const Kind& k : AllKinds()) {
    if (!k.restored || memory.count(k.name)) continue;
    EXPECT_TRUE(kinds.count(k.name)) << "demo set lacks a " << k.name << " image";
  }
}

TEST(ImageFile, HeadAndTypeMagicsAreCrius) {
  auto bytes = SerializeImage(Pstree({1}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 8), U32(0x54564319) + U32(0x50273030));
  ImageFile inv;
  inv.kind = &InventoryKind();
  auto m = NewMessage(InventoryKind());
  m->GetReflection()->SetUInt32(m.get(), m->GetDescriptor()->FindFieldByName("img_version"), 2);
  inv.entries.push_back(Entry{std::move(m), {}});
  auto inv_bytes = SerializeImage(inv);
  ASSERT_TRUE(inv_bytes.ok());
  EXPECT_EQ(inv_bytes->substr(0, 4), U32(0x58313116)) << "inventory.img has no head magic";
}

TEST(ImageFile, DetectsKindFromMagicWithOrWithoutHead) {
  auto bytes = SerializeImage(Pstree({1, 2}));
  ASSERT_TRUE(bytes.ok());
  auto a = ParseImage(*bytes, nullptr, Limits{});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind, &PstreeKind());
  auto b = ParseImage(bytes->substr(4), nullptr, Limits{});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->entries.size(), 2u);
}

TEST(ImageFile, TruncationsAreErrorsNamingTheEntry) {
  auto bytes = SerializeImage(Pstree({1, 2, 3}));
  ASSERT_TRUE(bytes.ok());
  auto cut_size = ParseImage(bytes->substr(0, bytes->size() - 1), &PstreeKind(), Limits{});
  ASSERT_FALSE(cut_size.ok());
  EXPECT_EQ(cut_size.error().context, "entry 2");
  EXPECT_NE(cut_size.error().what.find("truncated entry"), std::string::npos);
  std::string partial_word = *bytes + std::string("\x05\x00", 2);
  auto cut_word = ParseImage(partial_word, &PstreeKind(), Limits{});
  ASSERT_FALSE(cut_word.ok());
  EXPECT_EQ(cut_word.error().context, "entry 3");
  EXPECT_NE(cut_word.error().what.find("truncated size word"), std::string::npos);
}

TEST(ImageFile, LimitsBoundEntriesSizesAndStrings) {
  auto bytes = SerializeImage(Pstree({1, 2, 3}));
  ASSERT_TRUE(bytes.ok());
  Limits few;
  few.max_entries = 2;
  auto r = ParseImage(*bytes, &PstreeKind(), few);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("more than 2 entries"), std::string::npos);

  std::string huge = U32(0x54564319) + U32(0x50273030) + U32(0xfffffff0);
  auto h = ParseImage(huge, &PstreeKind(), Limits{});
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().what.find("exceeds the limit"), std::string::npos);

  ImageFile core;
  core.kind = &CoreKind();
  auto c = std::make_unique<img::core_entry>();
  c->set_mtype(img::core_entry::X86_64);
  auto* tc = c->mutable_tc();
  tc->set_task_state(1);
  tc->set_exit_code(0);
  tc->set_personality(0);
  tc->set_flags(0);
  tc->set_blk_sigset(0);
  tc->set_comm(std::string(5000, 'x'));
  core.entries.push_back(Entry{std::move(c), {}});
  auto core_bytes = SerializeImage(core);
  ASSERT_TRUE(core_bytes.ok());
  Limits short_strings;
  short_strings.max_string_bytes = 4096;
  auto s = ParseImage(*core_bytes, &CoreKind(), short_strings);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what.find("field comm is 5000 bytes"), std::string::npos);
}

TEST(ImageFile, MissingRequiredFieldIsNamed) {
  img::pstree_entry e;
  e.set_pid(1);  // ppid, pgid, sid missing
  std::string body = e.SerializePartialAsString();
  std::string file = U32(0x54564319) + U32(0x50273030) + U32(static_cast<uint32_t>(body.size())) + body;
  auto r = ParseImage(file, &PstreeKind(), Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("ppid"), std::string::npos) << r.error().what;
}

TEST(ImageFile, PayloadFollowsPipeDataEntries) {
  ImageFile f;
  f.kind = &PipesDataKind();
  auto m = std::make_unique<img::pipe_data_entry>();
  m->set_pipe_id(7);
  m->set_bytes(3);
  m->set_size(4096);
  f.entries.push_back(Entry{std::move(m), "abc"});
  auto bytes = SerializeImage(f);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(bytes->size() - 3), "abc");
  auto r = ParseImage(bytes->substr(0, bytes->size() - 1), &PipesDataKind(), Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("truncated payload"), std::string::npos);
  f.entries[0].payload = "ab";
  EXPECT_FALSE(SerializeImage(f).ok()) << "bytes and payload disagree";
}

// The System V IPC kinds as crit shows them (lib/pycriu/images/images.py:
// a set's values as a list, a queue's messages as [ipc_msg, base64, ...],
// a segment's contents as base64), read, written as CRIU lays the bytes
// out (each message's text and the values padded to 8 bytes, a segment's
// contents to 4) and shown again.
TEST(Json, SystemVKindsReadAndWriteCritsLayout) {
  const std::string sem =
      R"({"magic": "IPCNS_SEM", "entries": [{"desc": {"key": 13398, "uid": 1000, "gid": 1001, "cuid": 1000, "cgid": 1001, "mode": 432, "id": 0}, "nsems": 3, "extra": [1, 5, 32767]}]})";
  const std::string msg =
      R"({"magic": "IPCNS_MSG", "entries": [{"desc": {"key": 9029, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 400, "id": 42}, "qbytes": 16384, "qnum": 2, "extra": [{"mtype": 1, "msize": 3}, "b25l\n", {"mtype": 7, "msize": 0}, ""]}]})";
  const std::string shm =
      R"({"magic": "IPCNS_SHM", "entries": [{"desc": {"key": 4660, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 416, "id": 0}, "size": 5, "extra": "aGVsbG8=\n"}, {"desc": {"key": 0, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 384, "id": 32768}, "size": 100, "in_pagemaps": true, "extra": ""}]})";
  for (const auto& [text, payloads] : {std::pair<std::string, std::vector<size_t>>{sem, {8}}, {msg, {2 * 4 + 4 + 8 + 4 + 0}}, {shm, {8, 0}}}) {
    auto f = ImageFromJson(text, Limits{});
    ASSERT_TRUE(f.ok()) << f.error().ToString();
    ASSERT_EQ(f->entries.size(), payloads.size());
    for (size_t i = 0; i < payloads.size(); ++i) EXPECT_EQ(f->entries[i].payload.size(), payloads[i]) << text;
    auto bytes = SerializeImage(*f);
    ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
    auto back = ParseImage(*bytes, f->kind, Limits{});
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    auto json = ImageToJson(*back, false);
    ASSERT_TRUE(json.ok());
    EXPECT_EQ(crit::Json::parse(*json), crit::Json::parse(text));
  }
  auto f = ImageFromJson(msg, Limits{});
  ASSERT_TRUE(f.ok());
  auto messages = MsgQueueMessages(f->As<img::ipc_msg_entry>(0), f->entries[0].payload);
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(messages->size(), 2u);
  EXPECT_EQ((*messages)[0].text, "one");
  EXPECT_EQ((*messages)[1].mtype, 7u);
  // Hostile: a queue that says three messages and holds two; a set whose
  // values are not its nsems; a segment whose contents are cut off.
  static_cast<img::ipc_msg_entry&>(*f->entries[0].message).set_qnum(3);
  std::string body;
  ASSERT_TRUE(f->entries[0].message->SerializeToString(&body));
  std::string file = U32(0x54564319) + U32(0x55453737) + U32(static_cast<uint32_t>(body.size())) + body + f->entries[0].payload;
  auto r = ParseImage(file, &IpcMsgKind(), Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("message 2 of 3: a message's size word is cut off"), std::string::npos) << r.error().ToString();
  EXPECT_FALSE(SerializeImage(*f).ok()) << "qnum and messages disagree";
  EXPECT_FALSE(ImageFromJson(R"({"magic": "IPCNS_SEM", "entries": [{"desc": {"key": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 384, "id": 0}, "nsems": 2, "extra": [1]}]})",
                             Limits{}).ok());
  EXPECT_FALSE(ImageFromJson(R"({"magic": "IPCNS_SEM", "entries": [{"desc": {"key": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 384, "id": 0}, "nsems": 1, "extra": [70000]}]})",
                             Limits{}).ok());
  auto s = ImageFromJson(shm, Limits{});
  ASSERT_TRUE(s.ok());
  auto sb = SerializeImage(*s);
  ASSERT_TRUE(sb.ok());
  auto cut = ParseImage(sb->substr(0, sb->size() - 40), &IpcShmKind(), Limits{});  // into the first segment's contents
  EXPECT_FALSE(cut.ok());
}

TEST(ImageFile, SingleEntryKindsHoldExactlyOne) {
  std::string empty_core = U32(0x54564319) + U32(0x55053847);
  auto r = ParseImage(empty_core, &CoreKind(), Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("exactly one entry"), std::string::npos);
}

TEST(Kinds, FileNamesFollowCrius) {
  EXPECT_EQ(MakeFileName(CoreKind(), 42), "core-42.img");
  EXPECT_EQ(MakeFileName(MountpointsKind(), 4026531841u), "mountpoints-4026531841.img");
  EXPECT_EQ(MakeFileName(PipesDataKind()), "pipes-data.img");
  auto f = ParseFileName("fdinfo-3.img");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, &FdinfoKind());
  EXPECT_EQ(*f->key, 3u);
  EXPECT_FALSE(ParseFileName("core-.img"));
  EXPECT_FALSE(ParseFileName("core-01.img"));
  EXPECT_FALSE(ParseFileName("core-99999999999.img"));
  auto ipc = ParseFileName("cgroup.img");  // known, not restored
  ASSERT_TRUE(ipc);
  EXPECT_FALSE(ipc->kind->restored);
  auto utsns = ParseFileName("utsns-1.img");
  ASSERT_TRUE(utsns);
  EXPECT_TRUE(utsns->kind->restored);
  EXPECT_FALSE(ParseFileName("pstree.img.bak"));
}

TEST(Json, Base64RoundTripsAndRejectsGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto back = Base64Decode(Base64Encode(s) + "\n");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64Encode("hello world\n"), "aGVsbG8gd29ybGQK");
  EXPECT_FALSE(Base64Decode("a$==").ok());
  EXPECT_FALSE(Base64Decode("QQ=A").ok());
}

TEST(Json, ReadsCritsLayout) {
  std::string crit =
      R"({"magic": "PIPES_DATA", "entries": [{"pipe_id": 1234, "bytes": 5, "size": 65536, "extra": "aGVsbG8=\n"}]})";
  auto f = ImageFromJson(crit, Limits{});
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->entries[0].payload, "hello");
  EXPECT_EQ(f->As<img::pipe_data_entry>(0).pipe_id(), 1234u);
  EXPECT_FALSE(ImageFromJson(R"({"magic": "NOPE", "entries": []})", Limits{}).ok());
  EXPECT_FALSE(ImageFromJson(R"({"magic": "PSTREE", "entries": [{"pid": 1}]})", Limits{}).ok());
  EXPECT_FALSE(ImageFromJson("[1,2", Limits{}).ok());
}

}  // namespace
}  // namespace ro::images

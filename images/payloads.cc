#include "images/payloads.h"

#include <cstring>

#include "images/json.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "images/proto/pipe-data.pb.h"

namespace ro::images {
namespace {

using crit::Json;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// The bytes one message takes: its size word, its ipc_msg, its padded text.
Result<std::pair<img::ipc_msg, size_t>> ReadMessage(std::string_view rest) {
  if (rest.size() < 4) return Fail("a message's size word is cut off");
  uint32_t size = 0;
  std::memcpy(&size, rest.data(), 4);
  if (rest.size() - 4 < size) return Fail("a message entry is cut off");
  img::ipc_msg msg;
  if (!msg.ParseFromArray(rest.data() + 4, static_cast<int>(size))) return Fail("a malformed ipc_msg entry");
  uint64_t text = RoundUp(msg.msize(), 8);
  if (rest.size() - 4 - size < text) return Fail("the text of a message of " + std::to_string(msg.msize()) + " bytes is cut off");
  return std::make_pair(std::move(msg), static_cast<size_t>(4 + size + text));
}

// The fixed payload size of the kinds whose entry says it.
uint64_t FixedSize(const Kind& kind, const google::protobuf::Message& entry) {
  switch (kind.payload) {
    case Payload::kBytesField: return static_cast<const img::pipe_data_entry&>(entry).bytes();
    case Payload::kShm: {
      const auto& e = static_cast<const img::ipc_shm_entry&>(entry);
      return e.in_pagemaps() ? 0 : RoundUp(e.size(), 4);
    }
    case Payload::kSemValues: return RoundUp(2ull * static_cast<const img::ipc_sem_entry&>(entry).nsems(), 8);
    case Payload::kMsgQueue: break;
  }
  return 0;
}

}  // namespace

Result<size_t> PayloadSize(const Kind& kind, const google::protobuf::Message& entry, std::string_view rest, const Limits& limits) {
  uint64_t n = 0;
  if (kind.payload == Payload::kMsgQueue) {
    const auto& q = static_cast<const img::ipc_msg_entry&>(entry);
    for (uint32_t i = 0; i < q.qnum(); ++i) {
      auto m = ReadMessage(rest.substr(std::min<uint64_t>(n, rest.size())));
      if (!m.ok()) return Fail("message " + std::to_string(i) + " of " + std::to_string(q.qnum()) + ": " + m.error().what);
      n += m->second;
      if (n > limits.max_payload_bytes) break;
    }
  } else {
    n = FixedSize(kind, entry);
  }
  if (n > limits.max_payload_bytes) {
    return Fail("payload of " + std::to_string(n) + " bytes exceeds the limit " + std::to_string(limits.max_payload_bytes));
  }
  if (rest.size() < n) return Fail("truncated payload: " + std::to_string(rest.size()) + " of " + std::to_string(n) + " bytes");
  return static_cast<size_t>(n);
}

Result<Json> PayloadToJson(const Kind& kind, const google::protobuf::Message& entry, std::string_view payload) {
  switch (kind.payload) {
    case Payload::kBytesField: return Json(Base64EncodeLines(payload));
    case Payload::kShm: return Json(Base64EncodeLines(ShmContents(static_cast<const img::ipc_shm_entry&>(entry), payload)));
    case Payload::kSemValues: {
      RO_ASSIGN_OR_RETURN(std::vector<uint16_t> values, SemValues(static_cast<const img::ipc_sem_entry&>(entry), payload));
      return Json(values);
    }
    case Payload::kMsgQueue: {
      RO_ASSIGN_OR_RETURN(std::vector<SysvMessage> messages,
                          MsgQueueMessages(static_cast<const img::ipc_msg_entry&>(entry), payload));
      Json out = Json::array();
      for (const SysvMessage& m : messages) {
        img::ipc_msg msg;
        msg.set_mtype(m.mtype);
        msg.set_msize(static_cast<uint32_t>(m.text.size()));
        RO_ASSIGN_OR_RETURN(Json head, crit::MessageToJson(msg, false));
        out.push_back(std::move(head));
        out.push_back(Base64EncodeLines(m.text));
      }
      return out;
    }
  }
  return Fail("unknown payload layout");
}

Result<std::string> PayloadFromJson(const Kind& kind, const google::protobuf::Message& entry, const Json& extra,
                                    const Limits& limits) {
  auto base64 = [&](const Json& j) -> Result<std::string> {
    if (!j.is_string()) return Fail("\"extra\" is not a base64 string");
    RO_ASSIGN_OR_RETURN(std::string bytes, Base64Decode(j.get<std::string>()));
    if (bytes.size() > limits.max_payload_bytes) {
      return Fail("payload of " + std::to_string(bytes.size()) + " bytes exceeds the limit " + std::to_string(limits.max_payload_bytes));
    }
    return bytes;
  };
  std::string out;
  switch (kind.payload) {
    case Payload::kBytesField: return base64(extra);
    case Payload::kShm: {
      const auto& e = static_cast<const img::ipc_shm_entry&>(entry);
      RO_ASSIGN_OR_RETURN(out, base64(extra));
      // crit shows a segment whose contents are in pagemaps with "extra": "".
      if (e.in_pagemaps()) {
        if (!out.empty()) return Fail("a segment whose contents are in pagemaps has no contents of its own");
        return out;
      }
      if (out.size() != e.size()) return Fail("\"extra\" holds " + std::to_string(out.size()) + " bytes, the segment " + std::to_string(e.size()));
      out.resize(RoundUp(out.size(), 4), '\0');
      return out;
    }
    case Payload::kSemValues: {
      const auto& e = static_cast<const img::ipc_sem_entry&>(entry);
      if (!extra.is_array() || extra.size() != e.nsems()) return Fail("\"extra\" is not a list of nsems (" + std::to_string(e.nsems()) + ") values");
      std::vector<uint16_t> values;
      for (const Json& v : extra) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT16_MAX) return Fail("a semaphore value is not a number from 0 to 65535");
        values.push_back(static_cast<uint16_t>(v.get<uint64_t>()));
      }
      return SemPayload(values);
    }
    case Payload::kMsgQueue: {
      const auto& e = static_cast<const img::ipc_msg_entry&>(entry);
      if (!extra.is_array() || extra.size() != 2ull * e.qnum()) return Fail("\"extra\" is not qnum (" + std::to_string(e.qnum()) + ") pairs of message and text");
      std::vector<SysvMessage> messages;
      uint64_t total = 0;
      for (size_t i = 0; i < extra.size(); i += 2) {
        img::ipc_msg msg;
        if (Status s = crit::MessageFromJson(extra[i], &msg, limits.max_nesting); !s.ok()) return std::move(s).error().Within("message " + std::to_string(i / 2));
        RO_ASSIGN_OR_RETURN(std::string text, base64(extra[i + 1]));
        if (text.size() != msg.msize()) return Fail("message " + std::to_string(i / 2) + ": msize is " + std::to_string(msg.msize()) + ", its text " + std::to_string(text.size()) + " bytes");
        total += text.size();
        if (total > limits.max_payload_bytes) return Fail("the messages exceed the payload limit " + std::to_string(limits.max_payload_bytes));
        messages.push_back(SysvMessage{msg.mtype(), std::move(text)});
      }
      return MsgQueuePayload(messages);
    }
  }
  return Fail("unknown payload layout");
}

Result<std::vector<SysvMessage>> MsgQueueMessages(const img::ipc_msg_entry& queue, std::string_view payload) {
  std::vector<SysvMessage> out;
  size_t at = 0;
  for (uint32_t i = 0; i < queue.qnum(); ++i) {
    auto m = ReadMessage(payload.substr(at));
    if (!m.ok()) return Fail("message " + std::to_string(i) + ": " + m.error().what);
    size_t text_at = at + m->second - RoundUp(m->first.msize(), 8);
    out.push_back(SysvMessage{m->first.mtype(), std::string(payload.substr(text_at, m->first.msize()))});
    at += m->second;
  }
  if (at != payload.size()) return Fail(std::to_string(payload.size() - at) + " bytes after the last message");
  return out;
}

std::string MsgQueuePayload(const std::vector<SysvMessage>& messages) {
  std::string out;
  for (const SysvMessage& m : messages) {
    img::ipc_msg msg;
    msg.set_mtype(m.mtype);
    msg.set_msize(static_cast<uint32_t>(m.text.size()));
    std::string body = msg.SerializeAsString();
    uint32_t size = static_cast<uint32_t>(body.size());
    out.append(reinterpret_cast<const char*>(&size), 4);
    out += body;
    out += m.text;
    out.resize(out.size() + (RoundUp(m.text.size(), 8) - m.text.size()), '\0');
  }
  return out;
}

Result<std::vector<uint16_t>> SemValues(const img::ipc_sem_entry& set, std::string_view payload) {
  if (payload.size() != RoundUp(2ull * set.nsems(), 8)) {
    return Fail("a set of " + std::to_string(set.nsems()) + " semaphores is followed by " + std::to_string(payload.size()) + " bytes");
  }
  std::vector<uint16_t> values(set.nsems());
  if (!values.empty()) std::memcpy(values.data(), payload.data(), values.size() * 2);
  return values;
}

std::string SemPayload(const std::vector<uint16_t>& values) {
  std::string out(RoundUp(values.size() * 2, 8), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), values.size() * 2);
  return out;
}

std::string_view ShmContents(const img::ipc_shm_entry& segment, std::string_view payload) {
  if (segment.in_pagemaps()) return {};
  return payload.substr(0, std::min<uint64_t>(segment.size(), payload.size()));
}

}  // namespace ro::images

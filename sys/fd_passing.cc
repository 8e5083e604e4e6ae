#include "sys/fd_passing.h"

#include <sys/socket.h>

#include <cstring>

namespace ro::sys {
namespace {

// One byte of data with room for one fd in its control message.
struct OneFdMessage {
  char data = 'f';
  iovec iov{&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  OneFdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  OneFdMessage(const OneFdMessage&) = delete;
  OneFdMessage& operator=(const OneFdMessage&) = delete;
};

}  // namespace

Status SendFd(const UniqueFd& socket, int fd) {
  OneFdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (::sendmsg(socket.get(), &m.msg, MSG_NOSIGNAL) != 1) return SysError("sendmsg(SCM_RIGHTS, fd " + std::to_string(fd) + ")");
  return {};
}

Result<UniqueFd> ReceiveFd(const UniqueFd& socket) {
  OneFdMessage m;
  if (::recvmsg(socket.get(), &m.msg, MSG_CMSG_CLOEXEC) != 1) return SysError("recvmsg(SCM_RIGHTS)");
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return Fail("recvmsg(SCM_RIGHTS): no fd came");
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return UniqueFd(fd);
}

}  // namespace ro::sys

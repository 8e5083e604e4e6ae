#!/usr/bin/env python3
# Writes the crafted inputs of test/fuzz/corpus-tmpfs_fuzz/ (the others are
# CRIU's own tmpfs archives, from test/fixtures/criu-images): archives that
# try to reach outside the directory they are unpacked into, or to pass the
# cap. The fuzz target unpacks into /tmp/root of a scratch tmpfs on /tmp,
# with /tmp/outside/victim and /tmp/outside/dir beside it.
#   test/fuzz/make_tmpfs_seeds.py test/fuzz/corpus-tmpfs_fuzz
import gzip
import io
import sys
import tarfile

out = sys.argv[1]


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", size=None, mode=0o644, dev=(0, 0), pax=None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.size = len(data) if size is None else size
    info.devmajor, info.devminor = dev
    info.mtime = 1700000000
    if pax:
        info.pax_headers = pax
    return info, data


def write(name, entries, compress=False, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            # A hard link or a device with data: tarfile writes what it is told.
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    if compress:
        raw = gzip.compress(raw, mtime=0)
    with open(f"{out}/{name}", "wb") as f:
        f.write(raw)


def write_header_only(name, info):
    # A header that declares more data than follows (the archive ends).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    with open(f"{out}/{name}", "wb") as f:
        f.write(buf.getvalue())


pwn = b"pwned\n"
write("escape-dotdot.tar", [entry("../outside/victim", data=pwn), entry("../outside/dir/new", data=pwn)])
write("escape-absolute.tar", [entry("/tmp/outside/victim", data=pwn), entry("/tmp/outside/dir/new", data=pwn)])
write("escape-symlink-dir.tar", [entry("s", tarfile.SYMTYPE, link="../outside"), entry("s/victim", data=pwn),
                                 entry("s/dir/new", data=pwn)])
write("escape-symlink-absolute.tar", [entry("a", tarfile.SYMTYPE, link="/tmp/outside"), entry("a/victim", data=pwn)])
write("escape-symlink-chain.tar", [entry("d", tarfile.DIRTYPE, mode=0o755), entry("d/up", tarfile.SYMTYPE, link=".."),
                                   entry("d/up/up", tarfile.SYMTYPE, link=".."), entry("d/up/up/outside/victim", data=pwn)])
write("symlink-replaced-by-file.tar", [entry("x", tarfile.SYMTYPE, link="../outside/victim"), entry("x", data=pwn)])
write("symlink-replaced-by-dir.tar", [entry("d", tarfile.SYMTYPE, link="../outside/dir"), entry("d", tarfile.DIRTYPE, mode=0o755),
                                      entry("d/new", data=pwn)])
write("hardlink-dotdot.tar", [entry("h", tarfile.LNKTYPE, link="../outside/victim"),
                              entry("h2", tarfile.LNKTYPE, link="../outside/victim", data=pwn)])
write("hardlink-absolute.tar", [entry("h", tarfile.LNKTYPE, link="/tmp/outside/victim", data=pwn)])
write("hardlink-through-symlink.tar", [entry("s", tarfile.SYMTYPE, link=".."),
                                       entry("h", tarfile.LNKTYPE, link="s/outside/victim", data=pwn)])
write("hardlink-data-into-device.tar", [entry("null", tarfile.CHRTYPE, dev=(1, 3), mode=0o666),
                                        entry("h", tarfile.LNKTYPE, link="null", data=pwn)])
write("hardlink-data-into-fifo.tar", [entry("f", tarfile.FIFOTYPE), entry("h", tarfile.LNKTYPE, link="f", data=pwn)])
write("devices-and-fifo.tar.gz", [entry(".", tarfile.DIRTYPE, mode=0o755), entry("sda", tarfile.BLKTYPE, dev=(8, 0), mode=0o660),
                                  entry("mem", tarfile.CHRTYPE, dev=(1, 1), mode=0o640), entry("fifo", tarfile.FIFOTYPE)],
      compress=True)
# Past the cap (256 KiB in the target): a file's declared size, many small
# files, symlinks long enough that tmpfs gives each a page, and extended
# attributes (kernel memory size= does not count), packed small.
write_header_only("cap-huge-declared-size.tar", entry("big", size=1 << 40)[0])
write("cap-many-small-files.tar.gz", [entry(f"f{i:04}", data=b"x") for i in range(200)], compress=True)
write("cap-long-symlinks.tar", [entry(f"l{i:03}", tarfile.SYMTYPE, link="t" * 200) for i in range(80)])
write("cap-long-symlinks.tar.gz", [entry(f"l{i:04}", tarfile.SYMTYPE, link="t" * 2000) for i in range(1000)], compress=True)
write("cap-xattrs.tar.gz", [entry(f"x{i}", pax={f"SCHILY.xattr.trusted.n{k:02}": "\0" * 60000 for k in range(8)})
                            for i in range(4)], compress=True)
write("xattrs.tar", [entry("x", data=b"data", pax={"SCHILY.xattr.user.note": "a" * 100,
                                                     "SCHILY.xattr.trusted.note": "b" * 100})])
# Sockets (an empty file marked with user.restore-orch.type=socket, made a
# socket inode by the unpacker itself), ACLs and inode flags: what a dump
# writes, and marked entries that try to climb out, go through a symlink,
# replace a file, or carry data.
sock = {"SCHILY.xattr.user.restore-orch.type": "socket"}
write("socket-acl-flags.tar.gz", [entry(".", tarfile.DIRTYPE, mode=0o755, pax={"SCHILY.fflags": "sappnd,nodump"}),
                                  entry("sock", mode=0o751, pax=sock),
                                  entry("acl", data=b"acl", mode=0o674,
                                        pax={"SCHILY.acl.access": "user::rw-,group::r--,other::r--,user::rwx:1000,mask::rwx"}),
                                  entry("d", tarfile.DIRTYPE, mode=0o755,
                                        pax={"SCHILY.acl.default": "user::rw-,group::r--,mask::rwx,other::r--",
                                             "SCHILY.fflags": "schg"}),
                                  entry("d/i", data=b"i", pax={"SCHILY.fflags": "schg"}),
                                  entry("a", data=b"a", pax={"SCHILY.fflags": "sappnd,noatime"}),
                                  entry("h", tarfile.LNKTYPE, link="d/i")], compress=True)
write("socket-escape.tar", [entry("../outside/dir/s", pax=sock), entry("/tmp/outside/dir/s2", pax=sock),
                            entry("l", tarfile.SYMTYPE, link="../outside/dir"), entry("l/s3", pax=sock),
                            entry("./../outside/dir/s4", pax=sock)])
write("socket-replaces.tar", [entry("x", data=b"x"), entry("x", pax=sock)])
write("socket-replaces-symlink.tar", [entry("v", tarfile.SYMTYPE, link="../outside/victim"), entry("v", pax=sock)])
write("socket-with-data.tar", [entry("s", data=pwn, pax=sock)])
write("socket-marker-odd.tar", [entry("s", pax={"SCHILY.xattr.user.restore-orch.type": "fifo"}),
                                entry("d", tarfile.DIRTYPE, pax=sock), entry("t", pax=dict(sock, **{"SCHILY.xattr.trusted.x": "v"}))])
# Flags that a later entry would carry onto what a symlink reaches.
write("flags-then-symlink.tar", [entry("x", data=b"x", pax={"SCHILY.fflags": "schg"}),
                                 entry("x", tarfile.SYMTYPE, link="../outside/victim"),
                                 entry("d", tarfile.DIRTYPE, pax={"SCHILY.fflags": "schg,sappnd"}),
                                 entry("y", tarfile.SYMTYPE, link="../outside/dir", pax={"SCHILY.fflags": "schg"}),
                                 entry("z", tarfile.SYMTYPE, link="../outside/victim",
                                       pax={"SCHILY.acl.access": "user::rwx,group::rwx,other::rwx,user::rwx:0,mask::rwx"})])

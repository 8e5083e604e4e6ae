# `cmake --install` and `cpack -G DEB`: the binary (stripped with
# `cmake --install --strip` and in the package), the action scripts under
# libexec, a man page per command, bash completion, and the reference docs.
include(GNUInstallDirs)

install(TARGETS restore-orch RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS ${CMAKE_SOURCE_DIR}/scripts/restart-autofs-masters.sh
  DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/restore-orch)
foreach(page ${RO_MAN_PAGES})
  install(FILES ${RO_DOCS_DIR}/man/${page}.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()
install(FILES ${RO_DOCS_DIR}/restore-orch.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME restore-orch)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/image-format.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The schemas, for frontends that write images (docs/image-format.md).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/images/proto/ DESTINATION ${CMAKE_INSTALL_DATADIR}/restore-orch/proto
  FILES_MATCHING PATTERN "*.proto")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME restore-orch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "restore-orch developers <dev@restore-orch>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "checkpoint/restore of Linux process trees in CRIU's image format")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "checkpoint/restore of Linux process trees in CRIU's image format
 restore-orch restores a checkpointed process tree from a CRIU-layout image
 directory (PID and mount namespaces, mounts with AutoFS and propagation,
 tasks with exact pids, sessions and groups, pipes and fds, memory) and
 checkpoints one (dump); verify, check and image decode/encode/show (crit's
 JSON) complete it.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The linked libraries (libprotobuf32, libfmt9, libseccomp2, libstdc++6,
# libc6...) are found by dpkg-shlibdeps; libarchive is dlopen()ed
# (orchestrator/tmpfs.cc), so it is named here.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libarchive13")
# crit for the images' other views; automount for AutoFS trees.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "criu, autofs")
include(CPack)

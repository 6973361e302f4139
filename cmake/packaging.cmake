# Installation (`cmake --install`) and the Debian package (`cpack`, in the
# build directory): the binary, man pages and shell completions written by
# the binary from its own command line definition, and the documentation.
# The README's "Installing" explains the use; tests/packaging/test_package.sh
# checks the package (lintian, reproducible, installable, the demo on it).
include(GNUInstallDirs)

# One date for everything the build writes into files: SOURCE_DATE_EPOCH if
# given, else the time of the commit built, so two builds of it match.
if(DEFINED ENV{SOURCE_DATE_EPOCH})
  set(FERRY_SOURCE_DATE_EPOCH "$ENV{SOURCE_DATE_EPOCH}")
else()
  execute_process(COMMAND git log -1 --format=%ct
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    OUTPUT_VARIABLE FERRY_SOURCE_DATE_EPOCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT FERRY_SOURCE_DATE_EPOCH MATCHES "^[0-9]+$")
    set(FERRY_SOURCE_DATE_EPOCH 0)
  endif()
endif()

set(FERRY_DOCS_DIR "${CMAKE_CURRENT_BINARY_DIR}/docs")
# gzip -n: no name or time in the header.
add_custom_command(
  OUTPUT "${FERRY_DOCS_DIR}/written"
  COMMAND "${CMAKE_COMMAND}" -E rm -rf "${FERRY_DOCS_DIR}"
  COMMAND "${CMAKE_COMMAND}" -E env SOURCE_DATE_EPOCH=${FERRY_SOURCE_DATE_EPOCH}
          $<TARGET_FILE:ferry> --write-docs "${FERRY_DOCS_DIR}"
  COMMAND sh -c "gzip -9nf '${FERRY_DOCS_DIR}'/man1/*.1"
  COMMAND sh -c "gzip -9nc '${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/changelog' > '${FERRY_DOCS_DIR}/changelog.gz'"
  COMMAND "${CMAKE_COMMAND}" -E touch "${FERRY_DOCS_DIR}/written"
  DEPENDS ferry cmake/debian/changelog
  COMMENT "Writing ferry's man pages and shell completions"
  VERBATIM)
add_custom_target(ferry_docs ALL DEPENDS "${FERRY_DOCS_DIR}/written")

install(TARGETS ferry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY "${FERRY_DOCS_DIR}/man1/" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        FILES_MATCHING PATTERN "*.1.gz")
install(FILES "${FERRY_DOCS_DIR}/completions/ferry.bash" RENAME ferry
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES "${FERRY_DOCS_DIR}/completions/_ferry"
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
# The optional systemd user units (README.md, "Started by systemd"); not enabled.
install(FILES docs/systemd/ferry.socket docs/systemd/ferry.service DESTINATION lib/systemd/user)
install(FILES README.md cmake/debian/copyright "${FERRY_DOCS_DIR}/changelog.gz"
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# docs/deploy holds the Slurm and Kubernetes examples docs/migrate.md explains.
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md"
        PATTERN "*.sbatch" PATTERN "*.yaml")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "Ferry developers <ferry@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION vcs)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "verified, resumable transfer engine for Git LFS objects")
set(CPACK_PACKAGE_DESCRIPTION "Ferry moves Git LFS objects as git-lfs's custom transfer agent and migrates
whole LFS stores between folders, S3 buckets, Git LFS servers and Proton
Drive. It checks every object's SHA-256 and size, resumes interrupted
transfers from its journal and reports an object copied only once it is
durable.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS git-lfs)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_PRE_BUILD_SCRIPTS "${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/strip-comment.cmake")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/package")
# cpack reads SOURCE_DATE_EPOCH for the times in the archive; it gets the
# build's date even when run without it.
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/cpack-date.cmake"
  "if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})\n  set(ENV{SOURCE_DATE_EPOCH} ${FERRY_SOURCE_DATE_EPOCH})\nendif()\n")
set(CPACK_PROJECT_CONFIG_FILE "${CMAKE_CURRENT_BINARY_DIR}/cpack-date.cmake")
include(CPack)

add_test(NAME e2e.package
  COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/tests/packaging/test_package.sh" $<TARGET_FILE:ferry>
          "${CMAKE_CURRENT_BINARY_DIR}")
set_tests_properties(e2e.package PROPERTIES TIMEOUT 900 LABELS e2e)

# Run by cpack before it packs: drops the compiler's .comment and .note
# sections from the stripped binary, as Debian's own packaging does.
file(GLOB binaries "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/bin/*")
foreach(binary IN LISTS binaries)
  execute_process(COMMAND strip --remove-section=.comment --remove-section=.note "${binary}"
                  RESULT_VARIABLE stripped)
  if(NOT stripped EQUAL 0)
    message(FATAL_ERROR "cannot strip ${binary}")
  endif()
endforeach()

# Locates Debian's libcaf-dev (0.17.x), which installs headers and shared
# libraries but neither a CMake package nor a pkg-config file.
# Defines CAF_VERSION and the imported targets CAF::core, CAF::io and
# CAF::openssl (the names upstream CAF >= 0.18 exports), one per requested
# component.
find_path(CAF_INCLUDE_DIR NAMES caf/config.hpp)

if(CAF_INCLUDE_DIR)
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _ferry_caf_define
       REGEX "^#define CAF_VERSION [0-9]+$")
  string(REGEX MATCH "[0-9]+$" _ferry_caf_number "${_ferry_caf_define}")
  if(_ferry_caf_number)
    # CAF encodes 0.17.6 as 1706: major * 10000 + minor * 100 + patch.
    math(EXPR _ferry_major "${_ferry_caf_number} / 10000")
    math(EXPR _ferry_minor "(${_ferry_caf_number} / 100) % 100")
    math(EXPR _ferry_patch "${_ferry_caf_number} % 100")
    set(CAF_VERSION "${_ferry_major}.${_ferry_minor}.${_ferry_patch}")
  endif()
endif()

if(NOT CAF_FIND_COMPONENTS)
  set(CAF_FIND_COMPONENTS core)
endif()

foreach(_ferry_component IN LISTS CAF_FIND_COMPONENTS)
  find_library(CAF_${_ferry_component}_LIBRARY NAMES caf_${_ferry_component})
  if(CAF_${_ferry_component}_LIBRARY)
    set(CAF_${_ferry_component}_FOUND TRUE)
  endif()
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR
  VERSION_VAR CAF_VERSION
  HANDLE_COMPONENTS)

if(CAF_FOUND)
  find_package(Threads REQUIRED)
  foreach(_ferry_component IN LISTS CAF_FIND_COMPONENTS)
    if(NOT TARGET CAF::${_ferry_component})
      add_library(CAF::${_ferry_component} SHARED IMPORTED)
      set_target_properties(CAF::${_ferry_component} PROPERTIES
        IMPORTED_LOCATION "${CAF_${_ferry_component}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES Threads::Threads)
    endif()
  endforeach()
  if(TARGET CAF::io)
    set_property(TARGET CAF::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::core)
  endif()
endif()

mark_as_advanced(CAF_INCLUDE_DIR CAF_core_LIBRARY CAF_io_LIBRARY CAF_openssl_LIBRARY)

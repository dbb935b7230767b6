# How outpost-agent is linked (OUTPOST_STATIC_AGENT; docs/BENCHMARKS.md, "Agent memory"):
# every library but glibc statically, with unused sections dropped. A shared library costs the
# agent resident memory for its whole symbol and relocation tables; a static one only the pages
# of the code it runs. Debian ships Paho C++ only shared, so it is built here from Debian's
# source package, which scripts/install-deps.sh unpacks into third_party/ (git-ignored).
#
# Included from agent/CMakeLists.txt before the agent's targets. Defines, in that scope:
#   OUTPOST_AGENT_SQLITE       SQLite target for outpost_agent_io (static when found)
#   OUTPOST_AGENT_PAHO         Paho C++ target for outpost-agent (static when built here)
#   OUTPOST_AGENT_STATIC_PAHO  ON when Paho C++ is built from third_party/
#   OUTPOST_AGENT_LINKAGE      static | off | sanitizers | shared-paho | shared-sqlite: what
#                              tests/tools/agent_linkage_test.sh is to expect
#   outpost_static_agent_link(<target>)  the link options, called after add_executable
# Reads OUTPOST_STATIC_AGENT, OUTPOST_SANITIZE, OUTPOST_BUILD_FUZZERS, cmake/paho-cpp-version.txt
# and the cache path OUTPOST_PAHO_CPP_SOURCE_DIR (empty: third_party/paho.mqtt.cpp-<version>).
# Whatever is missing (the Paho C++ source, the wrong version of it, a static library) is a
# warning, and the agent falls back to Debian's shared library: it builds and works, and
# misses only its memory target.

file(STRINGS "${PROJECT_SOURCE_DIR}/cmake/paho-cpp-version.txt" OUTPOST_PAHO_CPP_VERSION
     REGEX "^[0-9]" LIMIT_COUNT 1)
if(NOT OUTPOST_PAHO_CPP_VERSION)
  message(FATAL_ERROR "cmake/paho-cpp-version.txt names no version (a line such as 1.2.0)")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${PROJECT_SOURCE_DIR}/cmake/paho-cpp-version.txt")

set(OUTPOST_AGENT_SQLITE SQLite::SQLite3)
set(OUTPOST_AGENT_PAHO PahoMqttCpp::paho-mqttpp3)
set(OUTPOST_AGENT_STATIC_PAHO OFF)
set(OUTPOST_AGENT_LINKAGE off)
if(OUTPOST_STATIC_AGENT)
  # Empty means third_party/paho.mqtt.cpp-<version>, so a new version needs no fresh cache.
  set(OUTPOST_PAHO_CPP_SOURCE_DIR "" CACHE PATH
      "Unpacked Debian source package paho.mqtt.cpp (empty: third_party/, scripts/install-deps.sh)")
  set(paho_cpp_dir "${OUTPOST_PAHO_CPP_SOURCE_DIR}")
  if(NOT paho_cpp_dir)
    set(paho_cpp_dir "${PROJECT_SOURCE_DIR}/third_party/paho.mqtt.cpp-${OUTPOST_PAHO_CPP_VERSION}")
  endif()
  find_library(OUTPOST_SQLITE3_STATIC NAMES libsqlite3.a)
  find_library(OUTPOST_PAHO_C_STATIC NAMES libpaho-mqtt3as.a)
  find_library(OUTPOST_SSL_STATIC NAMES libssl.a)
  find_library(OUTPOST_CRYPTO_STATIC NAMES libcrypto.a)

  if(OUTPOST_SQLITE3_STATIC)
    add_library(outpost_sqlite3_static STATIC IMPORTED)
    set_target_properties(outpost_sqlite3_static PROPERTIES
      IMPORTED_LOCATION ${OUTPOST_SQLITE3_STATIC}
      INTERFACE_INCLUDE_DIRECTORIES "${SQLite3_INCLUDE_DIRS}"
      INTERFACE_LINK_LIBRARIES "m;${CMAKE_DL_LIBS};Threads::Threads")
    set(OUTPOST_AGENT_SQLITE outpost_sqlite3_static)
  else()
    message(WARNING "OUTPOST_STATIC_AGENT: no libsqlite3.a (Debian package libsqlite3-dev); "
                    "outpost-agent uses the shared libsqlite3")
  endif()

  # The source tree must be there and be the version this build expects: its own CMake
  # project() line states it.
  set(missing "")
  set(paho_cpp_project "${paho_cpp_dir}/CMakeLists.txt")
  if(NOT EXISTS "${paho_cpp_dir}/src/async_client.cpp"
     OR NOT EXISTS "${paho_cpp_project}")
    string(CONCAT what "the Paho C++ ${OUTPOST_PAHO_CPP_VERSION} source in "
                       "${paho_cpp_dir} (run scripts/install-deps.sh: it unpacks "
                       "Debian's source package paho.mqtt.cpp there)")
    list(APPEND missing "${what}")
  else()
    file(STRINGS "${paho_cpp_project}" found_version REGEX "^[ \t]*VERSION \"[0-9.]+\"")
    string(REGEX MATCH "[0-9.]+" found_version "${found_version}")
    if(NOT found_version VERSION_EQUAL OUTPOST_PAHO_CPP_VERSION)
      string(CONCAT what "Paho C++ ${OUTPOST_PAHO_CPP_VERSION} (cmake/paho-cpp-version.txt) in "
                         "${paho_cpp_dir}, which holds version '${found_version}'")
      list(APPEND missing "${what}")
    endif()
  endif()
  foreach(lib OUTPOST_PAHO_C_STATIC OUTPOST_SSL_STATIC OUTPOST_CRYPTO_STATIC)
    if(NOT ${lib})
      list(APPEND missing "${lib} (Debian packages libpaho-mqtt-dev, libssl-dev)")
    endif()
  endforeach()
  if(missing)
    list(JOIN missing "; " missing)
    message(WARNING "OUTPOST_STATIC_AGENT: missing ${missing}. outpost-agent links Debian's "
                    "shared Paho C++ instead and misses its memory target (docs/BENCHMARKS.md).")
  else()
    set(OUTPOST_AGENT_STATIC_PAHO ON)
    add_library(outpost_crypto_static STATIC IMPORTED)
    set_target_properties(outpost_crypto_static PROPERTIES
      IMPORTED_LOCATION ${OUTPOST_CRYPTO_STATIC}
      INTERFACE_LINK_LIBRARIES "${CMAKE_DL_LIBS};Threads::Threads")
    add_library(outpost_ssl_static STATIC IMPORTED)
    set_target_properties(outpost_ssl_static PROPERTIES
      IMPORTED_LOCATION ${OUTPOST_SSL_STATIC}
      INTERFACE_LINK_LIBRARIES outpost_crypto_static)
    add_library(outpost_paho_c_static STATIC IMPORTED)
    set_target_properties(outpost_paho_c_static PROPERTIES
      IMPORTED_LOCATION ${OUTPOST_PAHO_C_STATIC}
      INTERFACE_LINK_LIBRARIES "outpost_ssl_static;Threads::Threads")

    # Paho C++ as its own CMake builds it (C++11), as a static library of ours.
    file(GLOB paho_cpp_sources CONFIGURE_DEPENDS "${paho_cpp_dir}/src/*.cpp")
    add_library(outpost_paho_cpp STATIC ${paho_cpp_sources})
    target_include_directories(outpost_paho_cpp SYSTEM PUBLIC "${paho_cpp_dir}/src")
    target_compile_features(outpost_paho_cpp PRIVATE cxx_std_11)
    target_compile_options(outpost_paho_cpp PRIVATE -w)  # third-party code: not our warnings
    target_link_libraries(outpost_paho_cpp PUBLIC outpost_paho_c_static)
    set(OUTPOST_AGENT_PAHO outpost_paho_cpp)
  endif()

  # Sanitizer runtimes are shared libraries whatever we link statically.
  if(OUTPOST_SANITIZE OR OUTPOST_BUILD_FUZZERS)
    set(OUTPOST_AGENT_LINKAGE sanitizers)
  elseif(NOT OUTPOST_AGENT_STATIC_PAHO)
    set(OUTPOST_AGENT_LINKAGE shared-paho)
  elseif(NOT OUTPOST_SQLITE3_STATIC)
    set(OUTPOST_AGENT_LINKAGE shared-sqlite)
  else()
    set(OUTPOST_AGENT_LINKAGE static)
  endif()
endif()

# outpost_static_agent_link(<target>): the link options of the static agent, for <target>
# (outpost-agent), and the OUTPOST_LINKAGE property tests read from it.
function(outpost_static_agent_link target)
  set_property(TARGET ${target} PROPERTY OUTPOST_LINKAGE ${OUTPOST_AGENT_LINKAGE})
  if(NOT OUTPOST_STATIC_AGENT)
    return()
  endif()
  # Section GC needs every function and object in a section of its own: the agent's code,
  # outpost_common (the other programs link it too, unaffected) and Paho C++ get it;
  # Debian's static libraries are taken as they are.
  foreach(t ${target} outpost_agent_core outpost_agent_io outpost_common outpost_common_http
           outpost_common_mqtt outpost_common_sqlite)
    target_compile_options(${t} PRIVATE -ffunction-sections -fdata-sections)
  endforeach()
  if(OUTPOST_AGENT_STATIC_PAHO)
    target_compile_options(outpost_paho_cpp PRIVATE -ffunction-sections -fdata-sections)
    # Nothing shared needs libstdc++ any more: link it (and libgcc) in too.
    target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
  target_link_options(${target} PRIVATE -Wl,-O1 -Wl,--gc-sections -Wl,--as-needed)
  # A static OpenSSL brings 24,000 relative relocations into the position-independent agent:
  # 590 KB of .rela.dyn that the loader reads in full at every start. DT_RELR packs them into
  # 7 KB (binutils 2.38 and glibc 2.36, both in Debian 12); PIE and its ASLR stay.
  include(CheckLinkerFlag)
  check_linker_flag(CXX "-Wl,-z,pack-relative-relocs" OUTPOST_LINKER_HAS_RELR)
  if(OUTPOST_LINKER_HAS_RELR)
    target_link_options(${target} PRIVATE -Wl,-z,pack-relative-relocs)
  endif()
endfunction()

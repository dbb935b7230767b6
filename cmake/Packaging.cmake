# Debian packages with CPack (DEB generator): outpost-agent, outpost-collector, outpost-tools,
# one per install component (agent, collector, tools). Included from the top CMakeLists.txt
# after the programs, whose CMakeLists install their binaries; this file installs the rest
# (configuration files, systemd units, docs) and describes the packages.
#   scripts/package.sh                 the .debs into build/packages/ (cpack -G DEB)
#   scripts/package.sh --install-test  also installs, checks and purges them on this machine
#   scripts/cross-arm64.sh --package   the arm64 .debs from the cross build
# docs/operations.md, "Installing the packages", says what each one holds and does.
#
# Paths are Debian's: programs in /usr/bin (the packaging prefix is /usr, whatever
# CMAKE_INSTALL_PREFIX a developer's `cmake --install` uses), configuration in /etc/outpost,
# units in /lib/systemd/system (Debian 12 keeps packaged units there, not in /usr/lib).

set(OUTPOST_PACKAGE_MAINTAINER "Outpost developers <dev@outpost.invalid>" CACHE STRING
    "Maintainer field of the Debian packages (name <address>)")

# The programs the packages ship. Linked with full RELRO (-z now: the GOT read-only after
# start-up), as Debian's dpkg-buildflags links; the compile flags are the project's own.
set(outpost_programs outpost-agent outpost-collector outpost-sim outpost-wire)
foreach(t IN LISTS outpost_programs)
  target_link_options(${t} PRIVATE LINKER:-z,relro,-z,now)
endforeach()
# What the packages hold that is built: scripts/package.sh builds this target, then cpack.
add_custom_target(outpost_packaged DEPENDS ${outpost_programs})

set(outpost_pkg_dir "${PROJECT_SOURCE_DIR}/packaging")
set(outpost_pkg_gen "${PROJECT_BINARY_DIR}/packaging")
set(outpost_etc /etc/outpost)
set(outpost_unitdir /lib/systemd/system)
file(MAKE_DIRECTORY "${outpost_pkg_gen}")

# The architecture the programs are built for, in Debian's name. Natively that is
# `dpkg --print-architecture`; a cross build (CMAKE_CROSSCOMPILING, the target's multiarch
# triplet in CMAKE_LIBRARY_ARCHITECTURE) asks dpkg-architecture for the triplet's name.
if(CMAKE_CROSSCOMPILING)
  execute_process(COMMAND dpkg-architecture -t "${CMAKE_LIBRARY_ARCHITECTURE}" -qDEB_HOST_ARCH
                  OUTPUT_VARIABLE OUTPOST_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE rc)
else()
  execute_process(COMMAND dpkg --print-architecture
                  OUTPUT_VARIABLE OUTPOST_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE rc)
endif()
if(NOT rc EQUAL 0 OR NOT OUTPOST_DEB_ARCH)
  # Not a Debian machine (no dpkg): everything builds; only cpack -G DEB would not.
  message(STATUS "Packaging: no Debian architecture (dpkg, dpkg-architecture); no .deb packages")
  return()
endif()

# debian/changelog of a native package, installed as changelog.gz. Its date is the build's
# (SOURCE_DATE_EPOCH when set, for a reproducible package).
string(TIMESTAMP outpost_changelog_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file("${outpost_pkg_dir}/debian/changelog.in" "${outpost_pkg_gen}/changelog" @ONLY)
execute_process(COMMAND gzip -9 -n -c "${outpost_pkg_gen}/changelog"
                OUTPUT_FILE "${outpost_pkg_gen}/changelog.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "Packaging: gzip of ${outpost_pkg_gen}/changelog failed")
endif()

# outpost_package_docs(<component> <package> FILES <doc>... EXAMPLES <file>...): the files
# every package's /usr/share/doc/<package>/ has (copyright, changelog.gz) and its own.
function(outpost_package_docs component package)
  cmake_parse_arguments(ARG "" "" "FILES;EXAMPLES" ${ARGN})
  set(doc ${CMAKE_INSTALL_DATADIR}/doc/${package})
  install(FILES "${outpost_pkg_dir}/debian/${package}/copyright" "${outpost_pkg_gen}/changelog.gz"
                ${ARG_FILES}
          DESTINATION ${doc} COMPONENT ${component})
  if(ARG_EXAMPLES)
    install(FILES ${ARG_EXAMPLES} DESTINATION ${doc}/examples COMPONENT ${component})
  endif()
  if(EXISTS "${outpost_pkg_dir}/debian/${package}/lintian-overrides")
    install(FILES "${outpost_pkg_dir}/debian/${package}/lintian-overrides"
            DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME ${package}
            COMPONENT ${component})
  endif()
endfunction()

# outpost_package_program(<target> <component> <package> <summary>): what debhelper's dh_strip
# also drops from a packaged program (.comment, .note), and its manual page, made by help2man
# from its --help and --version (a cross-built program runs under CMAKE_CROSSCOMPILING_EMULATOR
# for that, through a wrapper of the program's name).
find_program(OUTPOST_HELP2MAN help2man)
if(NOT OUTPOST_HELP2MAN)
  message(STATUS "Packaging: no help2man (Debian package help2man): the packages get no manual pages")
endif()
function(outpost_package_program target component package summary)
  install(CODE "
    if(CMAKE_INSTALL_DO_STRIP)
      execute_process(COMMAND \"${CMAKE_STRIP}\" --remove-section=.comment --remove-section=.note
                              \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/${target}\"
                      RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR \"strip of ${target} failed\")
      endif()
    endif()" COMPONENT ${component})
  if(NOT OUTPOST_HELP2MAN)
    return()
  endif()
  set(man "${outpost_pkg_gen}/man")
  set(program "$<TARGET_FILE:${target}>")
  if(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR)
    list(JOIN CMAKE_CROSSCOMPILING_EMULATOR " " emulator)
    file(GENERATE OUTPUT "${man}/bin/${target}"
         CONTENT "#!/bin/sh\nexec ${emulator} \"$<TARGET_FILE:${target}>\" \"$@\"\n"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
    set(program "${man}/bin/${target}")
  endif()
  file(WRITE "${man}/${target}.h2m"
       "[SEE ALSO]\nThe documentation in /usr/share/doc/${package}/.\n")
  add_custom_command(
    OUTPUT "${man}/${target}.1.gz"
    COMMAND "${OUTPOST_HELP2MAN}" --no-info --no-discard-stderr "--name=${summary}"
            "--include=${man}/${target}.h2m" "--output=${man}/${target}.1" "${program}"
    COMMAND gzip -9 -n -f "${man}/${target}.1"
    DEPENDS ${target} "${man}/${target}.h2m"
    COMMENT "help2man: ${target}.1"
    VERBATIM)
  add_custom_target(${target}-man DEPENDS "${man}/${target}.1.gz")
  add_dependencies(outpost_packaged ${target}-man)
  install(FILES "${man}/${target}.1.gz" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          COMPONENT ${component})
endfunction()

outpost_package_program(outpost-agent agent outpost-agent "Outpost edge telemetry agent")
outpost_package_program(outpost-collector collector outpost-collector
                        "Outpost telemetry collector and its tools")
outpost_package_program(outpost-sim tools outpost-tools "simulated Outpost fleets, faults included")
outpost_package_program(outpost-wire tools outpost-tools "inspect Outpost payloads")

# A daemon's package: the packaged default configuration (a conffile), the unit, the
# maintainer scripts. conffiles lists the files dpkg keeps a changed copy of on upgrade.
function(outpost_package_daemon component package config)
  install(FILES "${outpost_pkg_dir}/etc/${config}" DESTINATION ${outpost_etc}
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT ${component})
  install(FILES "${outpost_pkg_dir}/systemd/${package}.service" DESTINATION ${outpost_unitdir}
          COMPONENT ${component})
  # CPack names a control file by its file name, hence a directory per package.
  file(WRITE "${outpost_pkg_gen}/${package}/conffiles" "${outpost_etc}/${config}\n")
  set(control "${outpost_pkg_gen}/${package}/conffiles")
  foreach(script postinst prerm postrm)
    list(APPEND control "${outpost_pkg_dir}/debian/${package}/${script}")
  endforeach()
  string(TOUPPER "${component}" c)
  set(CPACK_DEBIAN_${c}_PACKAGE_CONTROL_EXTRA "${control}" PARENT_SCOPE)
endfunction()

outpost_package_daemon(agent outpost-agent agent.toml)
# /run/outpost (the agent's Unix socket) at boot and at install, also where systemd does not
# run the agent: the unit's RuntimeDirectory= makes it for the running service only.
install(FILES "${outpost_pkg_dir}/debian/outpost-agent/tmpfiles.conf"
        DESTINATION lib/tmpfiles.d RENAME outpost-agent.conf
        COMPONENT agent)
outpost_package_docs(agent outpost-agent
  FILES "${PROJECT_SOURCE_DIR}/agent/README.md" "${PROJECT_SOURCE_DIR}/docs/agent-input.md"
        "${PROJECT_SOURCE_DIR}/docs/agent-store.md" "${PROJECT_SOURCE_DIR}/docs/configuration.md"
        "${PROJECT_SOURCE_DIR}/docs/operations.md" "${PROJECT_SOURCE_DIR}/docs/guarantees.md"
  EXAMPLES "${PROJECT_SOURCE_DIR}/docs/agent.toml")

outpost_package_daemon(collector outpost-collector collector.toml)
outpost_package_docs(collector outpost-collector
  FILES "${PROJECT_SOURCE_DIR}/collector/README.md" "${PROJECT_SOURCE_DIR}/collector/webhooks.md"
        "${PROJECT_SOURCE_DIR}/docs/configuration.md" "${PROJECT_SOURCE_DIR}/docs/operations.md"
        "${PROJECT_SOURCE_DIR}/docs/storage.md" "${PROJECT_SOURCE_DIR}/docs/events.md"
        "${PROJECT_SOURCE_DIR}/docs/console.md" "${PROJECT_SOURCE_DIR}/docs/api.md"
        "${PROJECT_SOURCE_DIR}/docs/scale-out.md" "${PROJECT_SOURCE_DIR}/docs/guarantees.md"
  EXAMPLES "${PROJECT_SOURCE_DIR}/docs/collector.toml"
           "${PROJECT_SOURCE_DIR}/packaging/prometheus/outpost-alerts.yml")

outpost_package_docs(tools outpost-tools
  FILES "${PROJECT_SOURCE_DIR}/firmware-sim/README.md" "${PROJECT_SOURCE_DIR}/docs/wire-format.md"
        "${PROJECT_SOURCE_DIR}/docs/topics.md")

# CPack: one .deb per component, named <package>_<version>_<arch>.deb.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME outpost)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "Outpost")
set(CPACK_PACKAGE_CONTACT "${OUTPOST_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_STRIP_FILES ON)  # the debug information stays in the build tree's binaries
set(CPACK_COMPONENTS_ALL agent collector tools)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${OUTPOST_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "${OUTPOST_DEB_ARCH}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps
# Maintainer scripts 0755, conffiles 0644, whatever their mode in the tree.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# cpack builds `preinstall` before installing; without this it would be `all` (tests,
# benchmarks). scripts/package.sh builds outpost_packaged first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME outpost-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_DESCRIPTION "Outpost edge telemetry agent
outpost-agent runs on each device. Local programs hand it sensor readings
(InfluxDB line protocol over UDP or a Unix datagram socket) and log lines; it
keeps them in a SQLite store-and-forward queue and delivers them over MQTT to
an Outpost collector, through network, broker and process failures.
.
This package holds the program, a systemd unit, its configuration in
/etc/outpost/agent.toml and the system user outpost.")

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME outpost-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_RECOMMENDS "mosquitto")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_SUGGESTS "postgresql")
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION "Outpost telemetry collector
outpost-collector subscribes to an Outpost fleet's MQTT topics, validates and
decodes what the agents send, stores readings and logs exactly once in SQLite
or PostgreSQL, raises fleet events and webhooks, and keeps malformed messages
in a dead-letter queue with a reason code. It serves a web console of the
fleet and has the operator tools as subcommands (query, logs, devices, events,
summary, dlq, tail).
.
This package holds the program, a systemd unit, its configuration in
/etc/outpost/collector.toml and the system user outpost.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME outpost-tools)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION "Outpost operator and test tools
outpost-sim simulates whole fleets of Outpost devices, faults included
(malformed payloads, duplicates, reboots, network cuts), for tests, demos and
capacity planning, and writes a manifest of what it sent. outpost-wire decodes
and encodes Outpost payloads. Example scenarios are in
/usr/share/outpost-tools/scenarios.")

include(CPack)

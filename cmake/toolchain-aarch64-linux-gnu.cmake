# Cross build for arm64 (aarch64) gateways on a Debian 12 amd64 machine: Debian's cross
# compiler (crossbuild-essential-arm64) and the arm64 multiarch -dev packages, which install
# beside the amd64 ones (libraries in /usr/lib/aarch64-linux-gnu, headers in /usr/include).
# scripts/cross-arm64.sh installs them, configures build-arm64/ with this file and runs the
# unit tests under qemu-user (docs/operations.md, "arm64").
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(OUTPOST_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${OUTPOST_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${OUTPOST_CROSS_TRIPLET}-g++)
# Multiarch: find_library/find_package look in /usr/lib/aarch64-linux-gnu (and the
# arch-independent /usr/include, /usr/share), never in /usr/lib/x86_64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE ${OUTPOST_CROSS_TRIPLET})

# Where the target's files are: the cross toolchain's own tree (libstdc++, the loader) and
# the multiarch root. Programs (nanopb_generator, python3) are the host's; libraries,
# headers and CMake packages the target's.
set(CMAKE_FIND_ROOT_PATH /usr/${OUTPOST_CROSS_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (FindOpenSSL, FindPostgreSQL use it when present) must read the arm64 .pc files:
# Debian's pkg-config:arm64 installs the aarch64-linux-gnu-pkg-config wrapper that does so.
find_program(PKG_CONFIG_EXECUTABLE NAMES ${OUTPOST_CROSS_TRIPLET}-pkg-config)
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/${OUTPOST_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Test programs (and gtest_discover_tests, which lists their cases at build time) run under
# qemu-user. `-L /`: the arm64 loader, glibc and libstdc++ all come from the multiarch
# packages (libc6:arm64, libstdc++6:arm64 in /lib and /usr/lib/aarch64-linux-gnu), one
# consistent set. Not `-L /usr/aarch64-linux-gnu`: that loader is the cross toolchain's glibc
# (2.36-8cross1), which then loads the multiarch libc.so.6 of another Debian revision, and
# every program that starts a thread spins for ever under qemu.
find_program(OUTPOST_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(OUTPOST_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${OUTPOST_QEMU_AARCH64} -L /)
endif()

# libpq-dev is not Multi-Arch: libpq-dev:arm64 cannot be installed beside the amd64 one the
# native build needs. Its headers are the same for both (/usr/include/postgresql); the arm64
# library comes with libpq5:arm64, which has no libpq.so link, so name it here.
set(outpost_arm64_libpq /usr/lib/${OUTPOST_CROSS_TRIPLET}/libpq.so.5)
if(NOT EXISTS /usr/lib/${OUTPOST_CROSS_TRIPLET}/libpq.so AND EXISTS ${outpost_arm64_libpq})
  set(PostgreSQL_LIBRARY ${outpost_arm64_libpq} CACHE FILEPATH "arm64 libpq (libpq5:arm64)")
endif()

#!/usr/bin/env bash
# Checks that outpost-agent is linked as documented (docs/BENCHMARKS.md, "Agent memory"):
# statically but for glibc, so its only dynamic dependencies are libc, libm and the loader.
#   agent_linkage_test.sh <path to outpost-agent> <linkage>
# <linkage> is what the build chose (cmake/OutpostStaticAgent.cmake, OUTPOST_AGENT_LINKAGE):
# "static" is checked; any other value means the build fell back or did not try, and the
# test is skipped (exit 77, ctest's SKIP_RETURN_CODE), never passed.
set -u
agent=$1
linkage=$2

case "$linkage" in
  static) ;;
  off) echo "SKIP: OUTPOST_STATIC_AGENT is OFF: outpost-agent is linked shared"; exit 77 ;;
  sanitizers) echo "SKIP: sanitizer builds link the shared sanitizer runtimes"; exit 77 ;;
  shared-paho)
    echo "SKIP: the build fell back to Debian's shared Paho C++ (see the configure warning)"
    exit 77
    ;;
  shared-sqlite) echo "SKIP: the build fell back to the shared libsqlite3"; exit 77 ;;
  *) echo "FAIL: unknown linkage '$linkage'"; exit 1 ;;
esac

# Only these may be NEEDED: glibc's libc and libm, and the dynamic loader itself.
allowed='^(libc\.so\.6|libm\.so\.6|ld-linux[-a-z0-9_]*\.so\.[0-9]+)$'

if ! dynamic=$(LC_ALL=C readelf -d "$agent" 2>&1); then
  echo "FAIL: readelf -d $agent: $dynamic"
  exit 1
fi
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<<"$dynamic")
if [[ -z "$needed" ]]; then
  echo "FAIL: $agent has no NEEDED entries at all (expected libc): readelf -d says"
  echo "$dynamic"
  exit 1
fi

failures=0
while read -r lib; do
  if [[ "$lib" =~ $allowed ]]; then
    echo "ok: NEEDED $lib"
  else
    echo "FAIL: $agent needs $lib; only libc, libm and the loader may be dynamic"
    failures=$((failures + 1))
  fi
done <<<"$needed"
grep -qx 'libc.so.6' <<<"$needed" || {
  echo "FAIL: $agent does not need libc.so.6: not the glibc-linked agent this test knows"
  failures=$((failures + 1))
}

# What the loader really maps, transitively (ldd runs no code of the agent's).
if mapped=$(ldd "$agent" 2>&1); then
  while read -r name _; do
    name=${name##*/}
    [[ -z "$name" || "$name" == linux-vdso.so.* || "$name" =~ $allowed ]] && continue
    echo "FAIL: the loader maps $name for $agent (ldd)"
    failures=$((failures + 1))
  done <<<"$mapped"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "outpost-agent: only libc, libm and the loader are dynamic"

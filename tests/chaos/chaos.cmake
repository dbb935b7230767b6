# The chaos suite (docs/chaos.md); included from tests/CMakeLists.txt, so paths are relative to
# tests/. Label "chaos" only: CI's sanitizer step runs "unit|integration", not this.

add_executable(chaos_test chaos/chaos_test.cpp chaos/world.cpp chaos/relay.cpp)
outpost_target_defaults(chaos_test)
target_include_directories(chaos_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(chaos_test PRIVATE outpost::sim_core outpost_test_postgres SQLite::SQLite3
                                         outpost::common_sqlite GTest::gtest GTest::gtest_main)
target_compile_definitions(chaos_test PRIVATE
  OUTPOST_COLLECTOR_BIN="$<TARGET_FILE:outpost-collector>"
  OUTPOST_AGENT_BIN="$<TARGET_FILE:outpost-agent>"
  OUTPOST_SIM_BIN="$<TARGET_FILE:outpost-sim>")
add_dependencies(chaos_test outpost-collector outpost-agent outpost-sim)
# One ctest test per scenario. They run one at a time (RESOURCE_LOCK): each one loads the
# machine, and its timing-sensitive figures should not depend on a neighbour.
# The Chaos.Postgres* scenarios start a PostgreSQL cluster: labelled "chaos;postgres".
gtest_discover_tests(chaos_test TEST_FILTER "-Chaos.Postgres*"
  PROPERTIES LABELS chaos RESOURCE_LOCK outpost_chaos TIMEOUT 240
             ENVIRONMENT OUTPOST_CHAOS_REPORT=${CMAKE_BINARY_DIR}/chaos_report.txt
  DISCOVERY_TIMEOUT 60)
gtest_discover_tests(chaos_test TEST_FILTER "Chaos.Postgres*" TEST_LIST chaos_test_postgres
  PROPERTIES RESOURCE_LOCK outpost_chaos TIMEOUT 240
             ENVIRONMENT OUTPOST_CHAOS_REPORT=${CMAKE_BINARY_DIR}/chaos_report.txt
  DISCOVERY_TIMEOUT 60)
outpost_label_tests(chaos_test_postgres "chaos;postgres")

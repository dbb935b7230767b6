# outpost-sim tests; included from tests/CMakeLists.txt, so paths are relative to tests/.

outpost_add_test(sim_signals_test SOURCES sim/signals_test.cpp LIBS outpost::sim_core)
outpost_add_test(sim_faults_test SOURCES sim/faults_test.cpp LIBS outpost::sim_core)
outpost_add_test(sim_device_test SOURCES sim/device_test.cpp LIBS outpost::sim_core)
outpost_add_test(sim_manifest_test SOURCES sim/manifest_test.cpp LIBS outpost::sim_core)
outpost_add_test(sim_scenario_test SOURCES sim/scenario_test.cpp LIBS outpost::sim_core)
target_compile_definitions(sim_scenario_test PRIVATE OUTPOST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
outpost_add_test(sim_line_protocol_test SOURCES sim/line_protocol_test.cpp LIBS outpost::sim_core)
outpost_add_test(sim_handoff_test SOURCES sim/handoff_test.cpp LIBS outpost::sim_core)

# The real outpost-sim (and outpost-agent) against a real mosquitto.
outpost_add_test(sim_integration_test SOURCES sim/sim_integration_test.cpp
                 LIBS outpost::sim_core outpost_test_mqtt
                 LABELS integration)
target_compile_definitions(sim_integration_test PRIVATE
  OUTPOST_SIM_BIN="$<TARGET_FILE:outpost-sim>"
  OUTPOST_AGENT_BIN="$<TARGET_FILE:outpost-agent>"
  OUTPOST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(sim_integration_test outpost-sim outpost-agent)

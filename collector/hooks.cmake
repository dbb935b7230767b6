# outpost::collector_hooks: threshold rules (pure logic) and webhook delivery of events (Asio,
# Beast, OpenSSL HMAC), built as one library for the collector to link. Included from the root
# CMakeLists.txt until the collector's own CMakeLists.txt takes these sources over.

find_package(OpenSSL REQUIRED)

add_library(outpost_collector_hooks STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/rules.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/hmac.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/webhook.cpp)
add_library(outpost::collector_hooks ALIAS outpost_collector_hooks)
outpost_target_defaults(outpost_collector_hooks)
target_include_directories(outpost_collector_hooks PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
# Asio and Beast stay out of the public headers (webhook.h hides them behind a pimpl).
target_link_libraries(outpost_collector_hooks
  PUBLIC outpost::common
  PRIVATE outpost_asio OpenSSL::Crypto)

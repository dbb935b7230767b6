# Tests of the collector's threshold rules and webhook delivery (collector/hooks.cmake).
# Webhook tests talk only to HTTP servers they run in-process on 127.0.0.1: unit tests.
outpost_add_test(collector_rules_test SOURCES collector/rules_test.cpp
                 LIBS outpost::collector_hooks)
outpost_add_test(collector_webhook_test SOURCES collector/webhook_test.cpp
                 LIBS outpost::collector_hooks outpost_test_support outpost_asio)

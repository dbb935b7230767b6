// The web console's server: its own thread, event loop, HTTP listener and database reader, so
// that a slow page or a large fleet query never holds up storage or the metrics endpoint.
// Serves the page (embedded in the binary), the JSON API (console.h) and its event stream.
// Private to the outpost-collector executable.
#pragma once

#include <memory>
#include <string>

#include "outpost/collector/config.h"
#include "outpost/common/result.h"

namespace outpost::collector {

class ConsoleServer {
 public:
  // Binds config.console_listen and starts the console's thread; fails with a clear message
  // when the address cannot be bound. The database is opened on the console's thread, and
  // opened again after an error.
  static common::Result<std::unique_ptr<ConsoleServer>> start(const CollectorConfig& config);
  ~ConsoleServer();  // stops: closes the listener and the open streams, joins the thread

  // The address it listens on, e.g. "127.0.0.1:8088" (the kernel's port when given 0).
  std::string address() const;

 private:
  struct State;
  explicit ConsoleServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace outpost::collector

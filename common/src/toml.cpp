// toml++'s implementation, compiled once here (TOML_HEADER_ONLY=0 everywhere, see the top-level
// CMakeLists.txt) instead of in every file that includes config.h or loaded as a shared library.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>

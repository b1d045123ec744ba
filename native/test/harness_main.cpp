#include <cstring>
#include <exception>

#include "harness.h"

namespace neoserve::test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

static int g_failures_in_case = 0;

void fail(const char* file, int line, const std::string& what) {
  ++g_failures_in_case;
  std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace neoserve::test

int main(int argc, char** argv) {
  using namespace neoserve::test;
  const char* prefix = argc > 1 ? argv[1] : "";
  int passed = 0, failed = 0;
  for (const Case& c : registry()) {
    if (std::strncmp(c.name, prefix, std::strlen(prefix)) != 0) continue;
    g_failures_in_case = 0;
    try {
      c.fn();
    } catch (const std::exception& e) {
      fail(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    if (g_failures_in_case == 0) {
      ++passed;
      std::printf("ok   %s\n", c.name);
    } else {
      ++failed;
      std::printf("FAIL %s\n", c.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return (failed == 0 && passed > 0) ? 0 : 1;
}

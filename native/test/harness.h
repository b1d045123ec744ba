// A minimal test harness: TEST registers a case; main() runs the cases whose
// name starts with argv[1] (ctest runs one suite per prefix) and closes with
// "N passed, N failed".
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace neoserve::test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
void fail(const char* file, int line, const std::string& what);  // records and continues the case

}  // namespace neoserve::test

#define NS_CAT2(a, b) a##b
#define NS_CAT(a, b) NS_CAT2(a, b)
#define TEST(name)                                                                     \
  static void NS_CAT(test_fn_, __LINE__)();                                            \
  static ::neoserve::test::Register NS_CAT(test_reg_, __LINE__)(name, NS_CAT(test_fn_, __LINE__)); \
  static void NS_CAT(test_fn_, __LINE__)()

#define CHECK(cond) \
  do { if (!(cond)) ::neoserve::test::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); } while (0)

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    auto&& va_ = (a); auto&& vb_ = (b);                                                  \
    if (!(va_ == vb_)) {                                                                 \
      std::ostringstream os_; os_ << "CHECK_EQ(" #a ", " #b "): " << va_ << " != " << vb_; \
      ::neoserve::test::fail(__FILE__, __LINE__, os_.str());                             \
    }                                                                                    \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                  \
  do {                                                                                         \
    double va_ = (a), vb_ = (b);                                                               \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                                    \
      std::ostringstream os_; os_ << "CHECK_NEAR(" #a ", " #b "): " << va_ << " vs " << vb_ << " tol " << (tol); \
      ::neoserve::test::fail(__FILE__, __LINE__, os_.str());                                   \
    }                                                                                          \
  } while (0)

// Expects `expr` to throw neoserve::Error with `code` and a message containing `needle`.
#define CHECK_THROWS(expr, expected_code, needle)                                                       \
  do {                                                                                         \
    bool thrown_ = false;                                                                      \
    try { (void)(expr); } catch (const ::neoserve::Error& e_) {                                \
      thrown_ = true;                                                                          \
      if (e_.code() != (expected_code) || std::string(e_.what()).find(needle) == std::string::npos)    \
        ::neoserve::test::fail(__FILE__, __LINE__, std::string("wrong error from " #expr ": ") + e_.what()); \
    } catch (const std::exception& e_) {                                                       \
      thrown_ = true;                                                                          \
      ::neoserve::test::fail(__FILE__, __LINE__, std::string("non-neoserve error from " #expr ": ") + e_.what()); \
    }                                                                                          \
    if (!thrown_) ::neoserve::test::fail(__FILE__, __LINE__, "no error from " #expr);          \
  } while (0)

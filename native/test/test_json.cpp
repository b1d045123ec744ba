// The strict JSON reader behind config.json, safetensors headers and shard indexes.
#include <cstdint>
#include <limits>
#include <string>

#include "core/json/json.h"
#include "harness.h"

using neoserve::ErrorCode;
namespace json = neoserve::json;
// (CHECK_EQ binds its arguments by reference: strings are copied out of the
// temporary Value first.)

TEST("json.scalars_and_containers") {
  const json::Value v = json::parse(R"( {"a": [1, -2.5, true, false, null, "x"], "b": {"c": {}}, "d": []} )");
  CHECK(v.is_object());
  const auto& a = v.at("a").as_array();
  CHECK_EQ(a.size(), 6u);
  CHECK_EQ(a[0].as_int(), 1);
  CHECK_NEAR(a[1].as_double(), -2.5, 0);
  CHECK(a[2].as_bool());
  CHECK(!a[3].as_bool());
  CHECK(a[4].is_null());
  CHECK_EQ(a[5].as_string(), std::string("x"));
  CHECK(v.at("b").at("c").as_object().empty());
  CHECK(v.at("d").as_array().empty());
  CHECK(v.find("zz") == nullptr);
  CHECK(json::parse("7").is_int());
  CHECK(json::parse(" \"s\" ").is_string());
}

TEST("json.integers_stay_exact") {
  // 2^53 + 1 is not a double; tensor offsets past 8 PiB never happen, but exactness is the contract.
  CHECK_EQ(json::parse("9007199254740993").as_int(), int64_t{9007199254740993});
  CHECK_EQ(json::parse("9223372036854775807").as_int(), std::numeric_limits<int64_t>::max());
  CHECK_EQ(json::parse("-9223372036854775808").as_int(), std::numeric_limits<int64_t>::min());
  CHECK_EQ(json::parse("-0").as_int(), 0);
  // Beyond int64 → a double, as JavaScript reads it.
  const json::Value big = json::parse("18446744073709551616");
  CHECK(big.type() == json::Type::Double);
  CHECK_NEAR(big.as_double(), 18446744073709551616.0, 1);
  // Fractions and exponents are doubles even when integral, so as_int refuses them.
  CHECK(json::parse("1.0").type() == json::Type::Double);
  CHECK(json::parse("1e3").type() == json::Type::Double);
  CHECK_NEAR(json::parse("1e3").as_double(), 1000, 0);
  CHECK_NEAR(json::parse("1E-5").as_double(), 1e-5, 1e-20);
  CHECK_NEAR(json::parse("-0.125e+2").as_double(), -12.5, 0);
  CHECK_NEAR(json::parse("1e-400").as_double(), 0, 0);  // underflow to zero is harmless
  CHECK_NEAR(json::parse("-0.0000e-999999999999999999999").as_double(), 0, 0);
  CHECK_NEAR(json::parse("100000e-1000000000000000000000000").as_double(), 0, 0);
  CHECK_THROWS(json::parse("0.00123e400"), ErrorCode::ModelLoadFailed, "number out of range");
  CHECK_THROWS(json::parse("1.0").as_int(), ErrorCode::ModelLoadFailed, "expected integer, got number");
}

TEST("json.string_escapes") {
  CHECK_EQ(std::string(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string()), std::string("a\"b\\c/d\b\f\n\r\t"));
  CHECK_EQ(std::string(json::parse(R"("\u0041\u00e9\u20AC")").as_string()), std::string("A\xc3\xa9\xe2\x82\xac"));
  CHECK_EQ(std::string(json::parse(R"("\ud83d\ude00")").as_string()), std::string("\xf0\x9f\x98\x80"));  // surrogate pair → U+1F600
  CHECK_EQ(std::string(json::parse(R"("\u0000")").as_string()), std::string(1, '\0'));
  CHECK_EQ(std::string(json::parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"").as_string()), std::string("caf\xc3\xa9 \xf0\x9f\x98\x80"));
}

TEST("json.rejects_malformed_input_with_offset") {
  CHECK_THROWS(json::parse(""), ErrorCode::ModelLoadFailed, "at byte 0: unexpected end");
  CHECK_THROWS(json::parse("{\"a\":1,}"), ErrorCode::ModelLoadFailed, "at byte 7: expected a string key");
  CHECK_THROWS(json::parse("[1,]"), ErrorCode::ModelLoadFailed, "at byte 3");
  CHECK_THROWS(json::parse("[1 2]"), ErrorCode::ModelLoadFailed, "expected ',' or ']'");
  CHECK_THROWS(json::parse("01"), ErrorCode::ModelLoadFailed, "unexpected data after");
  CHECK_THROWS(json::parse("1."), ErrorCode::ModelLoadFailed, "digit expected after '.'");
  CHECK_THROWS(json::parse(".5"), ErrorCode::ModelLoadFailed, "unexpected character '.'");
  CHECK_THROWS(json::parse("+1"), ErrorCode::ModelLoadFailed, "unexpected character '+'");
  CHECK_THROWS(json::parse("1e"), ErrorCode::ModelLoadFailed, "exponent");
  CHECK_THROWS(json::parse("1e400"), ErrorCode::ModelLoadFailed, "number out of range");
  CHECK_THROWS(json::parse("NaN"), ErrorCode::ModelLoadFailed, "unexpected character 'N'");
  CHECK_THROWS(json::parse("tru"), ErrorCode::ModelLoadFailed, "invalid literal");
  CHECK_THROWS(json::parse("{} {}"), ErrorCode::ModelLoadFailed, "at byte 3: unexpected data after");
  CHECK_THROWS(json::parse("\"abc"), ErrorCode::ModelLoadFailed, "unterminated string");
  CHECK_THROWS(json::parse("\"a\nb\""), ErrorCode::ModelLoadFailed, "control character");
  CHECK_THROWS(json::parse(R"("\x")"), ErrorCode::ModelLoadFailed, "invalid escape");
  CHECK_THROWS(json::parse(R"("\u12")"), ErrorCode::ModelLoadFailed, "\\u escape");
  CHECK_THROWS(json::parse(R"("\ud83d")"), ErrorCode::ModelLoadFailed, "high surrogate");
  CHECK_THROWS(json::parse(R"("\ud83d\u0041")"), ErrorCode::ModelLoadFailed, "low surrogate");
  CHECK_THROWS(json::parse(R"("\ude00")"), ErrorCode::ModelLoadFailed, "unpaired low surrogate");
  CHECK_THROWS(json::parse("\"\xff\""), ErrorCode::ModelLoadFailed, "invalid UTF-8");
  CHECK_THROWS(json::parse("\"\xc0\xaf\""), ErrorCode::ModelLoadFailed, "invalid UTF-8");       // overlong '/'
  CHECK_THROWS(json::parse("\"\xed\xa0\x80\""), ErrorCode::ModelLoadFailed, "invalid UTF-8");   // encoded surrogate
  CHECK_THROWS(json::parse("\"\xe2\x82\""), ErrorCode::ModelLoadFailed, "invalid UTF-8");       // truncated sequence
  CHECK_THROWS(json::parse("{\"a\":1,\"a\":2}"), ErrorCode::ModelLoadFailed, "duplicate key \"a\"");
  CHECK_THROWS(json::parse("{1:2}"), ErrorCode::ModelLoadFailed, "expected a string key");
  CHECK_THROWS(json::parse("{\"a\" 1}"), ErrorCode::ModelLoadFailed, "expected ':'");
  // An embedded NUL ends nothing: it is just an unexpected byte.
  CHECK_THROWS(json::parse(std::string("{}\0", 3)), ErrorCode::ModelLoadFailed, "at byte 2");
}

TEST("json.depth_limit") {
  const std::string ok = std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']');
  CHECK(json::parse(ok).is_array());
  const std::string deep = std::string(json::kMaxDepth + 1, '[') + std::string(json::kMaxDepth + 1, ']');
  CHECK_THROWS(json::parse(deep), ErrorCode::ModelLoadFailed, "nesting deeper than 64");
  // Far deeper input must fail the same way, not overflow the stack.
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += "{\"a\":";
  CHECK_THROWS(json::parse(objects), ErrorCode::ModelLoadFailed, "nesting deeper");
  CHECK_THROWS(json::parse(std::string(1'000'000, '[')), ErrorCode::ModelLoadFailed, "nesting deeper");
}

TEST("json.accessors_name_the_mismatch") {
  const json::Value v = json::parse(R"({"n": 3, "s": "x", "a": [], "o": {}})");
  CHECK_THROWS(v.at("s").as_int(), ErrorCode::ModelLoadFailed, "expected integer, got string");
  CHECK_THROWS(v.at("n").as_string(), ErrorCode::ModelLoadFailed, "expected string, got integer");
  CHECK_THROWS(v.at("a").as_object(), ErrorCode::ModelLoadFailed, "expected object, got array");
  CHECK_THROWS(v.at("o").as_array(), ErrorCode::ModelLoadFailed, "expected array, got object");
  CHECK_THROWS(v.at("n").as_bool(), ErrorCode::ModelLoadFailed, "expected boolean, got integer");
  CHECK_THROWS(v.at("missing"), ErrorCode::ModelLoadFailed, "missing key \"missing\"");
  CHECK_THROWS(v.at("n").at("x"), ErrorCode::ModelLoadFailed, "expected object, got integer");
  CHECK_NEAR(v.at("n").as_double(), 3.0, 0);  // integers read as doubles where a float is wanted
  // Lookup in a larger object (members sorted internally).
  std::string text = "{";
  for (int i = 0; i < 500; ++i) text += (i ? "," : "") + std::string("\"k") + std::to_string(499 - i) + "\":" + std::to_string(i);
  const json::Value big = json::parse(text + "}");
  CHECK_EQ(big.as_object().size(), 500u);
  CHECK_EQ(big.at("k0").as_int(), 499);
  CHECK_EQ(big.at("k499").as_int(), 0);
}

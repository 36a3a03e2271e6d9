// SPDX-License-Identifier: MIT
// result<T>'s std::expected vocabulary (and_then, transform, or_else, transform_error, value_or)
// for every value category, result<void> and move-only values; transfer_result and io_errc.
#include <corio/runtime/result.hpp>

#include "tests/support/counted.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

using namespace corio;
using corio::test::counted;

namespace {

/// Which overload the monadic operation picked: the callable reports the category it was given.
enum class category { lvalue, const_lvalue, rvalue, const_rvalue };

struct category_probe {
    result<category> operator()(int&) const { return category::lvalue; }
    result<category> operator()(const int&) const { return category::const_lvalue; }
    result<category> operator()(int&&) const { return category::rvalue; }
    result<category> operator()(const int&&) const { return category::const_rvalue; }
};

struct category_transform {
    category operator()(int&) const { return category::lvalue; }
    category operator()(const int&) const { return category::const_lvalue; }
    category operator()(int&&) const { return category::rvalue; }
    category operator()(const int&&) const { return category::const_rvalue; }
};

result<int> half(int x) {
    if (x % 2 != 0)
        return std::errc::invalid_argument;
    return x / 2;
}

const std::error_code k_reset = std::make_error_code(std::errc::connection_reset);

// The return types follow std::expected's rules.
using int_result = result<int>;
static_assert(std::is_same_v<decltype(std::declval<int_result&>().and_then(half)), result<int>>);
static_assert(std::is_same_v<decltype(std::declval<int_result&>().transform(
                                 [](int x) { return std::to_string(x); })),
                             result<std::string>>);
static_assert(std::is_same_v<decltype(std::declval<int_result&>().transform([](int) {})),
                             result<void>>);
static_assert(std::is_same_v<decltype(std::declval<int_result&>().or_else(
                                 [](std::error_code) { return result<int>(0); })),
                             result<int>>);
static_assert(std::is_same_v<decltype(std::declval<int_result&>().transform_error(
                                 [](std::error_code e) { return e; })),
                             result<int>>);
static_assert(std::is_same_v<decltype(std::declval<result<void>&>().and_then(
                                 [] { return result<int>(1); })),
                             result<int>>);
static_assert(std::is_same_v<decltype(std::declval<result<void>&>().transform([] { return 1; })),
                             result<int>>);
static_assert(std::is_same_v<decltype(std::declval<result<void>&>().or_else(
                                 [](std::error_code) { return result<void>(); })),
                             result<void>>);
// A transfer_result is a result<size_t>: its monadic operations give plain results.
static_assert(std::is_same_v<decltype(std::declval<transfer_result&>().transform(
                                 [](std::size_t n) { return n * 2; })),
                             result<std::size_t>>);
static_assert(std::is_convertible_v<transfer_result, result<std::size_t>>);
// value_or gives T by value, from lvalues and rvalues (move-only T: rvalues only).
static_assert(std::is_same_v<decltype(std::declval<const int_result&>().value_or(0)), int>);
static_assert(std::is_same_v<decltype(std::declval<result<std::unique_ptr<int>>&&>().value_or(
                                 nullptr)),
                             std::unique_ptr<int>>);
// What std::expected makes noexcept is noexcept here too.
static_assert(noexcept(std::declval<int_result&>().has_value()));
static_assert(noexcept(*std::declval<int_result&>()));
static_assert(noexcept(static_cast<bool>(std::declval<int_result&>())));
static_assert(noexcept(std::declval<transfer_result&>().transferred()));
// The value path is usable in constant expressions: result<void> everywhere; result<T> on g++
// (clang 14 does not take std::variant<T, std::error_code> as a literal type: std::error_code
// has no constexpr constructor).
static_assert(result<void>().and_then([] { return result<void>(); }).has_value());
static_assert(result<void>().transform([] {}).has_value());
#if defined(__GNUC__) && !defined(__clang__)
static_assert(result<int>(21).transform([](int x) { return x * 2; }).value() == 42);
static_assert(result<int>(4).and_then([](int x) { return result<long>(x + 1L); }).value() == 5);
static_assert(result<int>(7).value_or(0) == 7);
static_assert(result<void>().and_then([] { return result<int>(3); }).value() == 3);
static_assert(transfer_result(std::size_t{9}).transferred() == 9);
#endif

} // namespace

TEST_CASE("and_then calls f with the value in the result's own value category") {
    result<int> r = 1;
    const result<int>& c = r;
    CHECK(r.and_then(category_probe{}).value() == category::lvalue);
    CHECK(c.and_then(category_probe{}).value() == category::const_lvalue);
    CHECK(std::move(r).and_then(category_probe{}).value() == category::rvalue);
    CHECK(std::move(c).and_then(category_probe{}).value() == category::const_rvalue);
}

TEST_CASE("and_then chains steps that may fail and passes the first error on without calling f") {
    CHECK(result<int>(8).and_then(half).and_then(half).value() == 2);
    result<int> odd = result<int>(6).and_then(half).and_then(half);
    CHECK(odd.error() == std::errc::invalid_argument);
    int calls = 0;
    result<int> failed = result<int>(k_reset).and_then([&calls](int x) {
        ++calls;
        return result<int>(x);
    });
    CHECK(calls == 0);
    CHECK(failed.error() == k_reset);
    // To another value type, and to result<void>.
    result<std::string> text = result<int>(5).and_then(
        [](int x) { return result<std::string>(std::string(static_cast<std::size_t>(x), 'x')); });
    CHECK(text.value() == "xxxxx");
    result<void> none = result<int>(k_reset).and_then([](int) { return result<void>(); });
    CHECK(none.error() == k_reset);
}

TEST_CASE("transform maps the value in its value category and keeps the error") {
    result<int> r = 1;
    const result<int>& c = r;
    CHECK(r.transform(category_transform{}).value() == category::lvalue);
    CHECK(c.transform(category_transform{}).value() == category::const_lvalue);
    CHECK(std::move(r).transform(category_transform{}).value() == category::rvalue);
    CHECK(std::move(c).transform(category_transform{}).value() == category::const_rvalue);
    CHECK(result<int>(3).transform([](int x) { return x * 1.5; }).value() == 4.5);
    CHECK(result<int>(k_reset).transform([](int x) { return x * 2; }).error() == k_reset);
    int seen = 0;
    result<void> done = result<int>(7).transform([&seen](int x) { seen = x; });
    CHECK(done.has_value());
    CHECK(seen == 7);
}

TEST_CASE("or_else recovers from an error, or replaces it, and passes a value through") {
    result<int> recovered = result<int>(k_reset).or_else([](std::error_code e) {
        CHECK(e == k_reset);
        return result<int>(-1);
    });
    CHECK(recovered.value() == -1);
    result<int> other = result<int>(k_reset).or_else(
        [](std::error_code) { return result<int>(std::errc::timed_out); });
    CHECK(other.error() == std::errc::timed_out);
    int calls = 0;
    result<int> kept = result<int>(4).or_else([&calls](std::error_code) {
        ++calls;
        return result<int>(0);
    });
    CHECK(kept.value() == 4);
    CHECK(calls == 0);
}

TEST_CASE("transform_error maps the error and leaves a value alone") {
    auto to_timeout = [](std::error_code) { return std::errc::timed_out; };
    CHECK(result<int>(k_reset).transform_error(to_timeout).error() == std::errc::timed_out);
    CHECK(result<int>(2).transform_error(to_timeout).value() == 2);
    CHECK(result<void>(k_reset).transform_error(to_timeout).error() == std::errc::timed_out);
    CHECK(result<void>().transform_error(to_timeout).has_value());
}

TEST_CASE("value_or gives the value or the fallback, and moves a move-only value out") {
    const result<int> r = 3;
    CHECK(r.value_or(9) == 3);
    CHECK(result<int>(k_reset).value_or(9) == 9);
    result<std::unique_ptr<int>> owned = std::make_unique<int>(5);
    std::unique_ptr<int> p = std::move(owned).value_or(nullptr);
    REQUIRE(p != nullptr);
    CHECK(*p == 5);
    CHECK(result<std::unique_ptr<int>>(k_reset).value_or(nullptr) == nullptr);
    CHECK(result<std::string>(k_reset).value_or("fallback") == "fallback");
}

TEST_CASE("the monadic operations move a move-only value along an rvalue chain") {
    result<std::unique_ptr<int>> start = std::make_unique<int>(20);
    result<int> out = std::move(start)
                          .and_then([](std::unique_ptr<int> p) {
                              *p += 1;
                              return result<std::unique_ptr<int>>(std::move(p));
                          })
                          .transform([](std::unique_ptr<int> p) { return *p * 2; });
    CHECK(out.value() == 42);
    // An lvalue chain only looks at it.
    result<std::unique_ptr<int>> held = std::make_unique<int>(1);
    CHECK(held.transform([](const std::unique_ptr<int>& p) { return *p; }).value() == 1);
    CHECK(held.value() != nullptr);
}

TEST_CASE("the monadic operations destroy every value they construct") {
    counted::reset();
    {
        result<counted> r = counted(1);
        result<counted> a = r.and_then([](const counted& c) { return result<counted>(c); });
        result<int> t = std::move(r).transform([](counted c) { return c.value; });
        result<counted> o = a.or_else([](std::error_code) { return result<counted>(counted(0)); });
        CHECK(t.value() == 1);
        CHECK(o->value == 1);
    }
    CHECK(counted::alive() == 0);
}

TEST_CASE("result<void>: and_then, transform and or_else call f with no argument") {
    int calls = 0;
    result<int> next = result<void>().and_then([&calls] {
        ++calls;
        return result<int>(10);
    });
    CHECK(next.value() == 10);
    CHECK(result<void>(k_reset).and_then([&calls] {
                                   ++calls;
                                   return result<int>(0);
                               })
              .error() == k_reset);
    CHECK(calls == 1);
    CHECK(result<void>().transform([] { return std::string("ok"); }).value() == "ok");
    CHECK(result<void>(k_reset).transform([] {}).error() == k_reset);
    CHECK(result<void>(k_reset).or_else([](std::error_code) { return result<void>(); }).has_value());
    CHECK(result<void>().or_else([](std::error_code) { return result<void>(k_reset); }).has_value());
}

TEST_CASE("transfer_result: the count on success, the error and the bytes moved before it") {
    transfer_result whole = std::size_t{100};
    CHECK(whole.value() == 100);
    CHECK(whole.transferred() == 100);
    CHECK_FALSE(whole.error());
    transfer_result cut(std::errc::connection_reset, 40);
    CHECK_FALSE(cut);
    CHECK(cut.error() == std::errc::connection_reset);
    CHECK(cut.transferred() == 40);
    result<std::size_t> plain = cut; // the count is dropped, the error kept
    CHECK(plain.error() == std::errc::connection_reset);
    CHECK(cut.value_or(0) == 0);
    CHECK(whole.transform([](std::size_t n) { return n + 1; }).value() == 101);
}

TEST_CASE("io_errc::eof is its own error code in the corio.io category") {
    std::error_code eof = io_errc::eof;
    CHECK(eof == io_errc::eof);
    CHECK(eof.category() == io_category());
    CHECK(std::string(eof.category().name()) == "corio.io");
    CHECK(eof.message() == "end of stream before the requested number of bytes");
    CHECK(eof != std::errc::io_error);
    transfer_result r(io_errc::eof, 3);
    CHECK(r.error() == io_errc::eof);
    CHECK(r.transferred() == 3);
}

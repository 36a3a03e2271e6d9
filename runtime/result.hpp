// SPDX-License-Identifier: MIT
// result<T>: what an I/O operation produced, or the error the kernel reported, with the
// std::expected vocabulary (and_then, transform, or_else, transform_error, value_or); and
// transfer_result: a looping transfer's byte count, or its error together with the bytes moved.
#pragma once

#include <cassert>
#include <cerrno>
#include <cstddef>
#include <functional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

/// The error_code for a positive errno value, in the system category.
[[nodiscard]] inline std::error_code errno_code(int err) noexcept {
    return {err, std::system_category()};
}

/// corio's own I/O conditions (category "corio.io"): the ones the kernel has no errno for.
enum class io_errc {
    /// The stream ended before the buffer was full: the peer shut down during recv_exact, or the
    /// file ended during read_exact_at/readv_exact_at. The one end-of-stream error of net and fs;
    /// the bytes that did arrive are counted by transfer_result::transferred(). Like Asio's
    /// error::eof, it has no std::errc equivalent: compare with io_errc::eof.
    eof = 1,
};

namespace detail {
class io_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "corio.io"; }
    [[nodiscard]] std::string message(int value) const override {
        if (static_cast<io_errc>(value) == io_errc::eof)
            return "end of stream before the requested number of bytes";
        return "unknown corio.io error";
    }
};
} // namespace detail

/// The category of io_errc codes ("corio.io").
[[nodiscard]] inline const std::error_category& io_category() noexcept {
    static const detail::io_category_impl category;
    return category;
}

/// Makes `io_errc` usable wherever a std::error_code is expected.
[[nodiscard]] inline std::error_code make_error_code(io_errc e) noexcept {
    return {static_cast<int>(e), io_category()};
}

} // namespace corio

template <>
struct std::is_error_code_enum<corio::io_errc> : std::true_type {};

namespace corio {

template <class T>
class result;
class transfer_result;

namespace detail {
template <class R>
inline constexpr bool is_result_v = false;
template <class T>
inline constexpr bool is_result_v<result<T>> = true;
template <>
inline constexpr bool is_result_v<transfer_result> = true;

/// What `f` returns when called with the value of `r` (r's value category kept), or with
/// nothing for result<void>.
template <class R, class F, class V = typename std::remove_cvref_t<R>::value_type>
struct value_invoke {
    using type = std::invoke_result_t<F, decltype(*std::declval<R>())>;
};
template <class R, class F>
struct value_invoke<R, F, void> {
    using type = std::invoke_result_t<F>;
};
template <class R, class F>
using value_invoke_t = typename value_invoke<R, F>::type;

/// Calls `f` with the value of `r`, or with nothing for result<void>.
template <class R, class F>
constexpr decltype(auto) invoke_on_value(R&& r, F&& f) {
    if constexpr (std::is_void_v<typename std::remove_cvref_t<R>::value_type>)
        return std::invoke(std::forward<F>(f));
    else
        return std::invoke(std::forward<F>(f), *std::forward<R>(r));
}

// The monadic operations, written once for every value category and for result<void>. As in
// std::expected, they take the value with the category of the result they are called on.

template <class R, class F, class U = std::remove_cvref_t<value_invoke_t<R, F>>>
constexpr U and_then(R&& r, F&& f) {
    static_assert(is_result_v<U>, "and_then: the callable must return a corio::result<U>");
    if (r.has_value())
        return invoke_on_value(std::forward<R>(r), std::forward<F>(f));
    return U(r.error());
}

template <class R, class F, class U = std::remove_cv_t<value_invoke_t<R, F>>>
constexpr result<U> transform(R&& r, F&& f) {
    static_assert(!std::is_reference_v<U> && !std::is_array_v<U>,
                  "transform: the callable must return a value type (or void)");
    if (!r.has_value())
        return result<U>(r.error());
    if constexpr (std::is_void_v<U>) {
        invoke_on_value(std::forward<R>(r), std::forward<F>(f));
        return result<U>(); // U, not void: clang wants result<void> complete here otherwise
    } else {
        return result<U>(invoke_on_value(std::forward<R>(r), std::forward<F>(f)));
    }
}

template <class R, class F, class G = std::remove_cvref_t<std::invoke_result_t<F, std::error_code>>>
constexpr G or_else(R&& r, F&& f) {
    using T = typename std::remove_cvref_t<R>::value_type;
    static_assert(is_result_v<G> && std::is_same_v<typename G::value_type, T>,
                  "or_else: the callable must return a corio::result of the same value type");
    if (!r.has_value())
        return std::invoke(std::forward<F>(f), r.error());
    if constexpr (std::is_void_v<T>)
        return G();
    else
        return G(*std::forward<R>(r));
}

template <class R, class F, class G = std::remove_cv_t<std::invoke_result_t<F, std::error_code>>>
constexpr result<typename std::remove_cvref_t<R>::value_type> transform_error(R&& r, F&& f) {
    using T = typename std::remove_cvref_t<R>::value_type;
    static_assert(std::is_convertible_v<G, std::error_code> || std::is_same_v<G, std::errc>,
                  "transform_error: result's error type is std::error_code, so the callable must "
                  "return one (or std::errc, or an error code enum)");
    if (r.has_value()) {
        if constexpr (std::is_void_v<T>)
            return result<T>();
        else
            return result<T>(*std::forward<R>(r));
    }
    if constexpr (std::is_same_v<G, std::errc>)
        return result<T>(std::make_error_code(std::invoke(std::forward<F>(f), r.error())));
    else
        return result<T>(std::error_code(std::invoke(std::forward<F>(f), r.error())));
}

} // namespace detail

/// A value of type T, or a std::error_code saying why there is none: std::expected<T,
/// std::error_code> in C++20, with its vocabulary (and_then, transform, or_else,
/// transform_error, value_or). `value()` throws std::system_error when there is no value; `*r`
/// asserts instead. Unlike std::expected, `error()` returns by value and may be called on a
/// success (it is then an empty error_code), and the error is never an empty code.
template <class T>
class [[nodiscard]] result {
public:
    /// The type of the value.
    using value_type = T;
    /// The type of the error: always std::error_code.
    using error_type = std::error_code;
    /// The result of another value type, as std::expected::rebind.
    template <class U>
    using rebind = result<U>;

    /// A result holding `value`.
    constexpr result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : m_state(std::in_place_index<0>, std::move(value)) {}
    /// A result holding `error`, which must be an actual error (asserted).
    result(std::error_code error) noexcept : m_state(std::in_place_index<1>, error) {
        assert(error && "a result error must be an actual error");
    }
    /// A result holding the error std::make_error_code(error).
    result(std::errc error) noexcept : result(std::make_error_code(error)) {}

    /// True when this holds a value.
    [[nodiscard]] constexpr bool has_value() const noexcept { return m_state.index() == 0; }
    /// has_value(): `if (r)` reads "if it worked".
    constexpr explicit operator bool() const noexcept { return has_value(); }

    /// The error, or an empty error_code when there is a value.
    // NOTE: g++ 12 with ASan at -O2 reports a false -Wmaybe-uninitialized for the error
    // alternative once a monadic operation inlines this after its own has_value() test (the
    // std::optional/std::variant false positives of GCC PR 80635's family).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
    [[nodiscard]] std::error_code error() const noexcept {
        return has_value() ? std::error_code{} : std::get<1>(m_state);
    }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

    /// The value; throws std::system_error holding error() when there is none.
    [[nodiscard]] constexpr T& value() & { throw_if_error(); return std::get<0>(m_state); }
    /// The value; throws std::system_error holding error() when there is none.
    [[nodiscard]] constexpr const T& value() const& {
        throw_if_error();
        return std::get<0>(m_state);
    }
    /// The value, moved out; throws std::system_error holding error() when there is none.
    [[nodiscard]] constexpr T&& value() && {
        throw_if_error();
        return std::get<0>(std::move(m_state));
    }
    /// The value, moved out; throws std::system_error holding error() when there is none.
    [[nodiscard]] constexpr const T&& value() const&& {
        throw_if_error();
        return std::get<0>(std::move(m_state));
    }

    /// The value, or `fallback` converted to T when there is none.
    template <class U>
    [[nodiscard]] constexpr T value_or(U&& fallback) const& {
        static_assert(std::is_copy_constructible_v<T> && std::is_convertible_v<U&&, T>);
        return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
    }
    /// The value moved out, or `fallback` converted to T (for move-only T).
    template <class U>
    [[nodiscard]] constexpr T value_or(U&& fallback) && {
        static_assert(std::is_move_constructible_v<T> && std::is_convertible_v<U&&, T>);
        return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
    }

    /// The value without a check: asserts that there is one (undefined in a release build if not).
    constexpr T& operator*() & noexcept { assert(has_value()); return *value_ptr(); }
    /// The value without a check: asserts that there is one.
    constexpr const T& operator*() const& noexcept { assert(has_value()); return *value_ptr(); }
    /// The value moved out, without a check: asserts that there is one.
    constexpr T&& operator*() && noexcept { return std::move(**this); }
    /// The value moved out, without a check: asserts that there is one.
    constexpr const T&& operator*() const&& noexcept { return std::move(**this); }
    /// Member access to the value; asserts that there is one.
    constexpr T* operator->() noexcept { assert(has_value()); return value_ptr(); }
    /// Member access to the value; asserts that there is one.
    constexpr const T* operator->() const noexcept { assert(has_value()); return value_ptr(); }

    /// `f(value)` when there is a value (f returns a `result<U>`), else the error as a `result<U>`:
    /// chains steps that may each fail without repeating `if (!r) return r.error();`.
    template <class F>
    constexpr auto and_then(F&& f) & { return detail::and_then(*this, std::forward<F>(f)); }
    /// and_then() on a const result.
    template <class F>
    constexpr auto and_then(F&& f) const& { return detail::and_then(*this, std::forward<F>(f)); }
    /// and_then() on an rvalue result (the value or error is moved).
    template <class F>
    constexpr auto and_then(F&& f) && {
        return detail::and_then(std::move(*this), std::forward<F>(f));
    }
    /// and_then() on a const rvalue result.
    template <class F>
    constexpr auto and_then(F&& f) const&& {
        return detail::and_then(std::move(*this), std::forward<F>(f));
    }

    /// `result<U>{f(value)}` when there is a value (U may be void), else the error.
    template <class F>
    constexpr auto transform(F&& f) & { return detail::transform(*this, std::forward<F>(f)); }
    /// transform() on a const result.
    template <class F>
    constexpr auto transform(F&& f) const& { return detail::transform(*this, std::forward<F>(f)); }
    /// transform() on an rvalue result (the value or error is moved).
    template <class F>
    constexpr auto transform(F&& f) && {
        return detail::transform(std::move(*this), std::forward<F>(f));
    }
    /// transform() on a const rvalue result.
    template <class F>
    constexpr auto transform(F&& f) const&& {
        return detail::transform(std::move(*this), std::forward<F>(f));
    }

    /// `f(error)` when there is an error (f returns a `result<T>`: a recovery, or another
    /// error), else the value as that result.
    template <class F>
    constexpr auto or_else(F&& f) & { return detail::or_else(*this, std::forward<F>(f)); }
    /// or_else() on a const result.
    template <class F>
    constexpr auto or_else(F&& f) const& { return detail::or_else(*this, std::forward<F>(f)); }
    /// or_else() on an rvalue result (the value or error is moved).
    template <class F>
    constexpr auto or_else(F&& f) && {
        return detail::or_else(std::move(*this), std::forward<F>(f));
    }
    /// or_else() on a const rvalue result.
    template <class F>
    constexpr auto or_else(F&& f) const&& {
        return detail::or_else(std::move(*this), std::forward<F>(f));
    }

    /// The value, or the error mapped by `f` (which returns a non-empty std::error_code,
    /// std::errc or an error code enum: the error type stays std::error_code).
    template <class F>
    constexpr result transform_error(F&& f) & {
        return detail::transform_error(*this, std::forward<F>(f));
    }
    /// transform_error() on a const result.
    template <class F>
    constexpr result transform_error(F&& f) const& {
        return detail::transform_error(*this, std::forward<F>(f));
    }
    /// transform_error() on an rvalue result (the value or error is moved).
    template <class F>
    constexpr result transform_error(F&& f) && {
        return detail::transform_error(std::move(*this), std::forward<F>(f));
    }
    /// transform_error() on a const rvalue result.
    template <class F>
    constexpr result transform_error(F&& f) const&& {
        return detail::transform_error(std::move(*this), std::forward<F>(f));
    }

    /// True when this holds the error `e` (`r == std::errc::timed_out`).
    friend bool operator==(const result& r, std::errc e) noexcept { return r.error() == e; }

private:
    // NOTE: get_if lets the optimiser drop the index test (a null result would be UB to use);
    // g++ 12 refuses get_if's null test in a constant expression, so std::get there.
    constexpr T* value_ptr() noexcept {
        if (std::is_constant_evaluated())
            return &std::get<0>(m_state);
        return std::get_if<0>(&m_state);
    }
    constexpr const T* value_ptr() const noexcept {
        if (std::is_constant_evaluated())
            return &std::get<0>(m_state);
        return std::get_if<0>(&m_state);
    }

    constexpr void throw_if_error() const {
        if (!has_value())
            throw std::system_error(std::get<1>(m_state));
    }

    std::variant<T, std::error_code> m_state; // the value, or why there is none
};

/// Success or an error, for operations that produce nothing but their outcome. and_then,
/// transform and or_else call their callable with no argument for the value.
template <>
class [[nodiscard]] result<void> {
public:
    /// There is no value: only success or an error.
    using value_type = void;
    /// The type of the error: always std::error_code.
    using error_type = std::error_code;
    /// The result of another value type, as std::expected::rebind.
    template <class U>
    using rebind = result<U>;

    /// Success.
    constexpr result() noexcept = default;
    /// The error `error`, or success when `error` is empty.
    result(std::error_code error) noexcept
        : m_category(error ? &error.category() : nullptr), m_value(error.value()) {}
    /// The error std::make_error_code(error).
    result(std::errc error) noexcept : result(std::make_error_code(error)) {}

    /// True on success.
    [[nodiscard]] constexpr bool has_value() const noexcept { return m_category == nullptr; }
    /// has_value(): `if (r)` reads "if it worked".
    constexpr explicit operator bool() const noexcept { return has_value(); }
    /// The error, or an empty error_code on success.
    [[nodiscard]] std::error_code error() const noexcept {
        return m_category ? std::error_code(m_value, *m_category) : std::error_code{};
    }

    /// Throws std::system_error when this holds an error.
    constexpr void value() const {
        if (m_category)
            throw std::system_error(error());
    }
    /// Asserts that there is no error (std::expected<void>'s `*r`).
    constexpr void operator*() const noexcept { assert(has_value()); }

    /// `f()` when there is no error (f returns a `result<U>`), else the error as a `result<U>`.
    template <class F>
    constexpr auto and_then(F&& f) const { return detail::and_then(*this, std::forward<F>(f)); }
    /// `result<U>{f()}` when there is no error (U may be void), else the error.
    template <class F>
    constexpr auto transform(F&& f) const { return detail::transform(*this, std::forward<F>(f)); }
    /// `f(error)` when there is an error (f returns a `result<void>`), else success.
    template <class F>
    constexpr auto or_else(F&& f) const { return detail::or_else(*this, std::forward<F>(f)); }
    /// Success, or the error mapped by `f` (a std::error_code, std::errc or error code enum).
    template <class F>
    constexpr result transform_error(F&& f) const {
        return detail::transform_error(*this, std::forward<F>(f));
    }

    /// True when this holds the error `e`.
    friend bool operator==(const result& r, std::errc e) noexcept { return r.error() == e; }

private:
    // Not a std::error_code: building an empty one calls into libstdc++ (system_category()) on
    // every successful operation; a null pointer costs nothing.
    const std::error_category* m_category = nullptr; // null on success
    int m_value = 0;                                  // the error's value, when there is one
};

/// What a looping transfer produced (send_all, recv_exact and their vectored forms; file
/// read_at, read_exact_at, write_all_at, write_all and the vectored forms): a result<size_t>
/// that also knows how many bytes moved before an error, like the (error, bytes) pair Asio's
/// async_write/async_read hand their completion handler. The common case reads as before:
/// `auto n = co_await s.send_all(buf); if (!n) ...`; after a failure `n.transferred()` says
/// how far it got (the bytes received are in the buffer; the bytes sent reached the kernel),
/// and `n.error() == io_errc::eof` says the stream ended first. Converts to result<size_t>
/// (the count is then dropped), and the monadic operations return plain results.
class [[nodiscard]] transfer_result : public result<std::size_t> {
public:
    /// Success: all `n` bytes moved.
    constexpr transfer_result(std::size_t n) noexcept : result(n), m_transferred(n) {}
    /// Failure with `error` after `transferred` bytes had moved.
    transfer_result(std::error_code error, std::size_t transferred = 0) noexcept
        : result(error), m_transferred(transferred) {}
    /// Failure with the error std::make_error_code(error) after `transferred` bytes had moved.
    transfer_result(std::errc error, std::size_t transferred = 0) noexcept
        : transfer_result(std::make_error_code(error), transferred) {}

    /// The bytes moved: the value on success, the bytes moved before the error on failure.
    [[nodiscard]] constexpr std::size_t transferred() const noexcept { return m_transferred; }

private:
    std::size_t m_transferred; // == the value on success; the progress before the error else
};

namespace detail {

/// The one place where a completion's `res` becomes a result: negative values are -errno.
template <class T>
[[nodiscard]] result<T> result_from_res(int res) noexcept {
    if (res < 0)
        return errno_code(-res);
    if constexpr (std::is_void_v<T>)
        return {};
    else
        return static_cast<T>(res);
}

} // namespace detail
} // namespace corio

// SPDX-License-Identifier: MIT
// result<T>: what an I/O operation produced, or the error the kernel reported. Errors on the I/O
// path are values; exceptions are for setup failures and for user code.
#pragma once

#include <cassert>
#include <cerrno>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

/// The error_code for a positive errno value, in the system category.
[[nodiscard]] inline std::error_code errno_code(int err) noexcept {
    return {err, std::system_category()};
}

/// A value of type T, or a std::error_code saying why there is none.
/// `value()` throws std::system_error when there is no value; `*r` asserts instead.
template <class T>
class [[nodiscard]] result {
public:
    /// The type of the value.
    using value_type = T;

    /// A result holding `value`.
    result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : m_state(std::in_place_index<0>, std::move(value)) {}
    /// A result holding `error`, which must be an actual error (asserted).
    result(std::error_code error) noexcept : m_state(std::in_place_index<1>, error) {
        assert(error && "a result error must be an actual error");
    }
    /// A result holding the error std::make_error_code(error).
    result(std::errc error) noexcept : result(std::make_error_code(error)) {}

    /// True when this holds a value.
    [[nodiscard]] bool has_value() const noexcept { return m_state.index() == 0; }
    /// has_value(): `if (r)` reads "if it worked".
    explicit operator bool() const noexcept { return has_value(); }

    /// The error, or an empty error_code when there is a value.
    [[nodiscard]] std::error_code error() const noexcept {
        return has_value() ? std::error_code{} : std::get<1>(m_state);
    }

    /// The value; throws std::system_error holding error() when there is none.
    [[nodiscard]] T& value() & { throw_if_error(); return std::get<0>(m_state); }
    /// The value; throws std::system_error holding error() when there is none.
    [[nodiscard]] const T& value() const& { throw_if_error(); return std::get<0>(m_state); }
    /// The value, to move out of a temporary result; throws std::system_error holding error() when
    /// there is none.
    [[nodiscard]] T&& value() && { throw_if_error(); return std::get<0>(std::move(m_state)); }

    /// A copy of the value, or `fallback` converted to T when this holds an error.
    template <class U>
    [[nodiscard]] T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(m_state) : static_cast<T>(std::forward<U>(fallback));
    }

    /// The value without a check: asserts that there is one (undefined in a release build if not).
    T& operator*() & noexcept { assert(has_value()); return *std::get_if<0>(&m_state); }
    /// The value without a check: asserts that there is one (undefined in a release build if not).
    const T& operator*() const& noexcept { assert(has_value()); return *std::get_if<0>(&m_state); }
    /// Member access to the value; asserts that there is one.
    T* operator->() noexcept { assert(has_value()); return std::get_if<0>(&m_state); }
    /// Member access to the value; asserts that there is one.
    const T* operator->() const noexcept { assert(has_value()); return std::get_if<0>(&m_state); }

    friend bool operator==(const result& r, std::errc e) noexcept { return r.error() == e; }

private:
    void throw_if_error() const {
        if (!has_value())
            throw std::system_error(std::get<1>(m_state));
    }

    std::variant<T, std::error_code> m_state; // the value, or why there is none
};

/// Success or an error, for operations that produce nothing but their outcome.
template <>
class [[nodiscard]] result<void> {
public:
    /// There is no value: only success or an error.
    using value_type = void;

    result() noexcept = default;
    /// Success when `error` is empty, otherwise that error.
    result(std::error_code error) noexcept
        : m_category(error ? &error.category() : nullptr), m_value(error.value()) {}
    /// The error std::make_error_code(error).
    result(std::errc error) noexcept : result(std::make_error_code(error)) {}

    /// True on success.
    [[nodiscard]] bool has_value() const noexcept { return m_category == nullptr; }
    /// has_value(): `if (r)` reads "if it worked".
    explicit operator bool() const noexcept { return has_value(); }
    /// The error, or an empty error_code on success.
    [[nodiscard]] std::error_code error() const noexcept {
        return m_category ? std::error_code(m_value, *m_category) : std::error_code{};
    }

    /// Throws std::system_error when this holds an error.
    void value() const {
        if (m_category)
            throw std::system_error(error());
    }

    friend bool operator==(const result& r, std::errc e) noexcept { return r.error() == e; }

private:
    // Not a std::error_code: building an empty one calls into libstdc++ (system_category()) on
    // every successful operation; a null pointer costs nothing.
    const std::error_category* m_category = nullptr; // null on success
    int m_value = 0;                                  // the error's value, when there is one
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

// SPDX-License-Identifier: MIT
// when_all: run tasks concurrently and wait for all of them. If one throws, the others are
// cancelled, every one is still waited for, and the first exception is rethrown.
#pragma once

#include <corio/runtime/detail/join_state.hpp>
#include <corio/runtime/task.hpp>

#include <cstddef>
#include <tuple>
#include <utility>
#include <vector>

namespace corio {

template <class... T>
/// The awaiter of when_all(tasks...). The co_await starts every task and resumes with a tuple of
/// their values in argument order (std::monostate for task<void>) once all have finished. If one
/// throws, the others are cancelled, all are waited for and the first exception is rethrown.
class [[nodiscard]] when_all_op : private detail::join_state {
public:
    /// Takes ownership of the tasks; none starts before the co_await.
    explicit when_all_op(task<T>... tasks) noexcept : m_tasks(std::move(tasks)...) {}

    [[nodiscard]] bool await_ready() const noexcept { return sizeof...(T) == 0; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        return start_all(parent, sizeof...(T), [this](auto start) {
            std::apply([&](auto&... t) { (start(t.handle().promise(), t.handle()), ...); },
                       m_tasks);
        });
    }

    /// Each task's value in argument order (std::monostate for task<void>).
    std::tuple<detail::non_void_t<T>...> await_resume() {
        unlink_parent();
        if (m_error)
            std::rethrow_exception(m_error);
        return std::apply(
            [](auto&... t) { return std::tuple{detail::take_non_void(t.handle().promise())...}; },
            m_tasks);
    }

private:
    void child_done(detail::promise_base& child) noexcept override {
        if (child.m_exception && !m_error) {
            m_error = child.m_exception;
            m_stop.request_stop();
        }
    }

    std::tuple<task<T>...> m_tasks; // the children; their frames live until this op is gone
};

template <class T>
/// The awaiter of when_all(std::vector<task<T>>): like when_all_op, resuming with a vector of the
/// values in input order. An empty vector completes at once.
class [[nodiscard]] when_all_range_op : private detail::join_state {
public:
    /// Takes ownership of the tasks; none starts before the co_await.
    explicit when_all_range_op(std::vector<task<T>> tasks) noexcept : m_tasks(std::move(tasks)) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_tasks.empty(); }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        return start_all(parent, m_tasks.size(), [this](auto start) {
            for (task<T>& t : m_tasks)
                start(t.handle().promise(), t.handle());
        });
    }

    /// Each task's value in input order (std::monostate for task<void>).
    std::vector<detail::non_void_t<T>> await_resume() {
        unlink_parent();
        if (m_error)
            std::rethrow_exception(m_error);
        std::vector<detail::non_void_t<T>> values;
        values.reserve(m_tasks.size());
        for (task<T>& t : m_tasks)
            values.push_back(detail::take_non_void(t.handle().promise()));
        return values;
    }

private:
    void child_done(detail::promise_base& child) noexcept override {
        if (child.m_exception && !m_error) {
            m_error = child.m_exception;
            m_stop.request_stop();
        }
    }

    std::vector<task<T>> m_tasks; // the children
};

/// Runs every task concurrently on the current loop (each starts inline, in order) and resumes
/// with all their values. Cancelling the awaiter cancels all of them.
template <class... T>
[[nodiscard]] when_all_op<T...> when_all(task<T>... tasks) {
    return when_all_op<T...>(std::move(tasks)...);
}

/// when_all over a run-time number of tasks of one type.
template <class T>
[[nodiscard]] when_all_range_op<T> when_all(std::vector<task<T>> tasks) {
    return when_all_range_op<T>(std::move(tasks));
}

} // namespace corio

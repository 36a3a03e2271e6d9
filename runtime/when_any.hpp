// SPDX-License-Identifier: MIT
// when_any: run tasks concurrently; the first to finish wins, the others are cancelled and waited
// for. timeout(): a deadline for any task, built on when_any and a timer.
#pragma once

#include <corio/runtime/detail/join_state.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/timer.hpp>

#include <chrono>
#include <cstddef>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

/// Which task won a when_any, and its value (std::monostate for task<void>).
template <class... T>
struct when_any_result {
    std::size_t index = 0;                          ///< the winner's position in the arguments
    std::variant<detail::non_void_t<T>...> value;   ///< the winner's value, at that same index
};

template <class... T>
/// The awaiter of when_any(tasks...). The co_await starts every task and resumes with a
/// when_any_result (the first to finish and its value) after the others were cancelled and have
/// finished too; rethrows if the winner threw.
class [[nodiscard]] when_any_op : private detail::join_state {
public:
    /// Takes ownership of the tasks; none starts before the co_await.
    explicit when_any_op(task<T>... tasks) noexcept : m_tasks(std::move(tasks)...) {}

    static_assert(sizeof...(T) > 0, "when_any needs at least one task");

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        return start_all(parent, sizeof...(T), [this](auto start) {
            std::apply([&](auto&... t) { (start(t.handle().promise(), t.handle()), ...); },
                       m_tasks);
        });
    }

    /// The winner's value; rethrows if the winner threw. Losers' values and exceptions are
    /// dropped (a loser may have completed before its cancellation reached it).
    when_any_result<T...> await_resume() {
        unlink_parent();
        return take<0>();
    }

private:
    template <std::size_t I>
    when_any_result<T...> take() {
        if constexpr (I < sizeof...(T)) {
            if (m_winner != &std::get<I>(m_tasks).handle().promise())
                return take<I + 1>();
            auto value = detail::take_non_void(std::get<I>(m_tasks).handle().promise());
            return {I, std::variant<detail::non_void_t<T>...>(std::in_place_index<I>,
                                                               std::move(value))};
        } else {
            std::terminate(); // unreachable: some child always finishes first
        }
    }

    void child_done(detail::promise_base& child) noexcept override {
        if (m_winner)
            return;
        m_winner = &child;
        m_stop.request_stop();
    }

    std::tuple<task<T>...> m_tasks;             // the contenders
    detail::promise_base* m_winner = nullptr;   // the first to finish
};

template <class T>
/// The awaiter of when_any(std::vector<task<T>>): like when_any_op, resuming with the winner's
/// index in the input and its value. The vector must not be empty (asserted).
class [[nodiscard]] when_any_range_op : private detail::join_state {
public:
    /// Takes ownership of the tasks; none starts before the co_await.
    explicit when_any_range_op(std::vector<task<T>> tasks) noexcept : m_tasks(std::move(tasks)) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        assert(!m_tasks.empty() && "when_any needs at least one task");
        return start_all(parent, m_tasks.size(), [this](auto start) {
            for (task<T>& t : m_tasks)
                start(t.handle().promise(), t.handle());
        });
    }

    /// The winner's index in the input and its value; rethrows if the winner threw.
    std::pair<std::size_t, detail::non_void_t<T>> await_resume() {
        unlink_parent();
        for (std::size_t i = 0; i < m_tasks.size(); ++i) {
            auto& promise = m_tasks[i].handle().promise();
            if (&promise == m_winner)
                return {i, detail::take_non_void(promise)};
        }
        std::terminate(); // unreachable
    }

private:
    void child_done(detail::promise_base& child) noexcept override {
        if (m_winner)
            return;
        m_winner = &child;
        m_stop.request_stop();
    }

    std::vector<task<T>> m_tasks;
    detail::promise_base* m_winner = nullptr;
};

/// Runs every task concurrently; resumes when all have finished, with the first one's result.
/// The others are cancelled as soon as the first finishes. Each starts inline, in order.
template <class... T>
[[nodiscard]] when_any_op<T...> when_any(task<T>... tasks) {
    return when_any_op<T...>(std::move(tasks)...);
}

/// when_any over a run-time number of tasks of one type.
template <class T>
[[nodiscard]] when_any_range_op<T> when_any(std::vector<task<T>> tasks) {
    return when_any_range_op<T>(std::move(tasks));
}

namespace detail {
template <class T>
struct timeout_result {
    using type = result<T>;
};
template <class T>
struct timeout_result<result<T>> {
    using type = result<T>;
};
// A transfer that timed out was cancelled midway: its count is not known, so a timeout of it
// gives a plain result<size_t>.
template <>
struct timeout_result<transfer_result> {
    using type = result<std::size_t>;
};
template <class T>
using timeout_result_t = typename timeout_result<T>::type;

inline task<void> sleep_task(std::int64_t limit_ns) {
    sleep_op timer(limit_ns, false);
    // Cancellation of the timer (the task won) is the normal case: nothing to report.
    [[maybe_unused]] result<void> expired = co_await timer;
}

template <class T>
task<timeout_result_t<T>> timeout_task(task<T> work, std::int64_t limit) {
    task<void> timer = sleep_task(limit);
    auto race = when_any(std::move(work), std::move(timer));
    auto outcome = co_await race;
    if (outcome.index == 1)
        co_return std::errc::timed_out;
    if constexpr (std::is_void_v<T>)
        co_return result<void>{};
    else
        co_return std::move(std::get<0>(outcome.value));
}
} // namespace detail

/// Runs `work` with a deadline: its value (as a result), or errc::timed_out after `d`, in which
/// case `work` was cancelled and has finished. A task<result<X>> gives result<X> (flattened);
/// a task<transfer_result> gives result<size_t> (the bytes moved before the cancel are unknown).
template <class T, class Rep, class Period>
[[nodiscard]] task<detail::timeout_result_t<T>> timeout(task<T> work,
                                                        std::chrono::duration<Rep, Period> d) {
    return detail::timeout_task(std::move(work), detail::to_ns(d));
}

/// timeout() for an op that is not a task (e.g. `stream.send_all(data)`, which may take several
/// SQEs and so cannot use with_timeout()): runs it through as_task().
template <class Awaitable, class Rep, class Period>
    requires(!detail::is_task_v<Awaitable>)
[[nodiscard]] auto timeout(Awaitable op, std::chrono::duration<Rep, Period> d) {
    return timeout(as_task(std::move(op)), d);
}

} // namespace corio

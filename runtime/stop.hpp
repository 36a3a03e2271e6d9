// SPDX-License-Identifier: MIT
// Single-threaded cancellation: a stop_source, the tokens that observe it, and callbacks that run
// when stop is requested. No atomics and no allocation: everything here lives on one loop.
#pragma once

#include <cassert>
#include <coroutine>
#include <utility>

namespace corio {

class stop_token;

namespace detail {
struct stop_access;

/// An intrusive callback registered with a stop_source. Unlinked before it is invoked.
struct stop_callback_node {
    stop_callback_node() noexcept
        : m_invoke(nullptr), m_prev(nullptr), m_next(nullptr), m_linked(false) {}
    /// For nodes that set m_invoke and m_linked = false right before registering (hot paths).
    struct unset_t {};
    explicit stop_callback_node(unset_t) noexcept {}

    void (*m_invoke)(stop_callback_node*) noexcept; // what to do on stop
    stop_callback_node* m_prev;                      // neighbours while registered
    stop_callback_node* m_next;
    bool m_linked; // registered and not yet invoked
};

/// The state shared by a source and its tokens.
class stop_state {
public:
    [[nodiscard]] bool stop_requested() const noexcept { return m_requested; }

    /// Runs every registered callback once, in registration order. Idempotent.
    void request_stop() noexcept {
        if (m_requested)
            return;
        m_requested = true;
        while (stop_callback_node* node = m_head) {
            unlink(node);
            node->m_invoke(node);
        }
    }

    /// Registers `node`, or invokes it at once when stop was already requested.
    void add(stop_callback_node* node) noexcept {
        assert(!node->m_linked);
        if (m_requested) {
            node->m_invoke(node);
            return;
        }
        node->m_linked = true;
        node->m_next = nullptr;
        node->m_prev = m_tail;
        (m_tail ? m_tail->m_next : m_head) = node;
        m_tail = node;
    }

    /// Unregisters `node` if it is still registered.
    void remove(stop_callback_node* node) noexcept {
        if (node->m_linked)
            unlink(node);
    }

private:
    void unlink(stop_callback_node* node) noexcept {
        (node->m_prev ? node->m_prev->m_next : m_head) = node->m_next;
        (node->m_next ? node->m_next->m_prev : m_tail) = node->m_prev;
        node->m_prev = node->m_next = nullptr;
        node->m_linked = false;
    }

    stop_callback_node* m_head = nullptr; // callbacks in registration order
    stop_callback_node* m_tail = nullptr;
    bool m_requested = false;
};

} // namespace detail

/// Observes a stop_source. Cheap to copy; must not outlive its source (structured concurrency
/// guarantees that: a scope, when_any or io_context outlives every task it gave a token to).
class stop_token {
public:
    stop_token() noexcept = default;

    /// False for a default-constructed token: nothing can ever request stop through it.
    [[nodiscard]] bool stop_possible() const noexcept { return m_state != nullptr; }
    /// True once stop was requested on the source this token observes.
    [[nodiscard]] bool stop_requested() const noexcept {
        return m_state != nullptr && m_state->stop_requested();
    }

    friend bool operator==(stop_token, stop_token) noexcept = default;

private:
    friend class stop_source;
    template <class F>
    friend class stop_callback;
    friend struct detail::stop_access;

    explicit stop_token(detail::stop_state* state) noexcept : m_state(state) {}

    detail::stop_state* m_state = nullptr; // null: stop can never be requested
};

namespace detail {
/// Internal access for the runtime's op machinery (registers raw nodes without a template).
struct stop_access {
    static stop_state* state(stop_token token) noexcept { return token.m_state; }
};
} // namespace detail

/// Owns a stop state. Neither copyable nor movable: tokens point at it.
class stop_source {
public:
    stop_source() noexcept = default;
    stop_source(const stop_source&) = delete;
    stop_source& operator=(const stop_source&) = delete;

    /// A token observing this source; valid while the source lives.
    [[nodiscard]] stop_token token() noexcept { return stop_token(&m_state); }
    /// True once request_stop() was called.
    [[nodiscard]] bool stop_requested() const noexcept { return m_state.stop_requested(); }

    /// Invokes every registered callback (each op in flight submits its async cancel).
    void request_stop() noexcept { m_state.request_stop(); }

private:
    detail::stop_state m_state;
};

/// Runs `F` when stop is requested on `token` while this object is alive; runs it at once in the
/// constructor when stop was already requested.
template <class F>
class stop_callback : private detail::stop_callback_node {
public:
    /// Registers `fn` with `token` (a default token: never called); calls it at once when stop was
    /// already requested. The destructor unregisters it.
    stop_callback(stop_token token, F fn) noexcept : m_state(token.m_state), m_fn(std::move(fn)) {
        m_invoke = [](detail::stop_callback_node* node) noexcept {
            static_cast<stop_callback*>(node)->m_fn();
        };
        if (m_state)
            m_state->add(this);
    }
    ~stop_callback() {
        if (m_state)
            m_state->remove(this);
    }
    stop_callback(const stop_callback&) = delete;
    stop_callback& operator=(const stop_callback&) = delete;

private:
    detail::stop_state* m_state; // where this callback is registered, or null
    F m_fn;                      // what runs on stop
};

namespace detail {
/// A promise that carries a stop token exposes it; awaitables awaited from any other coroutine
/// type simply cannot be cancelled.
template <class Promise>
[[nodiscard]] stop_token stop_token_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (requires { h.promise().stop_token(); })
        return h.promise().stop_token();
    else
        return {};
}
} // namespace detail

} // namespace corio

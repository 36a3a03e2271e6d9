// SPDX-License-Identifier: MIT
// Thread-per-core shards: a group of loops, one thread and one io_context each, that share
// nothing and talk by messages. A cross-shard call (`co_await on_shard(k, fn)`) runs fn on shard
// k and resumes the caller on its own shard; wake-ups go through IORING_OP_MSG_RING from ring to
// ring (an eventfd on the epoll backend, on kernels without it, and from threads outside the
// group). Many messages to one shard cost one wake-up; no lock is taken on the way.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/event.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

class shard_group;
class shard;

namespace detail {

/// One message between shards: intrusive, so sending allocates nothing. `m_run` is called on the
/// receiving shard's loop thread, from inside the loop's reaping: it must only queue work (post a
/// waiter, spawn a task), never resume a coroutine itself.
struct shard_message {
    std::atomic<shard_message*> m_next{nullptr};
    void (*m_run)(shard_message*) noexcept = nullptr;
    /// For a message that owns itself (shard_group::post): frees it when the group ends before
    /// it could run. Null for messages that live in a frame.
    void (*m_drop)(shard_message*) noexcept = nullptr;
};

/// A multi-producer single-consumer queue of messages (Vyukov's intrusive one): a push is one
/// atomic exchange, whatever thread makes it; only the owning shard pops.
class message_queue {
public:
    message_queue() noexcept : m_head(&m_stub), m_tail(&m_stub) {}
    message_queue(const message_queue&) = delete;
    message_queue& operator=(const message_queue&) = delete;

    /// Any thread.
    void push(shard_message* m) noexcept { push_chain(m, m); }
    /// Any thread: appends `first` .. `last`, already linked through m_next, in one exchange.
    void push_chain(shard_message* first, shard_message* last) noexcept {
        last->m_next.store(nullptr, std::memory_order_relaxed);
        shard_message* previous = m_head.exchange(last, std::memory_order_acq_rel);
        previous->m_next.store(first, std::memory_order_release);
    }
    /// The owner only: true when a message is waiting or a push has begun (its exchange is
    /// what this reads, so a push ordered before this look is seen even half done).
    [[nodiscard]] bool may_have_messages() const noexcept {
        return m_tail != &m_stub || m_head.load(std::memory_order_acquire) != &m_stub;
    }
    /// The owner only. Null when empty, or when a push is half done (its producer was preempted
    /// between its two steps): the producer's wake-up follows, so the consumer looks again then.
    shard_message* pop() noexcept;

private:
    std::atomic<shard_message*> m_head; // where producers append
    shard_message* m_tail;              // where the consumer takes (owner only)
    shard_message m_stub;               // keeps the list non-empty
};

template <class R, class F>
class cross_shard_call;

} // namespace detail

/// How a shard_group is set up.
struct shard_options {
    /// Number of shards; 0: one per CPU this process may run on (or per entry of `cpus`).
    unsigned count = 1;
    /// CPUs to pin the shards to: shard i runs on cpus[i % cpus.size()]. Empty: not pinned.
    std::vector<int> cpus;
    /// Each shard's io_context (its backend, ring sizes, ...).
    io_context_options context;
    /// How long a shard with nothing to do looks at its inbox before it sleeps. 0 (the
    /// default): it sleeps at once and messages wake it (MSG_RING, eventfd). A few tens of
    /// microseconds let shards that talk a lot answer without sleeping and waking each other
    /// (Seastar polls all the time), at the price of that much CPU each time a shard falls idle.
    /// The spin ends early on a message, a completion of the shard's own ring, or its next timer.
    /// io_uring only: on the epoll backend a shard cannot see its completions without a system
    /// call, so it does not spin.
    std::chrono::microseconds idle_poll{0};
};

/// One shard: a loop thread of a shard_group. Reached as `shard::current()` on that thread, or
/// as the argument of the group's main function.
class shard {
public:
    /// The shard running on this thread, or null outside a shard_group.
    [[nodiscard]] static shard* current() noexcept { return t_current; }

    [[nodiscard]] unsigned id() const noexcept { return m_id; }       ///< 0 .. count() - 1
    [[nodiscard]] unsigned count() const noexcept;                     ///< shards in the group
    [[nodiscard]] io_context& context() noexcept { return *m_ctx; }    ///< this shard's loop
    [[nodiscard]] shard_group& group() noexcept { return *m_group; }   ///< the group
    /// Requested when the group stops (shard_group::request_stop(), or an escaped exception):
    /// main functions end on it.
    [[nodiscard]] corio::stop_token stop_token() noexcept { return m_stop.token(); }

    /// Any thread: queues `m` for this shard and wakes it when it sleeps. A shard sending keeps
    /// what its loop turn sends to each shard and hands it over in one push when the turn ends
    /// (or its inbox drain does); a wake-up goes only to a shard that sleeps: from a shard on
    /// io_uring as an IORING_OP_MSG_RING from its own ring (no system call of its own), from
    /// anyone else through the eventfd.
    void deliver(detail::shard_message* m) noexcept;

    /// Wake-ups sent to this shard so far (MSG_RING or eventfd; any thread). A shard that is
    /// awake, busy or polling (shard_options::idle_poll) takes its messages without any.
    [[nodiscard]] std::uint64_t wakeups() const noexcept {
        return m_wakeups.load(std::memory_order_relaxed);
    }

    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;
    ~shard();

private:
    friend class shard_group;
    template <class R, class F>
    friend class detail::cross_shard_call;

    shard(shard_group& group, unsigned id);
    /// On the shard's thread, with its io_context current: the eventfd read, the MSG_RING target.
    void attach(io_context& ctx);
    void detach() noexcept;
    void arm_eventfd_read();
    void drain() noexcept;
    static void on_eventfd(detail::io_op* op, int res, unsigned flags) noexcept;
    static void on_ring_message(detail::io_op* op, int res, unsigned flags) noexcept;
    /// Hands `first` .. `last` (linked) to this shard's inbox and wakes it if it sleeps.
    void push_now(detail::shard_message* first, detail::shard_message* last) noexcept;
    /// Sends what this shard's loop queued for other shards (its own thread).
    void flush_outboxes() noexcept;
    /// The loop's inbox hooks (see detail::inbox_hooks and shard_options::idle_poll).
    static void flush_hook(detail::inbox_hooks* self) noexcept;
    static void poll_inbox(detail::inbox_hooks* self) noexcept;
    static bool sleep_inbox(detail::inbox_hooks* self, io_context& ctx,
                            std::int64_t limit_ns) noexcept;
    static void awake_inbox(detail::inbox_hooks* self) noexcept;
    void wake() noexcept;

    static inline thread_local shard* t_current = nullptr;

    /// What the loop completes for this shard (the eventfd read, a MSG_RING wake-up).
    struct shard_op : detail::io_op {
        shard* m_shard = nullptr;
    };
    /// A message about the shard itself (stop, finish).
    struct shard_note : detail::shard_message {
        shard* m_shard = nullptr;
    };

    shard_group* m_group;
    unsigned m_id;
    io_context* m_ctx = nullptr;            // set on the shard's thread
    int m_ring_fd = -1;                     // the target of MSG_RING wake-ups (-1: eventfd only)
    int m_event_fd = -1;                    // wake-ups from everyone else
    std::uint64_t m_event_count = 0;        // where the eventfd read lands
    bool m_eventfd_armed = false;
    bool m_detached = false;
    shard_op m_eventfd_op;                  // the armed eventfd read
    shard_op m_ring_op;                     // what MSG_RING CQEs name (never submitted here)
    struct loop_hooks : detail::inbox_hooks {
        shard* m_shard = nullptr;
    } m_hooks;                              // what the loop calls (installed at attach)
    std::int64_t m_idle_poll_ns = 0;        // shard_options::idle_poll
    // True while the loop sleeps (or is about to): the first sender to see it clears it and
    // wakes the loop; an awake loop takes its messages every turn, with no wake-up at all.
    std::atomic<bool> m_sleeping{false};
    std::atomic<std::uint64_t> m_wakeups{0}; // see wakeups()
    /// Messages this shard's loop sent to shard k during the turn, oldest first (own thread).
    struct outbox {
        detail::shard_message* m_first = nullptr;
        detail::shard_message* m_last = nullptr;
    };
    std::vector<outbox> m_outboxes;         // one per shard of the group
    std::vector<unsigned> m_dirty;          // the shards whose outbox is not empty
    bool m_batching = false;                // attached: deliver() from this thread goes to outboxes
    detail::message_queue m_inbox;
    stop_source m_stop;                     // this shard's view of the group's stop (own thread)
    std::unique_ptr<task_scope> m_calls;    // remote halves of cross-shard calls running here
    shard_note m_stop_message;              // the group's stop request, delivered once
    shard_note m_finish_message;            // every main has returned: end the loop
    event m_finished;                       // set by m_finish_message
};

/// N shards started together, stopped together. Each runs `main(shard&)` as its root task on its
/// own thread; run() returns when every main has returned and the loops have stopped, and
/// rethrows the first exception that escaped one (which also stops the others).
class shard_group {
public:
    /// Creates the shards (their eventfds; no thread yet). Throws std::system_error when an
    /// eventfd cannot be created.
    explicit shard_group(shard_options options = {});
    /// Only after run() returned (or when it never ran).
    ~shard_group();
    shard_group(const shard_group&) = delete;
    shard_group& operator=(const shard_group&) = delete;

    /// The number of shards.
    [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(m_shards.size()); }
    /// Shard `k` (its context is only usable on its own thread, while run() runs).
    [[nodiscard]] shard& at(unsigned k) noexcept { return *m_shards[k]; }

    /// Runs the group (see the class comment). Once per group.
    void run(std::function<task<void>(shard&)> main);

    /// Any thread: requests stop on every shard's stop_token.
    void request_stop() noexcept;

    /// Any thread, including threads outside the group: runs `fn` on shard `k`'s loop thread
    /// (as a task of its own, so it may not block; exceptions are reported like a spawned
    /// task's). False when the group is not running.
    bool post(unsigned k, std::function<void()> fn);

    /// True when ring-to-ring wake-ups (IORING_OP_MSG_RING with IORING_MSG_RING_FLAGS_PASS,
    /// Linux 6.3) are used; false when the shards wake each other through eventfds.
    [[nodiscard]] bool uses_msg_ring() const noexcept { return m_msg_ring; }

private:
    friend class shard;
    void shard_thread(unsigned id, const std::function<task<void>(shard&)>& main);
    task<void> shard_main(shard& s, const std::function<task<void>(shard&)>& main);
    void record_error(std::exception_ptr error) noexcept;
    void main_returned() noexcept;

    shard_options m_options;
    std::vector<std::unique_ptr<shard>> m_shards;
    bool m_msg_ring = false;
    std::atomic<bool> m_running{false};
    std::atomic<unsigned> m_live_mains{0};
    std::atomic<bool> m_stop_sent{false};
    std::mutex m_mutex;                    // guards m_error and the start barrier
    std::exception_ptr m_error;
    std::atomic<unsigned> m_attached{0};   // shards whose loop is set up (start barrier)
    std::atomic<unsigned> m_detached{0};   // shards whose loop is done (stop barrier)
    std::atomic<bool> m_setup_failed{false}; // a shard's loop could not be set up: none runs
};

namespace detail {

template <class F>
struct call_result {
    using returned = std::invoke_result_t<F&>;
    using type = returned;
};
template <class F>
    requires requires { typename std::invoke_result_t<F&>::promise_type; }
struct call_result<F> {
    using returned = std::invoke_result_t<F&>;
    using type = typename returned::value_type;
};

/// The awaiter of on_shard(): lives in the caller's frame; every message it sends is a member,
/// and the caller resumes only when no message still refers to it.
template <class R, class F>
class cross_shard_call : private stop_callback_node {
public:
    cross_shard_call(unsigned target, F fn) : m_target_id(target), m_fn(std::move(fn)) {}
    cross_shard_call(const cross_shard_call&) = delete;
    cross_shard_call& operator=(const cross_shard_call&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> waiter) {
        m_caller = shard::current();
        if (!m_caller)
            throw std::logic_error("corio: on_shard() awaited outside a shard_group's shard");
        if (m_target_id >= m_caller->count())
            throw std::out_of_range("corio: on_shard(): no such shard");
        m_target = &m_caller->group().at(m_target_id);
        m_waiter.m_waiter = waiter;
        m_stop_state = stop_access::state(stop_token_of(waiter));
        m_request.m_run = &on_request;
        m_cancel.m_run = &on_cancel;
        m_reply.m_run = &on_reply;
        m_request.m_call = m_cancel.m_call = m_reply.m_call = this;
        m_target->deliver(&m_request);
        if (m_stop_state) {
            m_invoke = &on_caller_stop;
            m_linked = false;
            m_stop_state->add(this);
        }
    }

    R await_resume() {
        if (m_error)
            std::rethrow_exception(m_error);
        if constexpr (!std::is_void_v<R>)
            return std::move(*m_value);
    }

private:
    static constexpr unsigned k_cancel_posted = 1; // the caller sent m_cancel
    static constexpr unsigned k_replied = 2;       // the target decided to reply

    // ----- on the target shard -----
    /// A message of this call: knows its call.
    struct call_message : shard_message {
        cross_shard_call* m_call = nullptr;
    };
    static cross_shard_call* call_of(shard_message* m) noexcept {
        return static_cast<call_message*>(m)->m_call;
    }

    static constexpr bool returns_task() noexcept {
        return requires { typename call_result<F>::returned::promise_type; };
    }

    static void on_request(shard_message* m) noexcept {
        auto* self = call_of(m);
        if constexpr (!returns_task()) {
            // A plain function runs right here, in the target's loop, and the reply leaves at
            // once: no frame, no extra turn (it cannot be cancelled half-way anyway).
            try {
                if constexpr (std::is_void_v<R>)
                    self->m_fn();
                else
                    self->m_value.emplace(self->m_fn());
            } catch (...) {
                self->m_error = std::current_exception();
            }
            self->finish_remote();
        } else {
            try {
                self->m_target->m_calls->spawn(self->m_target->context(), run_remote(self));
            } catch (...) {
                self->m_error = std::current_exception();
                self->finish_remote();
            }
        }
    }
    static task<void> run_remote(cross_shard_call* self) {
        task_scope scope; // the call's own cancellation, triggered by m_cancel
        self->m_remote_scope = &scope;
        if (self->m_cancel_seen)
            scope.request_stop();
        scope.spawn(produce(self));
        try {
            co_await scope.join();
        } catch (...) {
            self->m_error = std::current_exception();
        }
        self->m_remote_scope = nullptr;
        self->finish_remote();
    }
    static task<void> produce(cross_shard_call* self) {
        auto work = self->m_fn();
        if constexpr (std::is_void_v<R>) {
            co_await std::move(work);
        } else {
            R value = co_await std::move(work);
            self->m_value.emplace(std::move(value));
        }
    }
    /// The work is done: reply, unless a cancel message is still on its way here (then the
    /// reply waits for it: it refers to this frame).
    void finish_remote() noexcept {
        m_remote_done = true;
        unsigned before = m_state.fetch_or(k_replied, std::memory_order_acq_rel);
        if ((before & k_cancel_posted) && !m_cancel_seen)
            return; // on_cancel replies
        m_caller->deliver(&m_reply);
    }
    static void on_cancel(shard_message* m) noexcept {
        auto* self = call_of(m);
        self->m_cancel_seen = true;
        if (self->m_remote_scope)
            self->m_remote_scope->request_stop();
        else if (self->m_remote_done)
            self->m_caller->deliver(&self->m_reply); // finish_remote waited for this
    }

    // ----- on the calling shard -----
    static void on_caller_stop(stop_callback_node* node) noexcept {
        auto* self = static_cast<cross_shard_call*>(node);
        self->m_stop_state = nullptr; // unlinked by the stop_state before this runs
        unsigned before = self->m_state.fetch_or(k_cancel_posted, std::memory_order_acq_rel);
        if (before & k_replied)
            return; // the reply is on its way and no longer waits for anything
        self->m_target->deliver(&self->m_cancel);
    }
    static void on_reply(shard_message* m) noexcept {
        auto* self = call_of(m);
        if (self->m_stop_state) {
            self->m_stop_state->remove(self);
            self->m_stop_state = nullptr;
        }
        self->m_caller->context().post(&self->m_waiter);
    }

    unsigned m_target_id;
    F m_fn;
    shard* m_caller = nullptr;
    shard* m_target = nullptr;
    ready_node m_waiter;
    stop_state* m_stop_state = nullptr;           // the caller's, while registered
    std::atomic<unsigned> m_state{0};             // k_cancel_posted | k_replied
    call_message m_request;                       // caller -> target: run it
    call_message m_cancel;                        // caller -> target: stop it
    call_message m_reply;                         // target -> caller: done
    task_scope* m_remote_scope = nullptr;         // target thread only
    bool m_cancel_seen = false;                   // target thread only
    bool m_remote_done = false;                   // target thread only
    std::optional<std::conditional_t<std::is_void_v<R>, char, R>> m_value;
    std::exception_ptr m_error;
};

} // namespace detail

/// `co_await on_shard(k, fn)`: runs `fn()` on shard k (fn may return a value or a task, which is
/// awaited there) and resumes the caller on its own shard with the result, or rethrows what fn
/// threw. A function that returns a value runs inside shard k's loop as the message arrives (so
/// it must not block); one that returns a task runs as a task of shard k. `fn` is moved into the caller's frame and called on shard k: it must only touch what
/// that shard owns (or what is immutable). Cancelling the caller cancels the remote work (its
/// task's stop token); the caller still resumes only once shard k is done with it. A call to the
/// caller's own shard goes through its inbox like any other.
template <class F>
[[nodiscard]] detail::cross_shard_call<typename detail::call_result<F>::type, F>
on_shard(unsigned k, F fn) {
    return detail::cross_shard_call<typename detail::call_result<F>::type, F>(k, std::move(fn));
}

} // namespace corio

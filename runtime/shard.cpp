// SPDX-License-Identifier: MIT
// shard_group: the threads, the start and stop barriers, and the inboxes' wake-ups (MSG_RING
// between rings, an eventfd for everyone else).
#include <corio/runtime/shard.hpp>

#include <corio/runtime/sync_wait.hpp>

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace corio {

namespace {

/// A hint to the CPU that this is a spin loop (frees the sibling hyper-thread, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// liburing 2.3 predates it (Linux 6.3): the target CQE's flags come from sqe->file_index.
constexpr unsigned k_msg_ring_flags_pass = 1u << 1;

/// Whether this kernel passes CQE flags through MSG_RING (IORING_MSG_RING_FLAGS_PASS): the
/// wake-up CQE carries IORING_CQE_F_MORE, so the receiving loop does not count it as the end of
/// an op of its own. Tried once per process on two small rings.
bool kernel_passes_msg_ring_flags() noexcept {
    static const bool passes = [] {
        io_uring from{};
        io_uring to{};
        if (io_uring_queue_init(2, &from, 0) != 0)
            return false;
        if (io_uring_queue_init(2, &to, 0) != 0) {
            io_uring_queue_exit(&from);
            return false;
        }
        io_uring_sqe* sqe = io_uring_get_sqe(&from);
        io_uring_prep_msg_ring(sqe, to.ring_fd, 7, 0x5eed, 0);
        sqe->msg_ring_flags = k_msg_ring_flags_pass;
        sqe->file_index = IORING_CQE_F_MORE;
        bool ok = false;
        io_uring_cqe* cqe = nullptr;
        if (io_uring_submit_and_wait(&from, 1) == 1 && io_uring_peek_cqe(&from, &cqe) == 0 &&
            cqe->res == 0 && io_uring_peek_cqe(&to, &cqe) == 0)
            ok = cqe->user_data == 0x5eed && cqe->res == 7 && (cqe->flags & IORING_CQE_F_MORE);
        io_uring_queue_exit(&to);
        io_uring_queue_exit(&from);
        return ok;
    }();
    return passes;
}

unsigned allowed_cpus() noexcept {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? static_cast<unsigned>(n) : 1;
}

/// A message from shard_group::post(): owns the function.
struct posted_message : detail::shard_message {
    std::function<void()> m_fn;
    shard* m_target = nullptr;
};

task<void> run_posted(std::unique_ptr<posted_message> message) {
    message->m_fn();
    co_return;
}

} // namespace

// ----- message_queue -----

detail::shard_message* detail::message_queue::pop() noexcept {
    shard_message* tail = m_tail;
    shard_message* next = tail->m_next.load(std::memory_order_acquire);
    if (tail == &m_stub) {
        if (!next)
            return nullptr;
        m_tail = next;
        tail = next;
        next = next->m_next.load(std::memory_order_acquire);
    }
    if (next) {
        m_tail = next;
        return tail;
    }
    if (tail != m_head.load(std::memory_order_acquire))
        return nullptr; // a producer is between its two steps; its wake-up brings us back
    push(&m_stub);
    next = tail->m_next.load(std::memory_order_acquire);
    if (next) {
        m_tail = next;
        return tail;
    }
    return nullptr;
}

// ----- shard -----

shard::shard(shard_group& group, unsigned id) : m_group(&group), m_id(id) {
    // Created with the group, before any thread runs: a post() before the loops start lands in
    // the counter and wakes the shard once its read is armed. Blocking: io_uring's read of a
    // non-blocking eventfd would end with EAGAIN instead of waiting.
    m_event_fd = ::eventfd(0, EFD_CLOEXEC);
    if (m_event_fd < 0)
        throw std::system_error(errno, std::system_category(), "corio: eventfd (shard)");
    m_eventfd_op.m_shard = m_ring_op.m_shard = this;
    m_stop_message.m_shard = m_finish_message.m_shard = this;
    m_stop_message.m_run = [](detail::shard_message* m) noexcept {
        static_cast<shard_note*>(m)->m_shard->m_stop.request_stop();
    };
    m_finish_message.m_run = [](detail::shard_message* m) noexcept {
        static_cast<shard_note*>(m)->m_shard->m_finished.set();
    };
}

shard::~shard() {
    while (detail::shard_message* m = m_inbox.pop())
        if (m->m_drop)
            m->m_drop(m);
    if (m_event_fd >= 0)
        io_context::close_fd(m_event_fd);
}

unsigned shard::count() const noexcept { return m_group->size(); }

void shard::attach(io_context& ctx) {
    m_ctx = &ctx;
    t_current = this;
    m_ring_fd = (m_group->m_msg_ring && ctx.backend() == backend_kind::io_uring)
                    ? ctx.native_handle()->ring_fd
                    : -1;
    m_ring_op.m_complete = &on_ring_message;
    m_ring_op.m_ctx = &ctx;
    m_eventfd_op.m_complete = &on_eventfd;
    m_calls = std::make_unique<task_scope>(m_stop.token());
    arm_eventfd_read();
    // On epoll the loop cannot see its own completions without a system call: no spin there.
    if (ctx.backend() == backend_kind::io_uring)
        m_idle_poll_ns = std::chrono::nanoseconds(m_group->m_options.idle_poll).count();
    m_outboxes.assign(count(), outbox{});
    m_dirty.reserve(count());
    m_batching = true;
    m_hooks.m_shard = this;
    m_hooks.m_flush = &flush_hook;
    m_hooks.m_poll = &poll_inbox;
    m_hooks.m_sleep = &sleep_inbox;
    m_hooks.m_awake = &awake_inbox;
    m_hooks.m_spins = m_idle_poll_ns > 0;
    ctx.set_inbox(&m_hooks);
}

void shard::detach() noexcept {
    flush_outboxes();
    m_batching = false;
    m_detached = true;
    m_ctx->set_inbox(nullptr);
    if (m_eventfd_armed) {
        try {
            m_ctx->cancel(&m_eventfd_op);
        } catch (...) {
        }
    }
}

void shard::arm_eventfd_read() {
    io_uring_sqe* sqe = m_ctx->get_sqe();
    io_uring_prep_read(sqe, m_event_fd, &m_event_count, sizeof m_event_count, 0);
    m_ctx->track(sqe, &m_eventfd_op);
    m_eventfd_armed = true;
}

void shard::on_eventfd(detail::io_op* op, int, unsigned) noexcept {
    shard& self = *static_cast<shard_op*>(op)->m_shard;
    self.m_eventfd_armed = false;
    self.drain();
    if (!self.m_detached) {
        try {
            self.arm_eventfd_read();
        } catch (...) {
            std::terminate(); // a shard that cannot be woken would hang its group
        }
    }
}

void shard::on_ring_message(detail::io_op* op, int, unsigned) noexcept {
    shard& self = *static_cast<shard_op*>(op)->m_shard;
    self.drain();
}

void shard::flush_hook(detail::inbox_hooks* hooks) noexcept {
    static_cast<loop_hooks*>(hooks)->m_shard->flush_outboxes();
}

void shard::flush_outboxes() noexcept {
    for (unsigned k : m_dirty) {
        outbox& out = m_outboxes[k];
        shard& target = m_group->at(k);
        target.push_now(out.m_first, out.m_last);
        out = outbox{};
    }
    m_dirty.clear();
}

void shard::poll_inbox(detail::inbox_hooks* hooks) noexcept {
    shard& self = *static_cast<loop_hooks*>(hooks)->m_shard;
    if (self.m_inbox.may_have_messages())
        self.drain();
}

bool shard::sleep_inbox(detail::inbox_hooks* hooks, io_context& ctx,
                        std::int64_t limit_ns) noexcept {
    shard& self = *static_cast<loop_hooks*>(hooks)->m_shard;
    if (self.m_idle_poll_ns > 0) {
        // Awake, so nobody wakes us: look ourselves for a while (a message, a completion of our
        // own ring, the next timer or the budget ends it).
        const std::int64_t limit =
            std::min(limit_ns, detail::monotonic_now_ns() + self.m_idle_poll_ns);
        for (unsigned spins = 1;; ++spins) {
            if (self.m_inbox.may_have_messages()) {
                self.drain();
                return true;
            }
            if (ctx.has_kernel_events())
                break;
            if (spins % 32 == 0 && detail::monotonic_now_ns() >= limit)
                break;
            cpu_relax();
        }
    }
    // Dekker with deliver(): we publish "sleeping" then look at the inbox, a sender pushes then
    // looks at "sleeping"; with a full fence on both sides at least one of us sees the other.
    self.m_sleeping.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!self.m_inbox.may_have_messages())
        return false;
    self.m_sleeping.store(false, std::memory_order_relaxed); // a sender's wake may still come
    self.drain();
    return true;
}

void shard::awake_inbox(detail::inbox_hooks* hooks) noexcept {
    static_cast<loop_hooks*>(hooks)->m_shard->m_sleeping.store(false, std::memory_order_relaxed);
}

void shard::drain() noexcept {
    while (detail::shard_message* m = m_inbox.pop())
        m->m_run(m);
    flush_outboxes(); // the replies leave now, one push per shard
}

void shard::deliver(detail::shard_message* m) noexcept {
    shard* sender = t_current;
    if (!sender || !sender->m_batching || sender->m_group != m_group) {
        push_now(m, m);
        return;
    }
    outbox& out = sender->m_outboxes[m_id];
    m->m_next.store(nullptr, std::memory_order_relaxed);
    if (out.m_last) {
        out.m_last->m_next.store(m, std::memory_order_relaxed);
    } else {
        out.m_first = m;
        sender->m_dirty.push_back(m_id); // reserved for every shard: never allocates
    }
    out.m_last = m;
}

void shard::push_now(detail::shard_message* first, detail::shard_message* last) noexcept {
    m_inbox.push_chain(first, last);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_sleeping.load(std::memory_order_relaxed) &&
        m_sleeping.exchange(false, std::memory_order_acq_rel))
        wake();
}

void shard::wake() noexcept {
    m_wakeups.fetch_add(1, std::memory_order_relaxed);
    shard* sender = t_current;
    if (sender && sender->m_ring_fd >= 0 && m_ring_fd >= 0 && !sender->m_detached) {
        try {
            io_context& ctx = sender->context();
            io_uring_sqe* sqe = ctx.get_sqe();
            io_uring_prep_msg_ring(sqe, m_ring_fd, 0, reinterpret_cast<std::uintptr_t>(&m_ring_op),
                                   0);
            sqe->msg_ring_flags = k_msg_ring_flags_pass;
            sqe->file_index = IORING_CQE_F_MORE; // the target's loop: not the end of an op
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            io_uring_sqe_set_data64(sqe, 0); // a failure's CQE is internal: the loop ignores it
            return;
        } catch (...) {
            // fall back to the eventfd
        }
    }
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_event_fd, &one, sizeof one);
}

// ----- shard_group -----

shard_group::shard_group(shard_options options) : m_options(std::move(options)) {
    unsigned n = m_options.count;
    if (n == 0)
        n = m_options.cpus.empty() ? allowed_cpus() : static_cast<unsigned>(m_options.cpus.size());
    // Ring to ring only when the shards' loops will be rings: an explicit or environment choice
    // of epoll wakes them through eventfds (where io_uring is refused, the probe fails too).
    std::optional<backend_kind> wanted = m_options.context.backend;
    if (!wanted) {
        const char* env = std::getenv("CORIO_BACKEND");
        if (env && std::string_view(env) == "epoll")
            wanted = backend_kind::epoll;
    }
    m_msg_ring = wanted != backend_kind::epoll && kernel_passes_msg_ring_flags();
    m_shards.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        m_shards.push_back(std::unique_ptr<shard>(new shard(*this, i)));
    }
}

shard_group::~shard_group() = default;

void shard_group::run(std::function<task<void>(shard&)> main) {
    if (m_running.exchange(true))
        throw std::logic_error("corio: shard_group::run() called twice");
    m_live_mains = size();
    std::vector<std::thread> threads;
    threads.reserve(size());
    for (unsigned i = 0; i < size(); ++i)
        threads.emplace_back([this, i, &main] { shard_thread(i, main); });
    for (std::thread& t : threads)
        t.join();
    if (m_error)
        std::rethrow_exception(m_error);
}

void shard_group::shard_thread(unsigned id, const std::function<task<void>(shard&)>& main) {
    if (!m_options.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(m_options.cpus[id % m_options.cpus.size()], &set);
        if (int err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); err != 0)
            record_error(std::make_exception_ptr(
                std::system_error(err, std::system_category(), "corio: pinning a shard")));
    }
    shard& s = *m_shards[id];
    std::optional<io_context> ctx;
    try {
        ctx.emplace(m_options.context);
        s.attach(*ctx);
    } catch (...) {
        record_error(std::current_exception());
        m_setup_failed = true;
    }
    // Start barrier: every ring exists (MSG_RING targets) before anyone sends.
    m_attached.fetch_add(1);
    m_attached.notify_all();
    for (unsigned seen = m_attached.load(); seen < size(); seen = m_attached.load())
        m_attached.wait(seen);
    if (m_setup_failed) {
        // Nobody runs: a group starts complete or not at all.
        if (ctx) {
            s.detach();
            ctx->run();
        }
        shard::t_current = nullptr;
        return;
    }
    try {
        sync_wait(*ctx, shard_main(s, main));
    } catch (...) {
        record_error(std::current_exception());
    }
    s.detach();
    try {
        ctx->run(); // until the eventfd read's cancellation is in
    } catch (...) {
        record_error(std::current_exception());
    }
    // Stop barrier: no shard sends to a ring that is gone.
    m_detached.fetch_add(1);
    m_detached.notify_all();
    for (unsigned seen = m_detached.load(); seen < size(); seen = m_detached.load())
        m_detached.wait(seen);
    shard::t_current = nullptr;
    ctx.reset();
}

task<void> shard_group::shard_main(shard& s, const std::function<task<void>(shard&)>& main) {
    {
        // The main runs under the shard's stop: the group's stop request reaches its ops.
        task_scope scope(s.stop_token());
        try {
            scope.spawn(s.context(), main(s));
            co_await scope.join();
        } catch (...) {
            record_error(std::current_exception());
            request_stop();
        }
    }
    main_returned();
    // Serve the other shards' calls until every main has returned.
    result<void> finished = co_await s.m_finished.wait();
    (void)finished;
    try {
        co_await s.m_calls->join();
    } catch (...) {
        record_error(std::current_exception());
    }
}

void shard_group::record_error(std::exception_ptr error) noexcept {
    std::lock_guard lock(m_mutex);
    if (!m_error)
        m_error = std::move(error);
}

void shard_group::main_returned() noexcept {
    if (m_live_mains.fetch_sub(1) == 1)
        for (auto& s : m_shards)
            s->deliver(&s->m_finish_message);
}

void shard_group::request_stop() noexcept {
    if (m_stop_sent.exchange(true))
        return;
    for (auto& s : m_shards)
        s->deliver(&s->m_stop_message);
}

bool shard_group::post(unsigned k, std::function<void()> fn) {
    if (k >= size())
        throw std::out_of_range("corio: shard_group::post(): no such shard");
    if (!m_running.load() || m_live_mains.load() == 0)
        return false;
    auto message = std::make_unique<posted_message>();
    message->m_fn = std::move(fn);
    message->m_target = m_shards[k].get();
    message->m_run = [](detail::shard_message* m) noexcept {
        std::unique_ptr<posted_message> owned(static_cast<posted_message*>(m));
        shard& target = *owned->m_target;
        try {
            target.context().root_scope().spawn(target.context(), run_posted(std::move(owned)));
        } catch (...) {
            target.group().record_error(std::current_exception());
        }
    };
    message->m_drop = [](detail::shard_message* m) noexcept {
        delete static_cast<posted_message*>(m);
    };
    m_shards[k]->deliver(message.release());
    return true;
}

} // namespace corio

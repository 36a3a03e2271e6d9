// SPDX-License-Identifier: MIT
// The loop: ring setup with flag fallback, the turn (submit, reap, resume), cross-thread wake-ups
// and a teardown that never leaves a buffer with the kernel.
#include <corio/runtime/io_context.hpp>

#include <corio/runtime/detail/epoll_backend.hpp>
#include <corio/runtime/detail/fault_injector.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/offload_pool.hpp>
#include <corio/runtime/detail/stall_detector.hpp>
#include <corio/runtime/task_scope.hpp>

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace corio {

namespace {

[[noreturn]] void throw_uring_error(int err, const char* what) {
    throw std::system_error(err, std::system_category(), what);
}

void report_and_terminate(std::exception_ptr error) noexcept {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio: exception escaped a spawned task: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "corio: non-standard exception escaped a spawned task\n");
    }
    std::terminate();
}

/// Prints the fault-injection line once per process and configuration: a failing test's log must
/// show the seed that reproduces it, without one line per io_context a test suite creates.
/// CORIO_FAULTS_QUIET=1 silences it (the test suites set it: their servers' stderr is checked).
void announce_faults(const fault_options& faults) {
    if (const char* quiet = std::getenv("CORIO_FAULTS_QUIET"); quiet && quiet[0] == '1')
        return;
    static std::mutex mutex;
    static std::string last;
    std::string text = faults.describe();
    std::lock_guard lock(mutex);
    if (text == last)
        return;
    std::fprintf(stderr, "corio: fault injection on (%s)\n", text.c_str());
    last = std::move(text);
}

/// The stall threshold: as given, else CORIO_STALL_MS (a number of milliseconds; 0 or unset: off).
/// Throws std::invalid_argument naming a value it cannot read.
unsigned stall_ms_from(const io_context_options& opts) {
    if (opts.stall_ms)
        return *opts.stall_ms;
    const char* text = std::getenv("CORIO_STALL_MS");
    if (!text || !*text)
        return 0;
    char* end = nullptr;
    errno = 0;
    unsigned long ms = std::strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || ms > 3'600'000)
        throw std::invalid_argument(std::string("corio: CORIO_STALL_MS=") + text +
                                    ": expected a number of milliseconds (0: off)");
    return static_cast<unsigned>(ms);
}

/// CORIO_BACKEND: unset or empty leaves the choice to the loop. Throws std::invalid_argument
/// naming a value it cannot read.
std::optional<backend_kind> backend_from_environment() {
    const char* text = std::getenv("CORIO_BACKEND");
    if (!text || !*text)
        return std::nullopt;
    std::string_view name(text);
    if (name == "io_uring")
        return backend_kind::io_uring;
    if (name == "epoll")
        return backend_kind::epoll;
    throw std::invalid_argument(std::string("corio: CORIO_BACKEND=") + text +
                                ": expected io_uring or epoll");
}

/// The refusals a deployment imposes (seccomp: EPERM; kernel.io_uring_disabled: EPERM or
/// EACCES; no io_uring, or one too old for the loop: ENOSYS), as opposed to a failure of this
/// machine at this moment (ENOMEM, EMFILE) that falling back would hide.
bool io_uring_refused(int err) noexcept { return err == EPERM || err == EACCES || err == ENOSYS; }

/// Says once per process that io_uring was refused: a container's logs show it at start-up, a
/// server with many loops (or a test suite with many contexts) does not repeat it.
void announce_fallback(int err) noexcept {
    static std::atomic<bool> said{false};
    if (said.exchange(true))
        return;
    const char* name = ::strerrorname_np(err);
    std::fprintf(stderr, "corio: io_uring unavailable (%s); using the epoll backend\n",
                 name ? name : "unknown error");
}

/// Ring flags to try, best first. Each later entry drops what an older kernel refuses with EINVAL.
constexpr unsigned k_flag_attempts[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG,                                              // 6.1
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, // 5.19
    IORING_SETUP_SUBMIT_ALL,                                                    // 5.18
    0,
};

} // namespace

io_context::io_context(options opts) : m_previous(t_current), m_options(opts), m_pid(::getpid()) {
    // First: a malformed CORIO_FAULTS throws before anything needs cleaning up.
    std::optional<fault_options> faults =
        opts.faults ? opts.faults : fault_options::from_environment();
    if (faults && faults->is_on()) {
        m_faults = std::make_unique<detail::fault_injector>(*this, *faults);
        announce_faults(*faults);
    }
    unsigned stall_ms = stall_ms_from(opts);
    setup_backend(opts);
    m_wake_fd = ::eventfd(0, EFD_CLOEXEC);
    if (m_wake_fd < 0) {
        int err = errno;
        if (m_epoll)
            m_epoll.reset();
        else
            io_uring_queue_exit(&m_ring);
        throw_uring_error(err, "corio: eventfd for the io_context wake-up");
    }
    m_wake_op = std::make_unique<detail::io_op>();
    m_root_scope = std::make_unique<task_scope>(m_root_stop.token(), report_and_terminate);
    if (stall_ms > 0)
        m_stall = std::make_unique<detail::stall_detector>(std::chrono::milliseconds(stall_ms));
    t_current = this;
}

void io_context::setup_backend(const options& opts) {
    std::optional<backend_kind> wanted = opts.backend ? opts.backend : backend_from_environment();
    if (wanted != backend_kind::epoll) {
        int err = setup_ring(opts);
        if (err == 0)
            return;
        if (wanted || !io_uring_refused(err))
            throw_uring_error(err, err == ENOSYS
                                       ? "corio: io_uring setup (Linux 5.11 or newer with "
                                         "IORING_FEAT_EXT_ARG is needed)"
                                       : "corio: io_uring setup (io_uring_queue_init_params)");
        announce_fallback(err);
    }
    m_epoll = std::make_unique<detail::epoll_backend>(opts.sq_entries, opts.cq_entries,
                                                      opts.offload_threads);
    m_epoll->attach(m_ring);
}

int io_context::setup_ring(const options& opts) {
    int err = EINVAL;
    for (unsigned flags : k_flag_attempts) {
        if (!opts.defer_taskrun && (flags & IORING_SETUP_DEFER_TASKRUN))
            continue;
        io_uring_params params{};
        params.flags = flags;
        if (opts.cq_entries != 0) {
            params.flags |= IORING_SETUP_CQSIZE;
            params.cq_entries = opts.cq_entries;
        }
        int rc = io_uring_queue_init_params(opts.sq_entries, &m_ring, &params);
        if (rc == 0) {
            m_ring_flags = params.flags;
            // get_sqe() and flush_sq() rely on these two never being set (k_flag_attempts has
            // neither).
            assert(!(m_ring_flags & (IORING_SETUP_SQPOLL | IORING_SETUP_SQE128)));
            if (!(params.features & IORING_FEAT_EXT_ARG)) {
                // The timers' wait (enter_timed) passes its timeout this way (Linux 5.11).
                io_uring_queue_exit(&m_ring);
                m_ring = io_uring{};
                m_ring_flags = 0;
                return ENOSYS;
            }
            // Saves an fget/fput per io_uring_enter; harmless when the kernel lacks it.
            m_ring_fd_registered = io_uring_register_ring_fd(&m_ring) == 1;
            return 0;
        }
        err = -rc;
        if (err != EINVAL)
            break;
    }
    return err;
}

io_context::~io_context() {
    drain_and_close();
    t_current = (t_current == this) ? m_previous : t_current;
}

void io_context::drain_and_close() noexcept {
    if (::getpid() != m_pid) {
        release_after_fork();
        return;
    }
    io_context* saved = std::exchange(t_current, this);
    // Everything started under this context holds a token derived from m_root_stop: each op in
    // flight submits its own async cancel. Ops awaited outside corio tasks have no token, so
    // cancel whatever else is still in flight too.
    m_root_stop.request_stop();
    // Timers no stop token reaches (a sleep awaited outside any corio task) end as cancelled,
    // as a kernel timeout would have under the cancel-all below.
    m_timers.abandon_all();
    if (m_inflight > 0) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data(sqe, nullptr);
        note_cancel(sqe);
    }
    try {
        while (has_work())
            turn();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio: io_context teardown failed: %s\n", e.what());
        std::terminate();
    }
    // What is left waits on things that cannot happen any more (an event nobody will set); with
    // nothing in flight its frames can be destroyed safely.
    m_root_scope->destroy_remaining();
    m_root_scope.reset();
    m_stall.reset(); // joins the watchdog
    m_offload.reset(); // joins the workers; nothing of ours is queued there any more
    if (m_wake_fd >= 0)
        ::close(m_wake_fd);
    if (m_epoll)
        m_epoll.reset(); // joins its blocking threads (idle: nothing is in flight)
    else
        io_uring_queue_exit(&m_ring);
    t_current = saved;
}

void io_context::release_after_fork() noexcept {
    // TRICKY: the SQ and CQ rings are shared mappings: a cancel written here, or a task frame
    // whose destructor queues one, would land in the parent's ring and be submitted by it. The
    // offload workers were not copied by fork(): joining them would wait forever. Leak both.
    (void)m_root_scope.release();
    (void)m_offload.release();
    if (m_stall)
        m_stall.release()->abandon(); // its watchdog thread stayed in the parent
    if (m_wake_fd >= 0)
        ::close(m_wake_fd);
    if (m_epoll)
        (void)m_epoll.release(); // its threads stayed in the parent: joining them would hang
    else
        io_uring_queue_exit(&m_ring); // unmaps and closes the child's copies only
}

void io_context::check_process() const {
    pid_t now = ::getpid();
    if (now == m_pid) [[likely]]
        return;
    std::string message = "corio: this io_context was created in another process (pid " +
                          std::to_string(m_pid) + ") and cannot be used after fork() (this is pid ";
    message += std::to_string(now) + "): create a new io_context in the child process";
    throw std::logic_error(message);
}

void io_context::throw_enter_error(int err, const char* what) const {
    check_process(); // a ring used after fork() fails with EINVAL or EEXIST: say why
    throw_uring_error(err, what);
}

namespace {
/// Makes a context the thread's current one while it runs, and restores the one before when the
/// run ends (also when a turn throws).
class current_guard {
public:
    current_guard(io_context*& current, io_context* ctx) noexcept
        : m_current(current), m_saved(std::exchange(current, ctx)) {}
    ~current_guard() { m_current = m_saved; }
    current_guard(const current_guard&) = delete;
    current_guard& operator=(const current_guard&) = delete;

private:
    io_context*& m_current; // the thread's current-context slot
    io_context* m_saved;    // what it held before
};

/// Marks the loop thread as running turns of a watched context for as long as it lives.
struct watch_guard {
    detail::stall_detector* m_detector; // null: the detector is off
    explicit watch_guard(detail::stall_detector* d) noexcept : m_detector(d) {
        if (m_detector)
            m_detector->activate();
    }
    ~watch_guard() {
        if (m_detector)
            m_detector->deactivate();
    }
    watch_guard(const watch_guard&) = delete;
    watch_guard& operator=(const watch_guard&) = delete;
};
} // namespace

void io_context::run() {
    check_process();
    current_guard guard(t_current, this);
    if (m_stall) [[unlikely]] {
        watch_guard watching(m_stall.get());
        while (!m_stop_requested && has_work())
            watched_turn();
    } else {
        while (!m_stop_requested && has_work())
            turn();
    }
    m_stop_requested = false;
}

void io_context::run_until(const bool& done) {
    check_process();
    current_guard guard(t_current, this);
    if (m_stall) [[unlikely]] {
        watch_guard watching(m_stall.get());
        while (!done) {
            if (!has_work())
                throw_deadlock();
            watched_turn();
        }
        return;
    }
    while (!done) {
        if (!has_work())
            throw_deadlock();
        turn();
    }
}

void io_context::throw_deadlock() {
    throw std::logic_error("corio: deadlock: the awaited task waits on something that nothing in "
                           "flight or ready can deliver");
}

void io_context::watched_turn() {
    detail::stall_detector& detector = *m_stall;
    std::uint64_t seq = detector.begin_turn();
    ++m_stats.loop_turns;
    bool wait = m_ready.empty() && (m_inflight > 0 || !m_timers.empty());
    if (m_inbox) [[unlikely]] {
        if (wait)
            detector.enter_idle();
        enter_with_inbox(wait);
        if (wait)
            seq = detector.leave_idle();
    } else if (wait) {
        detector.enter_idle();
        if (m_timers.empty())
            enter(true);
        else
            enter_until_next_timer();
        seq = detector.leave_idle(); // the turn's user code starts now
    } else {
        enter(false);
    }
    reap();
    if (!m_timers.empty())
        fire_timers();
    run_ready_watched();
    if (detector.stalled(seq)) [[unlikely]] {
        std::chrono::microseconds ran = detector.finish_stalled_turn(seq);
        ++m_stats.stalls;
        m_stats.longest_stall = std::max(m_stats.longest_stall, ran);
    }
}

void io_context::run_ready_watched() {
    detail::stall_detector& detector = *m_stall;
    detail::ready_node* node = m_ready.release_all();
    while (node) {
        detail::ready_node* next = node->m_next;
        detector.resuming(node->m_waiter.address());
        node->m_waiter.resume();
        node = next;
    }
    detail::t_running = nullptr;
}

std::chrono::milliseconds io_context::stall_threshold() const noexcept {
    return m_stall ? m_stall->threshold() : std::chrono::milliseconds(0);
}

void io_context::turn_with_inbox() {
    ++m_stats.loop_turns;
    enter_with_inbox(m_ready.empty() && (m_inflight > 0 || !m_timers.empty()));
    reap();
    if (!m_timers.empty())
        fire_timers();
    run_ready();
}

void io_context::enter_with_inbox(bool wait) {
    m_inbox->m_flush(m_inbox);
    if (wait) {
        if (m_inbox->m_spins && io_uring_sq_ready(&m_ring) > 0)
            enter(false);
        std::int64_t limit = m_timers.empty() ? std::numeric_limits<std::int64_t>::max()
                                              : m_timers.earliest();
        wait = !m_inbox->m_sleep(m_inbox, *this, limit);
    }
    if (!wait)
        enter(false);
    else if (m_timers.empty())
        enter(true);
    else
        enter_until_next_timer();
    if (wait)
        m_inbox->m_awake(m_inbox);
    m_inbox->m_poll(m_inbox);
}

void io_context::enter_epoll(std::int64_t wait_ns) {
    m_stats.submitted += m_epoll->submit(m_ring);
    if (m_epoll->wait(wait_ns))
        ++m_stats.kernel_enters;
}

void io_context::enter(bool wait) {
    if (m_epoll) [[unlikely]] {
        enter_epoll(wait ? -1 : 0);
        return;
    }
    for (;;) {
        unsigned kflags = IO_URING_READ_ONCE(*m_ring.sq.kflags);
        if (kflags & IORING_SQ_CQ_OVERFLOW)
            ++m_stats.cq_overflows;
        bool kernel_has_events = kflags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
        if (!wait && io_uring_sq_ready(&m_ring) == 0 && !kernel_has_events)
            return; // nothing to submit and nothing the kernel holds back: skip the syscall
        ++m_stats.kernel_enters;
        int rc = wait ? io_uring_submit_and_wait(&m_ring, 1)
                      : io_uring_submit_and_get_events(&m_ring);
        if (rc >= 0) {
            m_stats.submitted += static_cast<unsigned>(rc);
            return;
        }
        if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
            ++m_stats.enter_retries;
            // EBUSY/EAGAIN: the CQ is backed up. Make room, then try again without blocking:
            // what we reap is resumed this turn.
            if (reap() > 0)
                wait = false;
            continue;
        }
        throw_enter_error(-rc, "corio: io_uring_enter");
    }
}

void io_context::enter_until_next_timer() {
    if (!m_ready.empty()) {
        enter(false);
        return;
    }
    std::int64_t wait_ns = m_timers.earliest() - detail::monotonic_now_ns();
    if (wait_ns <= 0)
        enter(false); // due already: fire_timers() runs it this turn
    else
        enter_timed(wait_ns);
}

void io_context::enter_timed(std::int64_t wait_ns) {
    if (m_epoll) [[unlikely]] {
        enter_epoll(wait_ns);
        return;
    }
    __kernel_timespec limit{.tv_sec = wait_ns / 1'000'000'000, .tv_nsec = wait_ns % 1'000'000'000};
    io_uring_getevents_arg arg{};
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = reinterpret_cast<std::uintptr_t>(&limit);
    const unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG |
                           (m_ring_fd_registered ? IORING_ENTER_REGISTERED_RING : 0u);
    for (;;) {
        if (IO_URING_READ_ONCE(*m_ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
            ++m_stats.cq_overflows;
        // liburing 2.3's own timed wait does not report what it submitted: flush the SQ here
        // (what io_uring_submit does first) and enter once, submitting and waiting.
        io_uring_sq& sq = m_ring.sq;
        if (sq.sqe_head != sq.sqe_tail) {
            sq.sqe_head = sq.sqe_tail;
            io_uring_smp_store_release(sq.ktail, sq.sqe_tail); // no SQPOLL: a plain store suffices
        }
        unsigned to_submit = sq.sqe_tail - IO_URING_READ_ONCE(*sq.khead);
        ++m_stats.kernel_enters;
        int rc = io_uring_enter2(static_cast<unsigned>(m_ring.enter_ring_fd), to_submit, 1, flags,
                                 reinterpret_cast<sigset_t*>(&arg), sizeof arg);
        if (rc >= 0) {
            m_stats.submitted += static_cast<unsigned>(rc);
            return;
        }
        if (rc == -ETIME)
            return; // the earliest timer is due (the kernel reports ETIME only if it submitted nothing)
        if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
            ++m_stats.enter_retries;
            if (reap() > 0) {
                enter(false); // the reaped ops are resumed this turn: submit, do not wait
                return;
            }
            continue;
        }
        throw_enter_error(-rc, "corio: io_uring_enter (timed wait)");
    }
}

void io_context::fire_timers() noexcept {
    m_stats.timers_fired += m_timers.fire_expired(detail::monotonic_now_ns());
}

unsigned io_context::reap() noexcept {
    // Locals, not members: the handlers store through op pointers, so the compiler would
    // otherwise reload every ring field on every CQE.
    unsigned* const khead = m_ring.cq.khead;
    io_uring_cqe* const cqes = m_ring.cq.cqes;
    const unsigned mask = m_ring.cq.ring_mask;
    unsigned tail = io_uring_smp_load_acquire(m_ring.cq.ktail);
    unsigned head = *khead;
    unsigned segment_start = head; // CQEs are counted by head distance, once per segment
    unsigned count = 0;            // CQEs reaped by this call (a nested reap counts its own)
    unsigned unfinished = 0;       // CQEs among them that do not end a tracked op
    while (head != tail) {
        const io_uring_cqe& cqe = cqes[head & mask];
        const std::uintptr_t data = cqe.user_data;
        int res = cqe.res;
        unsigned flags = cqe.flags;
        ++head;
        if ((data & detail::k_single_shot_tag) && res != -EINTR) [[likely]] {
            // The common case, inlined: store the outcome and queue the waiter. It never
            // submits and never reaps, so handing the slots back can wait for the end of the
            // batch, and the ready queue's tail stays in a register. (After EINTR a tagged op
            // takes the general path below: its m_complete resubmits it.)
            auto* op = static_cast<detail::single_shot_op*>(detail::op_from_user_data(data));
            op->finish(res, flags);
            m_ready.push(op);
            continue;
        }
        if (data == 0) {
            ++unfinished; // internal: an async cancel's own completion (never tracked)
            continue;
        }
        detail::io_op* op = detail::op_from_user_data(data);
        if (flags & IORING_CQE_F_MORE)
            ++unfinished;
        // Hand the slots back before running a handler that may submit: a submit on a full SQ
        // may have to reap (EBUSY), and that nested reap must not see these CQEs again.
        io_uring_smp_store_release(khead, head);
        count += head - segment_start;
        op->m_complete(op, res, flags);
        // A nested reap may have moved both ends: continue from where it left the queue.
        head = *khead;
        tail = io_uring_smp_load_acquire(m_ring.cq.ktail);
        segment_start = head;
    }
    io_uring_smp_store_release(khead, head);
    count += head - segment_start;
    m_inflight -= count - unfinished;
    m_stats.completed += count;
    return count;
}

void io_context::run_ready() {
    // Only what was ready when the turn began: what these coroutines post waits for the next.
    detail::ready_node* node = m_ready.release_all();
    while (node) {
        detail::ready_node* next = node->m_next;
        node->m_waiter.resume();
        node = next;
    }
}

io_uring_sqe* io_context::get_sqe_slow() {
    // First the cheap case: the kernel consumed SQEs since the limit was last computed.
    if (refresh_sq_limit())
        return get_sqe();
    if (m_epoll) {
        // The backend takes every queued SQE at once: the whole SQ is free afterwards.
        ++m_stats.sq_full_flushes;
        m_stats.submitted += m_epoll->submit(m_ring);
        refresh_sq_limit();
        return get_sqe();
    }
    for (;;) {
        ++m_stats.sq_full_flushes;
        ++m_stats.kernel_enters;
        int rc = io_uring_submit(&m_ring);
        if (rc > 0)
            m_stats.submitted += static_cast<unsigned>(rc);
        else if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
            ++m_stats.enter_retries;
            reap(); // make room in the CQ; the ops reaped are resumed by the loop as usual
        } else if (rc < 0)
            throw_enter_error(-rc, "corio: io_uring_submit (SQ full)");
        if (refresh_sq_limit())
            return get_sqe();
    }
}

bool io_context::refresh_sq_limit() noexcept {
    m_sq_full_at = io_uring_smp_load_acquire(m_ring.sq.khead) + m_ring.sq.ring_entries;
    return static_cast<int>(m_sq_full_at - m_ring.sq.sqe_tail) > 0;
}

void io_context::reserve_sqes(unsigned n) {
    while (io_uring_sq_space_left(&m_ring) < n) {
        if (m_epoll) {
            ++m_stats.sq_full_flushes;
            m_stats.submitted += m_epoll->submit(m_ring);
            continue;
        }
        ++m_stats.sq_full_flushes;
        ++m_stats.kernel_enters;
        int rc = io_uring_submit(&m_ring);
        if (rc > 0)
            m_stats.submitted += static_cast<unsigned>(rc);
        else if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
            reap();
        else if (rc < 0)
            throw_enter_error(-rc, "corio: io_uring_submit (reserve)");
    }
}

void io_context::cancel_user_data(std::uintptr_t user_data) {
    io_uring_sqe* sqe = get_sqe();
    // TRICKY: the target is matched by user_data at submit time, within this turn's batch;
    // the op cannot have been resumed (and its frame reused) before that.
    io_uring_prep_cancel64(sqe, user_data, 0);
    io_uring_sqe_set_data(sqe, nullptr);
    note_cancel(sqe);
}

void io_context::set_unhandled_exception_handler(std::function<void(std::exception_ptr)> handler) {
    auto replacement = std::make_unique<task_scope>(m_root_stop.token(),
                                                    handler ? std::move(handler)
                                                            : report_and_terminate);
    if (m_root_scope->size() != 0)
        throw std::logic_error("corio: set the unhandled-exception handler before spawning");
    m_root_scope = std::move(replacement);
}

int io_context::register_buffer_ring(const io_uring_buf_reg& reg) noexcept {
    if (m_epoll)
        return m_epoll->register_buffer_ring(reg);
    return io_uring_register_buf_ring(&m_ring, const_cast<io_uring_buf_reg*>(&reg), 0);
}

int io_context::unregister_buffer_ring(unsigned group_id) noexcept {
    if (m_epoll)
        return m_epoll->unregister_buffer_ring(group_id);
    return io_uring_unregister_buf_ring(&m_ring, static_cast<int>(group_id));
}

void io_context::close_fd(int fd) noexcept {
    if (fd < 0)
        return;
    if (io_context* ctx = t_current; ctx && ctx->m_epoll)
        ctx->m_epoll->forget_fd(fd);
    ::close(fd);
}

const char* to_string(backend_kind kind) noexcept {
    return kind == backend_kind::epoll ? "epoll" : "io_uring";
}

const fault_options* io_context::faults() const noexcept {
    return m_faults ? &m_faults->options() : nullptr;
}

void io_context::inject_fault(io_uring_sqe* sqe) noexcept {
    if (m_faults->on_submit(sqe))
        ++m_stats.faults_injected;
}

void io_context::inject_cancel(io_uring_sqe* sqe) noexcept {
    m_faults->on_cancel(sqe, false);
}

void io_context::deliver(std::uintptr_t user_data, int res, unsigned flags) noexcept {
    detail::io_op* op = detail::op_from_user_data(user_data);
    if ((user_data & detail::k_single_shot_tag) && res != -EINTR) {
        auto* single = static_cast<detail::single_shot_op*>(op);
        single->finish(res, flags);
        m_ready.push(single);
        return;
    }
    op->m_complete(op, res, flags);
}

io_context_stats io_context::stats() const noexcept {
    io_context_stats s = m_stats;
    if (m_epoll)
        s.cq_overflows = m_epoll->overflows();
    s.ops_in_flight = m_inflight;
    s.timers_pending = m_timers.size();
    s.live_tasks = detail::t_live_tasks;
    s.frame_bytes = detail::t_frame_bytes;
    s.peak_frame_bytes = detail::t_frame_bytes_peak;
    s.spawned_tasks = m_root_scope ? m_root_scope->size() : 0;
    return s;
}

// ----- cross-thread completions -----

void io_context::expect_remote() {
    ++m_remote_expected;
    arm_wake();
}

void io_context::post_remote(detail::ready_node* node) {
    {
        std::lock_guard lock(m_remote_mutex);
        m_remote.push(node);
    }
    std::uint64_t one = 1;
    // A full eventfd counter (impossible in practice) still leaves it readable: ignore errors.
    [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &one, sizeof one);
}

void io_context::arm_wake() {
    if (m_wake_armed || m_remote_expected == 0)
        return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, m_wake_fd, &m_wake_buffer, sizeof m_wake_buffer, 0);
    m_wake_op->m_complete = &on_wake;
    track(sqe, m_wake_op.get());
    m_wake_armed = true;
}

void io_context::on_wake(detail::io_op* op, int, unsigned) noexcept {
    io_context& self = *op->m_ctx;
    self.m_wake_armed = false;
    detail::ready_queue arrived;
    {
        std::lock_guard lock(self.m_remote_mutex);
        arrived = self.m_remote.take_all();
    }
    while (detail::ready_node* node = arrived.pop()) {
        self.m_ready.push(node);
        --self.m_remote_expected;
    }
    // Rearming only enqueues an SQE; the allocation-free path cannot throw here.
    try {
        self.arm_wake();
    } catch (...) {
        std::terminate();
    }
}

detail::offload_pool& io_context::offload_pool() {
    if (!m_offload)
        m_offload = std::make_unique<detail::offload_pool>(m_options.offload_threads);
    return *m_offload;
}

// ----- spawn -----

void spawn(task<void> t) { io_context::current().root_scope().spawn(std::move(t)); }

void spawn(io_context& ctx, task<void> t) { ctx.root_scope().spawn(ctx, std::move(t)); }

} // namespace corio

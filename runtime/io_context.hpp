// SPDX-License-Identifier: MIT
// io_context: the loop. One thread, one io_uring (or the epoll backend behind the same SQ and CQ).
// Each turn submits what was queued, reaps the completions in a batch, then resumes the
// coroutines they made ready.
#pragma once

#include <corio/runtime/detail/counters.hpp>
#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/detail/timer_queue.hpp>
#include <corio/runtime/stop.hpp>

#include <liburing.h>
#include <sys/types.h>

#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace corio {

class task_scope;
class io_context;

namespace detail {
struct io_op;
class offload_pool;
class fault_injector;
class stall_detector;
class epoll_backend;

/// Work that other threads hand a loop without the kernel (a shard's inbox). The loop takes it
/// every turn, and tells the inbox when it goes to sleep and wakes up, so that senders wake it
/// only while it sleeps (and it may spin on the inbox a little first).
struct inbox_hooks {
    /// Every turn, before the kernel entry: send what the turn queued for other loops.
    void (*m_flush)(inbox_hooks* self) noexcept = nullptr;
    /// Every turn, after the kernel entry: queue the messages that arrived.
    void (*m_poll)(inbox_hooks* self) noexcept = nullptr;
    /// The loop has nothing to do: true when messages came (queued; the loop does not sleep),
    /// false when it may sleep (senders wake it from now on). May spin until `limit_ns` on the
    /// monotonic clock (the earliest timer) at most.
    bool (*m_sleep)(inbox_hooks* self, io_context& ctx, std::int64_t limit_ns) noexcept = nullptr;
    /// The loop is awake again.
    void (*m_awake)(inbox_hooks* self) noexcept = nullptr;
    /// m_sleep may spin: the loop submits what it queued first (a wake-up for another loop
    /// among it must not wait for the spin to end).
    bool m_spins = false;
};
} // namespace detail

/// What runs the loop's operations (docs/runtime.md, "Backends").
enum class backend_kind : unsigned char {
    io_uring, ///< the kernel's completion rings (the default)
    epoll,    ///< readiness in user space, for where io_uring is refused (containers, gVisor)
};

/// The backend's name as CORIO_BACKEND spells it ("io_uring", "epoll").
[[nodiscard]] const char* to_string(backend_kind kind) noexcept;

/// The fault-injection mode (docs/runtime.md, "Fault injection"): with probability `rate` an SQE
/// is rewritten, at submission, into one whose completion the kernel could have produced:
///   - `short`   (transient): a RECV/SEND on a stream socket or a READ/WRITE on a regular file
///                 asks for fewer bytes, in [1, len-1]; the rest stays in the socket or file;
///   - `eintr`   (transient): RECV, SEND, RECVMSG, SENDMSG, READ(V), WRITE(V), ACCEPT, CONNECT,
///                 OPENAT(2) end with EINTR without having run;
///   - `enobufs` (transient): a buffer-select recv or read ends with ENOBUFS without a buffer;
///   - `reset`   (fatal): RECV/RECVMSG on a stream socket end with ECONNRESET, SEND/SENDMSG with
///                 EPIPE or ECONNRESET;
///   - `eio`     (fatal): READ(V)/WRITE(V)/FSYNC on a regular file end with EIO.
/// Errors replace the SQE by an IORING_OP_NOP (the real op never runs, so nothing is consumed)
/// whose completion is rewritten. Never touched: linked SQEs (a link-timeout pair excepted),
/// multishot or buffer-select ops for `short`, datagram sockets, pipes, eventfds and signalfds
/// for `short`, O_DIRECT files for `short`, and the retry of an op that just got an injected
/// EINTR or ENOBUFS (so that rate=1 still makes progress). A cancel queued behind a stand-in NOP
/// cancels its op, as it would have the real one. corio absorbs every transient kind: user code
/// sees no difference. Fatal kinds are for tests of a server's error paths.
struct fault_options {
    static constexpr unsigned short_counts = 1u << 0; ///< `short`
    static constexpr unsigned interrupts = 1u << 1;   ///< `eintr`
    static constexpr unsigned no_buffers = 1u << 2;   ///< `enobufs`
    static constexpr unsigned resets = 1u << 3;       ///< `reset`
    static constexpr unsigned io_errors = 1u << 4;    ///< `eio`
    /// What correct code absorbs with no visible difference: the mode's default.
    static constexpr unsigned transient = short_counts | interrupts | no_buffers;
    /// Real failures a server must survive while serving everyone else (only when asked).
    static constexpr unsigned fatal = resets | io_errors;
    /// Every kind, transient and fatal.
    static constexpr unsigned all = transient | fatal;

    std::uint64_t seed = 0;     ///< seeds the context's PRNG: the same seed, the same choices
    double rate = 0;            ///< probability that one eligible SQE is faulted; 0: mode off
    unsigned kinds = transient; ///< bits above

    /// True when the mode would fault something: a rate above 0 and at least one kind.
    [[nodiscard]] bool is_on() const noexcept { return rate > 0 && kinds != 0; }

    /// Parses the CORIO_FAULTS syntax: comma-separated `seed=N`, `rate=R` (0 to 1, default
    /// 0.05), `kinds=K[,K...]` (short, eintr, enobufs, reset, eio, transient, fatal, all; `+`
    /// also separates them) and `errors=transient|all` (all adds the fatal kinds). An empty
    /// spec, `0` or `off` is the mode off. Without seed=, one is drawn from the clock and the
    /// pid (the line printed at construction shows it). Throws std::invalid_argument naming
    /// the token it cannot read.
    [[nodiscard]] static fault_options parse(std::string_view spec);
    /// parse(getenv("CORIO_FAULTS")), or nullopt when the variable is not set.
    [[nodiscard]] static std::optional<fault_options> from_environment();
    /// "seed=42, rate=0.05, kinds=short,eintr,enobufs": what the startup line shows.
    [[nodiscard]] std::string describe() const;
};

/// How the ring is set up. The defaults suit servers; tests shrink the rings to force the
/// SQ-full and CQ-overflow paths.
struct io_context_options {
    unsigned sq_entries = 256; ///< submission queue size (the kernel rounds up to a power of 2)
    unsigned cq_entries = 0;   ///< completion queue size; 0 lets the kernel pick 2 × sq_entries
    bool defer_taskrun = true; ///< try SINGLE_ISSUER|DEFER_TASKRUN first (falls back when refused)
    unsigned offload_threads = 2; ///< threads of the pool behind offload(), started on first use
    /// Fault injection (see fault_options). Unset: read from the environment variable
    /// CORIO_FAULTS once, at construction. Set: used as given, whatever the environment says
    /// (a rate of 0 turns the mode off: for tests that count SQEs exactly).
    std::optional<fault_options> faults = std::nullopt;
    /// The stall detector (docs/blocking.md): when user code keeps one turn of the loop busy
    /// longer than this many milliseconds, one report goes to stderr (how long the turn ran, the
    /// loop thread's native backtrace taken while it was over the threshold, and the await
    /// chain of the running task as `file:line in function` of each co_await up to the root),
    /// at most one per second per loop; io_context_stats counts every stall. 0: off. Unset:
    /// read from the environment variable CORIO_STALL_MS once, at construction (off when it is
    /// not set). Costs a watchdog thread per io_context while on, nothing while off.
    std::optional<unsigned> stall_ms = std::nullopt;
    /// The backend. Unset: read from the environment variable CORIO_BACKEND (`io_uring` or
    /// `epoll`) once, at construction; when that is unset too, io_uring, falling back to epoll
    /// when the kernel refuses io_uring (EPERM, EACCES, ENOSYS: a seccomp profile, the sysctl
    /// kernel.io_uring_disabled, a kernel without it or older than 5.11), with one line on
    /// stderr, once per process. Set (or named in CORIO_BACKEND): that backend or an exception.
    std::optional<backend_kind> backend = std::nullopt;
};

/// Counters a user can read at any time (a stats dump, a test's assertions).
struct io_context_stats {
    std::uint64_t loop_turns = 0;      ///< turns of the loop
    std::uint64_t submitted = 0;       ///< SQEs the kernel accepted
    std::uint64_t completed = 0;       ///< CQEs reaped (internal ones included)
    std::uint64_t kernel_enters = 0;   ///< io_uring_enter calls made by the loop
    std::uint64_t cq_overflows = 0;    ///< times the kernel reported a CQ overflow (recovered)
    std::uint64_t sq_full_flushes = 0; ///< submits forced because the SQ was full
    std::uint64_t enter_retries = 0;   ///< EINTR/EAGAIN/EBUSY from io_uring_enter, retried
    std::uint64_t faults_injected = 0; ///< SQEs the fault-injection mode rewrote (fault_options)
    std::uint64_t restarts = 0;        ///< single-shot ops resubmitted after EINTR (never seen
                                       ///< by user code; multishot streams count in their arms)
    std::uint64_t timers_fired = 0;    ///< timers (sleep_for, timeout()) that expired
    std::size_t ops_in_flight = 0;     ///< operations whose final completion is still due
    std::size_t timers_pending = 0;    ///< timers waiting in the loop's queue (no SQE each)
    std::size_t live_tasks = 0;        ///< corio task frames alive on this thread
    std::size_t frame_bytes = 0;       ///< bytes in those frames (as the compiler sized them)
    std::size_t peak_frame_bytes = 0;  ///< the most frame bytes alive at once on this thread
    std::size_t spawned_tasks = 0;     ///< detached tasks owned by this context, not yet done
    std::uint64_t stalls = 0;          ///< turns that ran past the stall threshold (detector on)
    /// The longest of those turns (measured from the watchdog's first sight of the turn, so
    /// short by at most an eighth of the threshold).
    std::chrono::microseconds longest_stall{0};
};

/// The event loop. Not thread-safe: create it, run it and destroy it on one thread (the ring is
/// set up with IORING_SETUP_SINGLE_ISSUER). Destroying it cancels every operation in flight and
/// waits for their completions, so no buffer is ever left with the kernel.
///
/// Not usable across fork(): the ring belongs to the process that created the context. In a
/// child, run(), run_until() (sync_wait) and any failed ring entry throw std::logic_error saying
/// so; destroying the inherited context there only releases the child's copies of its fds and
/// mappings (its tasks are leaked, nothing reaches the parent's ring). Create a new io_context in
/// the child instead.
class io_context {
public:
    /// The ring's setup options (io_context_options).
    using options = io_context_options;

    /// Sets up the ring. Throws std::system_error naming io_uring and the errno on failure.
    explicit io_context(options opts = {});
    ~io_context();
    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    /// The context running on this thread (or the most recently created one). Asserts one exists.
    [[nodiscard]] static io_context& current() noexcept {
        assert(t_current && "no corio::io_context on this thread");
        return *t_current;
    }

    /// The context running on this thread (or the most recently created one), or null: for
    /// destructors that may run outside any loop and must then fall back to plain syscalls.
    [[nodiscard]] static io_context* current_or_null() noexcept { return t_current; }

    /// Runs until stop() is called or nothing is left to do: no operation in flight, nothing
    /// ready, no offloaded job outstanding. Throws std::logic_error in a child process that
    /// inherited the context through fork().
    void run();

    /// Makes run() (or a sync_wait on this context) return after the current turn.
    void stop() noexcept { m_stop_requested = true; }

    /// Runs until `done` becomes true. Throws std::logic_error when nothing can make it true
    /// (no operation in flight, nothing ready: a deadlock), and in a child process that
    /// inherited the context through fork().
    void run_until(const bool& done);

    /// Handler for an exception that escapes a task spawned on this context. The default prints
    /// it and calls std::terminate: such an exception is never silently lost.
    void set_unhandled_exception_handler(std::function<void(std::exception_ptr)> handler);

    /// The counters. Cheap: a copy of a small struct.
    [[nodiscard]] io_context_stats stats() const noexcept;

    /// Cancellation for everything started on this context: requested when it is destroyed.
    [[nodiscard]] stop_token root_token() noexcept { return m_root_stop.token(); }

    /// The ring itself, for code that prepares SQEs corio does not wrap (see uring_op.hpp). On the
    /// epoll backend its queues are the backend's: SQEs prepared there run as far as it can run
    /// them (others complete with EOPNOTSUPP); liburing calls that enter the kernel do not apply.
    [[nodiscard]] io_uring* native_handle() noexcept { return &m_ring; }

    /// The flags the ring was finally set up with (after falling back on refused ones); 0 on
    /// the epoll backend.
    [[nodiscard]] unsigned ring_flags() const noexcept { return m_ring_flags; }

    /// The backend this context runs on (io_context_options::backend).
    [[nodiscard]] backend_kind backend() const noexcept {
        return m_epoll ? backend_kind::epoll : backend_kind::io_uring;
    }

    /// Closes `fd` with a plain \::close() (a destructor's fallback, an fd nobody awaited yet),
    /// first telling the current context's backend: the epoll backend keeps readiness state per
    /// descriptor, which a number reused by the next socket must not inherit. Use it instead of
    /// \::close() for descriptors corio ops ran on.
    static void close_fd(int fd) noexcept;

    /// The stall threshold in effect (io_context_options::stall_ms), or 0 when the detector is off.
    [[nodiscard]] std::chrono::milliseconds stall_threshold() const noexcept;

    /// The fault-injection mode in effect, or null when it is off (see fault_options): for tests
    /// whose assertions depend on it (an exact count of SQEs, say).
    [[nodiscard]] const fault_options* faults() const noexcept;

    // ----- for awaitables (runtime internals and extensions) -----

    /// A free SQE. Never null: when the SQ is full it submits what is queued and retries.
    [[nodiscard]] io_uring_sqe* get_sqe() {
        // liburing's io_uring_get_sqe, minus its per-call checks for SQPOLL (the kernel head
        // moves only inside this thread's io_uring_enter calls here) and SQE128 (never set up).
        // The free-slot check compares with a cached limit instead of reading the kernel's head.
        io_uring_sq& sq = m_ring.sq;
        unsigned tail = sq.sqe_tail;
        if (static_cast<int>(m_sq_full_at - tail) > 0) [[likely]] { // tail before the limit
            sq.sqe_tail = tail + 1;
            return &sq.sqes[tail & sq.ring_mask];
        }
        return get_sqe_slow();
    }

    /// Ensures `n` consecutive SQEs can be taken without an intervening submit (linked chains).
    void reserve_sqes(unsigned n);

    /// Marks `sqe` as belonging to `op`: its completion will be delivered to op->m_complete.
    inline void track(io_uring_sqe* sqe, detail::io_op* op) noexcept; // in detail/io_op.hpp
    /// track() with an explicit user_data: `op`'s address, tagged for plain single-shot ops.
    inline void track(io_uring_sqe* sqe, detail::io_op* op, std::uintptr_t user_data) noexcept;

    /// Tells the fault-injection mode about an IORING_OP_ASYNC_CANCEL SQE that is not tracked
    /// (its completion ignored): the faulted ops it would have hit complete with ECANCELED.
    void note_cancel(io_uring_sqe* sqe) noexcept {
        if (m_faults) [[unlikely]]
            inject_cancel(sqe);
    }

    /// Counts an op resubmitted after EINTR (io_context_stats::restarts).
    void count_restart() noexcept { ++m_stats.restarts; }

    /// Queues a coroutine to be resumed by the loop (never resumes inline).
    void post(detail::ready_node* node) noexcept { m_ready.push(node); }

    /// Queues a user-space timer: the loop calls node->m_fire once its deadline has passed (or
    /// at teardown). Costs no SQE. Throws std::bad_alloc when the queue cannot grow.
    void add_timer(detail::timer_node* node) { m_timers.push(node); }
    /// Takes a queued timer out without firing it (a cancelled sleep). No-op when not queued.
    void remove_timer(detail::timer_node* node) noexcept { m_timers.erase(node); }

    /// IORING_REGISTER_PBUF_RING on either backend. Returns 0 or -errno.
    [[nodiscard]] int register_buffer_ring(const io_uring_buf_reg& reg) noexcept;
    /// IORING_UNREGISTER_PBUF_RING on either backend. Returns 0 or -errno.
    int unregister_buffer_ring(unsigned group_id) noexcept;

    /// Submits an async cancel aimed at `op`. The op still finishes on its own completion.
    void cancel(detail::io_op* op) { cancel_user_data(reinterpret_cast<std::uintptr_t>(op)); }
    /// Submits an async cancel aimed at the SQE submitted with `user_data`.
    void cancel_user_data(std::uintptr_t user_data);

    /// Thread-safe: queues `node` from another thread (an offload worker) and wakes the loop.
    /// Only valid while an expect_remote() is outstanding for it.
    void post_remote(detail::ready_node* node);

    /// Announces that one post_remote() will come; keeps the loop waiting for it.
    void expect_remote();

    /// Installs (or, with null, removes) the hooks of an inbox other threads feed (a shard's).
    /// Loop thread only.
    void set_inbox(detail::inbox_hooks* inbox) noexcept { m_inbox = inbox; }
    /// True when completions wait for this loop: CQEs in the ring, or (DEFER_TASKRUN) work the
    /// kernel holds until the next enter. Cheap (two loads); false on the epoll backend.
    [[nodiscard]] bool has_kernel_events() const noexcept {
        if (m_epoll) [[unlikely]]
            return false;
        return io_uring_cq_ready(&m_ring) > 0 ||
               (IO_URING_READ_ONCE(*m_ring.sq.kflags) & IORING_SQ_TASKRUN) != 0;
    }

    /// The pool behind offload(), started on first use.
    [[nodiscard]] detail::offload_pool& offload_pool();

    /// The scope that owns tasks spawned directly on this context.
    [[nodiscard]] task_scope& root_scope() noexcept { return *m_root_scope; }

private:
    friend class detail::fault_injector;

    io_uring_sqe* get_sqe_slow();
    /// Re-reads the kernel's SQ head; true when a slot is free now.
    bool refresh_sq_limit() noexcept;
    /// Sets up the ring; 0, or the errno of a refusal the caller may fall back from.
    int setup_ring(const options& opts);
    /// Sets up the backend the options and CORIO_BACKEND ask for (see io_context_options).
    void setup_backend(const options& opts);
    /// enter() on the epoll backend: runs the queued SQEs, then waits up to `wait_ns`.
    void enter_epoll(std::int64_t wait_ns);
    void turn() {
        if (m_inbox) [[unlikely]] {
            turn_with_inbox();
            return;
        }
        ++m_stats.loop_turns;
        // Reaping never adds a timer (completion handlers only queue waiters): one test serves
        // both the wait and the firing.
        if (m_timers.empty()) [[likely]] {
            enter(m_ready.empty() && m_inflight > 0);
            reap();
        } else {
            enter_until_next_timer();
            reap();
            fire_timers();
        }
        run_ready();
    }
    /// turn() with the stall detector on (run() picks one of the two once, not per turn).
    void watched_turn();
    /// turn() for a loop with an inbox (a shard): polls it, tells it when the loop sleeps.
    void turn_with_inbox();
    /// The kernel entry of a turn with an inbox: `wait` when the loop has nothing to do.
    void enter_with_inbox(bool wait);
    [[noreturn]] static void throw_deadlock();
    void run_ready_watched();
    unsigned reap() noexcept;
    void run_ready();
    void enter(bool wait);
    /// enter() for a turn with timers queued: waits no longer than the earliest deadline.
    void enter_until_next_timer();
    /// Submits what is queued and waits up to `wait_ns` for a completion (one io_uring_enter
    /// with IORING_ENTER_EXT_ARG; a timeout is not an error).
    void enter_timed(std::int64_t wait_ns);
    void fire_timers() noexcept;
    [[nodiscard]] bool has_work() const noexcept {
        return !m_ready.empty() || m_inflight > 0 || io_uring_sq_ready(&m_ring) > 0 ||
               !m_timers.empty();
    }
    void arm_wake();
    static void on_wake(detail::io_op* op, int res, unsigned flags) noexcept;
    void drain_and_close() noexcept;
    /// Throws std::logic_error when called in a process other than the one that created the
    /// ring (a child after fork()). One getpid() call: for entry points, never per op.
    void check_process() const;
    /// Throws the error of a failed ring entry: a fork() misuse is named as such.
    [[noreturn]] void throw_enter_error(int err, const char* what) const;
    /// Destruction in a forked child: drops the child's copies of the fds and mappings and
    /// nothing else (the ring and every buffer the kernel holds belong to the parent).
    void release_after_fork() noexcept;
    /// The fault-injection mode's look at an SQE just tracked (only called when it is on).
    void inject_fault(io_uring_sqe* sqe) noexcept;
    /// note_cancel() with the mode on.
    void inject_cancel(io_uring_sqe* sqe) noexcept;
    /// Completes the op `user_data` names with `res` and `flags`, as reaping its CQE would.
    void deliver(std::uintptr_t user_data, int res, unsigned flags) noexcept;

    static inline thread_local io_context* t_current = nullptr;

    io_uring m_ring{};                  // the submission and completion queues
    unsigned m_sq_full_at = 0;          // the SQ tail at which no slot was free when last read
                                        // (the kernel's head only moves on: a stale limit is safe)
    unsigned m_ring_flags = 0;          // IORING_SETUP_* flags the kernel accepted
    bool m_ring_fd_registered = false;  // io_uring_register_ring_fd succeeded (enter by index)
    detail::ready_queue m_ready;        // coroutines to resume this turn or the next
    std::size_t m_inflight = 0;         // SQEs whose final CQE is still due (internal ones excluded)
    detail::timer_queue m_timers;       // user-space timers; the ring sees the earliest only
    detail::inbox_hooks* m_inbox = nullptr; // messages from other threads (a shard's), or null
    bool m_stop_requested = false;      // stop() was called
    io_context* m_previous = nullptr;   // the context that was current before this one
    io_context_stats m_stats;           // counters (ops_in_flight/live_tasks filled on read)
    stop_source m_root_stop;            // requested on destruction: reaches every task and op
    std::unique_ptr<task_scope> m_root_scope;  // owner of tasks spawned on the context

    // Cross-thread completions (offload): workers push here and write the eventfd; a read on the
    // eventfd stays armed through the ring while any is outstanding.
    std::mutex m_remote_mutex;          // guards m_remote
    detail::ready_queue m_remote;       // nodes posted by other threads
    std::size_t m_remote_expected = 0;  // post_remote() calls still to come (loop thread only)
    int m_wake_fd = -1;                 // eventfd the workers write
    std::uint64_t m_wake_buffer = 0;    // the kernel writes the eventfd count here
    std::unique_ptr<detail::io_op> m_wake_op;  // the armed eventfd read, or idle
    bool m_wake_armed = false;          // m_wake_op is in flight
    std::unique_ptr<detail::offload_pool> m_offload; // started on first offload()
    options m_options;                  // what the context was created with
    pid_t m_pid;                        // the process that created the ring (fork detection)
    std::unique_ptr<detail::fault_injector> m_faults; // the fault-injection mode, null when off
    std::unique_ptr<detail::stall_detector> m_stall;  // the stall detector, null when off
    std::unique_ptr<detail::epoll_backend> m_epoll;   // the epoll backend, null on io_uring
};

} // namespace corio

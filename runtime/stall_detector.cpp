// SPDX-License-Identifier: MIT
// The stall detector (watchdog thread, signal handler, report) and the task dump: the loop-health
// tools of docs/blocking.md.
#include <corio/runtime/detail/stall_detector.hpp>
#include <corio/runtime/task_dump.hpp>

#include <cxxabi.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>

namespace corio {
namespace detail {

namespace {

/// The detector of the io_context running turns on this thread, for the signal handler.
thread_local stall_detector* t_watched = nullptr;

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void on_stall_signal(int, siginfo_t*, void*) {
    int saved_errno = errno;
    if (stall_detector* d = t_watched)
        d->capture();
    errno = saved_errno;
}

/// Installs the handler once per process. False when the program handles the signal itself
/// (then reports come without a native backtrace).
bool install_handler() {
    static std::once_flag once;
    static bool installed = false;
    std::call_once(once, [] {
        // Loads libgcc's unwinder now: backtrace() in the handler must not run dlopen.
        void* warm_up[2];
        (void)::backtrace(warm_up, 2);
        struct sigaction old{};
        if (::sigaction(stall_signal(), nullptr, &old) != 0)
            return;
        bool has_handler = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                                       : old.sa_handler != SIG_DFL;
        if (has_handler)
            return; // the program's own: leave it alone
        struct sigaction sa{};
        sa.sa_sigaction = &on_stall_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESTART; // the loop's and the user's syscalls go on
        sigemptyset(&sa.sa_mask);
        installed = ::sigaction(stall_signal(), &sa, nullptr) == 0;
    });
    return installed;
}

/// A task frame starts with its resume function's address (g++ and clang alike).
void* resume_address(const promise_base* p) noexcept {
    return p->m_frame ? *static_cast<void* const*>(p->m_frame) : nullptr;
}

/// True when `p` is a live task of this thread (pointers taken in a signal handler may be stale).
bool is_live(const promise_base* p) noexcept {
    std::size_t budget = 1'000'000;
    for (const promise_base* q = t_tasks; q && budget; q = q->m_live_next, --budget)
        if (q == p)
            return true;
    return false;
}

/// "corio::detail::nop_op" out of awaitable_name<nop_op>()'s __PRETTY_FUNCTION__.
std::string awaitable_type(const char* (*name)() noexcept) {
    if (!name)
        return "a task";
    std::string text = name();
    std::size_t at = text.find("Awaitable = ");
    if (at == std::string::npos)
        return text;
    at += 12;
    std::size_t end = text.find_first_of(";]", at);
    return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::string pretty_frame(const char* line);

/// g++ names the function of a co_await site after the coroutine's actor ("void ns::f(ns::f(
/// args)::_Z...Frame*)"): keep "ns::f(args)".
std::string function_text(const char* function) {
    std::string text = function;
    std::size_t frame = text.find("::_Z");
    std::size_t open = text.find('(');
    if (frame == std::string::npos || open == std::string::npos || frame < open)
        return text;
    std::size_t name_start = text.rfind(' ', open);
    name_start = name_start == std::string::npos ? 0 : name_start + 1;
    std::string qualified = text.substr(name_start, open - name_start); // ns::f
    std::size_t last = qualified.rfind("::");
    std::string scope = last == std::string::npos ? "" : qualified.substr(0, last + 2);
    return scope + text.substr(open + 1, frame - open - 1);
}

std::string site_text(const await_site& site) {
    if (site.line() == 0)
        return "(no co_await yet, or built without CORIO_AWAIT_SITES)";
    return std::string(site.file()) + ":" + std::to_string(site.line()) + " in " +
           function_text(site.function());
}

/// The symbol of a task's resume function ("f(args) [clone .actor]" when the binary exports it,
/// else "binary(+0x1234)" for addr2line).
std::string task_name(void* resume) {
    if (!resume)
        return "?";
    char** symbols = ::backtrace_symbols(&resume, 1);
    if (!symbols)
        return "?";
    std::string text = pretty_frame(symbols[0]);
    std::free(symbols);
    return text;
}

const char* state_name(const promise_base& p) {
    if (&p == t_running)
        return "running";
    switch (p.m_state) {
    case run_state::idle:
        return p.m_site.line() == 0 ? "not started" : "suspended";
    case run_state::running_inline:
        return "running (started inline)";
    case run_state::completed_inline:
        return "finished";
    case run_state::suspended:
        return "suspended";
    }
    return "?";
}

/// Demangles the symbol inside one backtrace_symbols() line: "file(symbol+0x12) [0x...]".
std::string pretty_frame(const char* line) {
    std::string text = line;
    std::size_t open = text.find('(');
    std::size_t plus = text.find('+', open);
    if (open == std::string::npos || plus == std::string::npos || plus == open + 1)
        return text;
    std::string mangled = text.substr(open + 1, plus - open - 1);
    int status = 0;
    char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    if (status != 0 || !demangled)
        return text;
    std::string result = text.substr(0, open + 1) + demangled + text.substr(plus);
    std::free(demangled);
    return result;
}

} // namespace

stall_detector::stall_detector(std::chrono::milliseconds threshold)
    : m_threshold(threshold),
      m_period(std::max<std::chrono::microseconds>(std::chrono::milliseconds(1), threshold / 8)) {
    m_can_signal = install_handler();
    // The watchdog must never take a process-directed signal (SIGINT for a server's signalfd):
    // it starts with every signal blocked.
    sigset_t all, saved;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved);
    try {
        m_thread = std::thread([this] { watch(); });
    } catch (...) {
        ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

stall_detector::~stall_detector() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_one();
    if (m_thread.joinable())
        m_thread.join();
    if (t_watched == this)
        t_watched = m_previous;
}

void stall_detector::abandon() noexcept {
    // TRICKY: after fork() the std::thread object names a thread of the parent; joining or
    // destroying it joinable would hang or terminate. Detach the handle only.
    if (m_thread.joinable())
        m_thread.detach();
    if (t_watched == this)
        t_watched = m_previous;
}

void stall_detector::activate() noexcept {
    m_previous = t_watched;
    t_watched = this;
    m_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    if (m_can_signal) {
        // A user who blocks signals in the loop thread (signal_set, say) still gets reports.
        sigset_t ours;
        sigemptyset(&ours);
        sigaddset(&ours, stall_signal());
        ::pthread_sigmask(SIG_UNBLOCK, &ours, nullptr);
    }
    begin_turn();
    m_active.store(true, std::memory_order_release);
}

void stall_detector::deactivate() noexcept {
    m_active.store(false, std::memory_order_release);
    begin_turn();
    t_watched = m_previous;
}

void stall_detector::watch() {
    using clock = std::chrono::steady_clock;
    std::uint64_t last_seq = 0;
    bool fresh = false;                  // last_seq/since describe a turn seen running
    bool flagged = false;                // that turn was already reported to the loop
    clock::time_point since{};           // when the watchdog first saw that turn
    clock::time_point last_signal = clock::now() - std::chrono::hours(1);
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
        m_wake.wait_for(lock, m_period);
        if (m_stop)
            break;
        clock::time_point now = clock::now();
        std::uint64_t seq = m_seq.load(std::memory_order_relaxed);
        bool busy = m_active.load(std::memory_order_acquire) &&
                    !m_idle.load(std::memory_order_relaxed);
        if (!busy || !fresh || seq != last_seq) {
            last_seq = seq;
            since = now;
            fresh = busy;
            flagged = false;
            continue;
        }
        if (flagged || now - since < m_threshold)
            continue;
        flagged = true;
        std::int64_t since_ns = monotonic_ns() -
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count();
        m_flagged_since_ns.store(since_ns, std::memory_order_relaxed);
        m_flagged_seq.store(seq, std::memory_order_release);
        // At most one report per second per loop; the stall is counted either way.
        if (m_can_signal && now - last_signal >= std::chrono::seconds(1)) {
            last_signal = now;
            ::syscall(SYS_tgkill, static_cast<pid_t>(::getpid()),
                      m_tid.load(std::memory_order_relaxed), stall_signal());
        }
    }
}

void stall_detector::capture() noexcept {
    int expected = 0;
    std::uint64_t seq = m_seq.load(std::memory_order_relaxed);
    if (!m_capture.m_state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
        // One taken for an earlier turn that ended unflagged (the signal came late) is stale:
        // replace it. One of this turn is being printed or waits to be: keep it.
        if (expected != 2 || m_capture.m_seq == seq)
            return;
        m_capture.m_state.store(1, std::memory_order_relaxed);
    }
    stall_capture& c = m_capture;
    c.m_seq = seq;
    c.m_at_ns = monotonic_ns();
    c.m_frames = ::backtrace(c.m_trace, stall_capture::k_max_frames);
    // The running task: the one the runtime marked, else the one whose frame was resumed.
    promise_base* task = t_running;
    c.m_found_by_frame = false;
    if (task && !is_live(task))
        task = nullptr;
    if (!task) {
        void* frame = m_resumed.load(std::memory_order_relaxed);
        std::size_t budget = 1'000'000;
        for (promise_base* q = t_tasks; q && budget && frame; q = q->m_live_next, --budget) {
            if (q->m_frame == frame) {
                task = q;
                c.m_found_by_frame = true;
                break;
            }
        }
    }
    c.m_chain = 0;
    // Parents outlive their children (the child's task object lives in the parent's frame).
    for (; task && c.m_chain < stall_capture::k_max_chain; task = task->m_parent)
        c.m_links[c.m_chain++] = {task->m_site, task->m_waits_on, resume_address(task)};
    c.m_state.store(2, std::memory_order_release);
}

std::chrono::microseconds stall_detector::finish_stalled_turn(std::uint64_t seq) noexcept {
    std::int64_t since = m_flagged_since_ns.load(std::memory_order_relaxed);
    auto ran = std::chrono::microseconds((monotonic_ns() - since) / 1000);
    if (m_capture.m_state.load(std::memory_order_acquire) == 2) {
        if (m_capture.m_seq == seq)
            print_report(ran);
        m_capture.m_state.store(0, std::memory_order_release);
    }
    return ran;
}

void stall_detector::print_report(std::chrono::microseconds ran) noexcept {
    const stall_capture& c = m_capture;
    std::int64_t since = m_flagged_since_ns.load(std::memory_order_relaxed);
    std::string out;
    try {
        out += "corio: stall: a loop turn ran for " + std::to_string(ran.count() / 1000) +
               " ms (threshold " + std::to_string(m_threshold.count()) + " ms) on thread " +
               std::to_string(m_tid.load(std::memory_order_relaxed)) +
               "; native backtrace taken " + std::to_string((c.m_at_ns - since) / 1'000'000) +
               " ms into it:\n";
        char** symbols = ::backtrace_symbols(c.m_trace, c.m_frames);
        // Frame 0 is the handler and 1 the signal trampoline: start at the interrupted code.
        for (int i = 2; i < c.m_frames; ++i) {
            out += "  #" + std::to_string(i - 2) + " ";
            out += symbols ? pretty_frame(symbols[i]) : "?";
            out += "\n";
        }
        std::free(symbols);
        if (c.m_chain == 0) {
            out += "corio: await chain: no corio task was running (the loop itself, or a "
                   "coroutine that is not a corio::task)\n";
        } else {
            out += "corio: await chain (innermost first):\n";
            for (int i = 0; i < c.m_chain; ++i) {
                const stall_capture::link& l = c.m_links[i];
                out += i == 0 ? "  running task, last resumed from " : "  awaited by   ";
                out += site_text(l.m_site) + "\n";
                out += "      task " + task_name(l.m_resume) + "\n";
            }
        }
    } catch (...) {
        out += "corio: stall report truncated (out of memory)\n";
    }
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
}

} // namespace detail

int stall_signal() noexcept { return SIGRTMAX - 4; }

std::string task_dump() {
    using namespace detail;
    std::string out;
    std::size_t count = 0;
    for (const promise_base* p = t_tasks; p; p = p->m_live_next)
        ++count;
    out += "corio: " + std::to_string(count) + " live task" + (count == 1 ? "" : "s") +
           " on this thread\n";
    std::size_t index = 0;
    for (const promise_base* p = t_tasks; p; p = p->m_live_next, ++index) {
        out += "task " + std::to_string(index) + " [" + state_name(*p) + "] " +
               task_name(resume_address(p));
        if (p->m_site.line() != 0) {
            out += p == t_running ? "\n    resumed from " : "\n    waits at ";
            out += site_text(p->m_site);
            out += " on " + awaitable_type(p->m_waits_on);
            if (p->m_op_slot.m_user_data != 0)
                out += " (an io_uring operation in flight)";
        }
        out += "\n";
        for (const promise_base* parent = p->m_parent; parent; parent = parent->m_parent)
            out += "    awaited by " + site_text(parent->m_site) + "\n";
    }
    return out;
}

void dump_tasks(std::FILE* out) {
    std::string text = task_dump();
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
}

} // namespace corio

// SPDX-License-Identifier: MIT
// The fault-injection mode: the CORIO_FAULTS syntax, and the rewrites of SQEs at submission into
// completions the kernel could have produced (short counts, EINTR, ENOBUFS, ECONNRESET, EIO...).
#include <corio/runtime/detail/fault_injector.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace corio {

namespace {

struct kind_name {
    std::string_view name; // as CORIO_FAULTS spells it
    unsigned bits;         // fault_options bits it stands for
};

constexpr kind_name k_kind_names[] = {
    {"short", fault_options::short_counts}, {"eintr", fault_options::interrupts},
    {"enobufs", fault_options::no_buffers}, {"reset", fault_options::resets},
    {"eio", fault_options::io_errors},      {"transient", fault_options::transient},
    {"fatal", fault_options::fatal},        {"all", fault_options::all},
};

[[noreturn]] void bad_spec(std::string_view spec, std::string_view why) {
    throw std::invalid_argument("corio: CORIO_FAULTS='" + std::string(spec) +
                                "': " + std::string(why) +
                                " (expected e.g. seed=42,rate=0.05,kinds=short,eintr or "
                                "errors=all; see docs/runtime.md, Fault injection)");
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

/// Adds the kinds named in `list` (separated by '+') to `kinds`.
void add_kinds(std::string_view spec, std::string_view list, unsigned& kinds) {
    while (!list.empty()) {
        std::size_t plus = list.find('+');
        std::string_view name = trim(list.substr(0, plus));
        list = plus == std::string_view::npos ? std::string_view() : list.substr(plus + 1);
        bool known = false;
        for (const kind_name& k : k_kind_names) {
            if (k.name == name) {
                kinds |= k.bits;
                known = true;
            }
        }
        if (!known)
            bad_spec(spec, "unknown fault kind '" + std::string(name) + "'");
    }
}

std::uint64_t parse_seed(std::string_view spec, std::string_view value) {
    int base = 10;
    if (value.starts_with("0x") || value.starts_with("0X")) {
        value.remove_prefix(2);
        base = 16;
    }
    std::uint64_t seed = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seed, base);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty())
        bad_spec(spec, "seed must be an unsigned integer");
    return seed;
}

double parse_rate(std::string_view spec, std::string_view value) {
    std::string text(value); // strtod needs a terminator (from_chars for double is libstdc++ 11+)
    char* end = nullptr;
    double rate = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(rate >= 0.0 && rate <= 1.0))
        bad_spec(spec, "rate must be a number from 0 to 1");
    return rate;
}

/// A seed nobody chose: the line printed at construction makes it reproducible all the same.
std::uint64_t unchosen_seed() noexcept {
    auto now =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return (now ^ (static_cast<std::uint64_t>(::getpid()) << 32)) % 1'000'000'007;
}

} // namespace

fault_options fault_options::parse(std::string_view spec) {
    fault_options out;
    std::string_view whole = trim(spec);
    if (whole.empty() || whole == "0" || whole == "off")
        return out; // rate 0: off
    out.rate = 0.05;
    bool seeded = false;
    bool kinds_given = false;
    bool with_fatal = false;
    bool in_kinds = false; // bare tokens after kinds= are more kinds (kinds=short,eintr)
    unsigned kinds = 0;
    std::string_view rest = whole;
    while (!rest.empty()) {
        std::size_t comma = rest.find(',');
        std::string_view token = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (token.empty())
            continue;
        std::size_t eq = token.find('=');
        if (eq == std::string_view::npos) {
            if (in_kinds)
                add_kinds(whole, token, kinds);
            else if (token != "on" && token != "1")
                bad_spec(whole, "'" + std::string(token) + "' is not key=value");
            continue;
        }
        std::string_view key = trim(token.substr(0, eq));
        std::string_view value = trim(token.substr(eq + 1));
        in_kinds = false;
        if (key == "seed") {
            out.seed = parse_seed(whole, value);
            seeded = true;
        } else if (key == "rate") {
            out.rate = parse_rate(whole, value);
        } else if (key == "kinds") {
            kinds_given = true;
            in_kinds = true;
            add_kinds(whole, value, kinds);
        } else if (key == "errors") {
            if (value == "all" || value == "fatal")
                with_fatal = true;
            else if (value != "transient")
                bad_spec(whole, "errors must be transient or all");
        } else {
            bad_spec(whole, "unknown key '" + std::string(key) + "'");
        }
    }
    out.kinds = kinds_given ? kinds : transient;
    if (with_fatal)
        out.kinds |= fatal;
    if (!seeded)
        out.seed = unchosen_seed();
    return out;
}

std::optional<fault_options> fault_options::from_environment() {
    const char* spec = std::getenv("CORIO_FAULTS");
    if (spec == nullptr)
        return std::nullopt;
    return parse(spec);
}

std::string fault_options::describe() const {
    char rate_text[32];
    std::snprintf(rate_text, sizeof rate_text, "%g", rate);
    std::string out = "seed=" + std::to_string(seed) + ", rate=" + rate_text + ", kinds=";
    bool first = true;
    for (const kind_name& k : k_kind_names) {
        if (std::popcount(k.bits) != 1 || !(kinds & k.bits))
            continue;
        out += first ? "" : ",";
        out += k.name;
        first = false;
    }
    return out;
}

namespace detail {

fault_injector::fault_injector(io_context& ctx, const fault_options& options)
    : m_ctx(&ctx), m_options(options), m_state(options.seed) {}

std::uint64_t fault_injector::next() noexcept {
    std::uint64_t z = (m_state += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
}

double fault_injector::uniform() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t fault_injector::below(std::uint64_t n) noexcept {
    return next() % n;
}

fault_injector::fd_kind fault_injector::classify(const io_uring_sqe* sqe) noexcept {
    if (sqe->flags & IOSQE_FIXED_FILE)
        return fd_kind::other; // an index into the registered files, not an fd
    struct stat st {};
    if (::fstat(sqe->fd, &st) != 0)
        return fd_kind::other;
    if (S_ISSOCK(st.st_mode)) {
        int type = 0;
        socklen_t len = sizeof type;
        bool stream =
            ::getsockopt(sqe->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
        return stream ? fd_kind::stream_socket : fd_kind::other_socket;
    }
    if (S_ISREG(st.st_mode)) {
        int flags = ::fcntl(sqe->fd, F_GETFL);
        return flags >= 0 && (flags & O_DIRECT) ? fd_kind::direct_file : fd_kind::regular_file;
    }
    return fd_kind::other;
}

namespace {

/// Opcodes some fault may apply to: the rest is left alone without drawing from the PRNG.
bool may_fault(unsigned opcode) noexcept {
    switch (opcode) {
    case IORING_OP_RECV:
    case IORING_OP_SEND:
    case IORING_OP_RECVMSG:
    case IORING_OP_SENDMSG:
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
    case IORING_OP_FSYNC:
    case IORING_OP_ACCEPT:
    case IORING_OP_CONNECT:
    case IORING_OP_OPENAT:
    case IORING_OP_OPENAT2:
        return true;
    default:
        return false;
    }
}

/// The fault kinds whose eligibility depends on what the fd is.
constexpr unsigned k_fd_dependent =
    fault_options::short_counts | fault_options::resets | fault_options::io_errors;

} // namespace

unsigned fault_injector::eligible(const io_uring_sqe* sqe, fd_kind kind) noexcept {
    using o = fault_options;
    const bool select = sqe->flags & IOSQE_BUFFER_SELECT;
    const bool stream = kind == fd_kind::stream_socket;
    const bool file = kind == fd_kind::regular_file || kind == fd_kind::direct_file;
    const bool room = sqe->len >= 2; // a short count needs at least 1 byte less than asked
    // MSG_WAITALL: the kernel retries a partial transfer itself (short only on a signal).
    const bool wait_all = sqe->msg_flags & MSG_WAITALL;
    const unsigned reset = stream ? o::resets : 0;
    const unsigned eio = file ? o::io_errors : 0;
    const unsigned enobufs = select ? o::no_buffers : 0;
    switch (sqe->opcode) {
    case IORING_OP_RECV: {
        const bool multishot = sqe->ioprio & IORING_RECV_MULTISHOT;
        const bool shorten = stream && room && !multishot && !select && !wait_all;
        return (shorten ? o::short_counts : 0) | o::interrupts | enobufs | reset;
    }
    case IORING_OP_SEND:
        return (stream && room && !wait_all ? o::short_counts : 0) | o::interrupts | reset;
    case IORING_OP_RECVMSG:
        return o::interrupts | enobufs | reset;
    case IORING_OP_SENDMSG:
        return o::interrupts | reset;
    case IORING_OP_READ: {
        const bool shorten = kind == fd_kind::regular_file && room && !select;
        return (shorten ? o::short_counts : 0) | o::interrupts | enobufs | eio;
    }
    case IORING_OP_WRITE:
        return (kind == fd_kind::regular_file && room ? o::short_counts : 0) | o::interrupts | eio;
    case IORING_OP_READV:
        return o::interrupts | enobufs | eio;
    case IORING_OP_WRITEV:
        return o::interrupts | eio;
    case IORING_OP_FSYNC:
        return eio;
    case IORING_OP_ACCEPT:
    case IORING_OP_CONNECT:
    case IORING_OP_OPENAT:
    case IORING_OP_OPENAT2:
        return o::interrupts;
    default:
        return 0;
    }
}

int fault_injector::error_for(unsigned kind, const io_uring_sqe* sqe) noexcept {
    switch (kind) {
    case fault_options::interrupts:
        return EINTR;
    case fault_options::no_buffers:
        return ENOBUFS;
    case fault_options::resets:
        if (sqe->opcode == IORING_OP_SEND || sqe->opcode == IORING_OP_SENDMSG)
            return below(2) == 0 ? EPIPE : ECONNRESET;
        return ECONNRESET;
    default:
        return EIO;
    }
}

bool fault_injector::is_exempt(std::uintptr_t user_data) noexcept {
    for (std::uintptr_t& e : m_exempt) {
        if (e == user_data) {
            e = m_exempt.back();
            m_exempt.pop_back();
            return true;
        }
    }
    return false;
}

bool fault_injector::on_submit(io_uring_sqe* sqe) noexcept {
    if (sqe->opcode == IORING_OP_ASYNC_CANCEL) {
        on_cancel(sqe, true);
        return false;
    }
    if (!m_exempt.empty() && is_exempt(sqe->user_data))
        return false;
    // A linked SQE's failure or short count would have to break its chain, which a NOP or a
    // smaller len does not: the next SQE would run on data that is not there. (timed_op tracks
    // its op before linking the timeout: that pair may be faulted.)
    if ((sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) || !may_fault(sqe->opcode))
        return false;
    if (uniform() >= m_options.rate)
        return false;
    fd_kind kind = (m_options.kinds & k_fd_dependent) ? classify(sqe) : fd_kind::other;
    unsigned candidates = eligible(sqe, kind) & m_options.kinds;
    if (candidates == 0)
        return false;
    // One of the candidate kinds, uniformly.
    auto pick = static_cast<int>(below(static_cast<std::uint64_t>(std::popcount(candidates))));
    for (; pick > 0; --pick)
        candidates &= candidates - 1;
    unsigned chosen = candidates & (~candidates + 1);
    if (chosen == fault_options::short_counts) {
        sqe->len = 1 + static_cast<unsigned>(below(sqe->len - 1)); // in [1, len-1]
        return true;
    }
    bool transient = (chosen & fault_options::transient) != 0;
    return replace_by_nop(sqe, error_for(chosen, sqe), transient);
}

fault_injector::record* fault_injector::take_record(std::uintptr_t target) noexcept {
    record* rec = m_free;
    if (rec != nullptr) {
        m_free = rec->m_next_free;
    } else {
        try {
            m_records.push_back(std::make_unique<record>());
        } catch (...) {
            return nullptr; // out of memory: no fault this time
        }
        rec = m_records.back().get();
        rec->m_owner = this;
        rec->m_ctx = m_ctx;
        rec->m_complete = &on_nop;
    }
    rec->m_target = target;
    rec->m_fd = -1;
    rec->m_error = 0;
    rec->m_extra = 0;
    rec->m_is_cancel = false;
    rec->m_cancel_all = false;
    rec->m_transient = false;
    rec->m_cancelled = false;
    rec->m_in_flight = true;
    return rec;
}

bool fault_injector::replace_by_nop(io_uring_sqe* sqe, int error, bool transient) noexcept {
    record* rec = take_record(sqe->user_data);
    if (rec == nullptr)
        return false;
    rec->m_fd = (sqe->flags & IOSQE_FIXED_FILE) ? -1 : sqe->fd;
    rec->m_error = error;
    rec->m_transient = transient;
    // Only IOSQE_IO_DRAIN still matters to a NOP (link flags were refused above, and a NOP
    // takes no buffer and no file).
    const auto kept = static_cast<unsigned char>(sqe->flags & IOSQE_IO_DRAIN);
    io_uring_prep_nop(sqe);
    sqe->flags = kept;
    io_uring_sqe_set_data(sqe, static_cast<io_op*>(rec));
    return true;
}

void fault_injector::on_cancel(io_uring_sqe* sqe, bool tracked) noexcept {
    const unsigned flags = sqe->cancel_flags;
    const bool all = flags & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
    unsigned matched = 0;
    for (const std::unique_ptr<record>& r : m_records) {
        if (!r->m_in_flight || r->m_is_cancel || r->m_cancelled)
            continue;
        bool match = (flags & IORING_ASYNC_CANCEL_ANY) ||
                     ((flags & IORING_ASYNC_CANCEL_FD)
                          ? !(flags & IORING_ASYNC_CANCEL_FD_FIXED) && r->m_fd == sqe->fd
                          : r->m_target == sqe->addr);
        if (!match)
            continue;
        r->m_cancelled = true;
        ++matched;
        if (!all)
            break;
    }
    if (matched == 0 || !tracked)
        return;
    // The cancel's own count must include them: its completion goes through a record too.
    record* rec = take_record(sqe->user_data);
    if (rec == nullptr)
        return;
    rec->m_is_cancel = true;
    rec->m_cancel_all = all;
    rec->m_extra = matched;
    io_uring_sqe_set_data(sqe, static_cast<io_op*>(rec));
}

void fault_injector::on_nop(io_op* op, int res, unsigned flags) noexcept {
    auto* rec = static_cast<record*>(op);
    fault_injector& self = *rec->m_owner;
    std::uintptr_t target = rec->m_target;
    rec->m_in_flight = false;
    if (rec->m_is_cancel) {
        // A real cancel that found none of the faulted ops (they never reached the kernel).
        if (res == -ENOENT)
            res = rec->m_cancel_all ? static_cast<int>(rec->m_extra) : 0;
        else if (res >= 0 && rec->m_cancel_all)
            res += static_cast<int>(rec->m_extra);
    } else if (res == 0 && rec->m_cancelled) {
        res = -ECANCELED;  // the real op would have been pending when the cancel came
    } else if (res == 0) { // the NOP ran: the op fails as chosen (a link break keeps its res)
        res = -rec->m_error;
        if (rec->m_transient) {
            // Its retry goes through untouched: rate=1 must still make progress. Entries of ops
            // that were cancelled instead of retried are dropped in bulk when they pile up.
            if (self.m_exempt.size() >= 4096)
                self.m_exempt.clear();
            try {
                self.m_exempt.push_back(target);
            } catch (...) {
            }
        }
    }
    rec->m_next_free = self.m_free;
    self.m_free = rec;
    self.m_ctx->deliver(target, res, flags);
}

} // namespace detail
} // namespace corio

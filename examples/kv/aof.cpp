// SPDX-License-Identifier: MIT
// The append-only file (see aof.hpp): the strict record reader and the tail rule, replay, load
// and repair, the writer task, and the rewrite.
#include "aof.hpp"

#include <corio/fs/fs_error.hpp>
#include <corio/fs/path_ops.hpp>
#include <corio/runtime/offload.hpp>
#include <corio/runtime/timer.hpp>

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

namespace kv {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t npos = std::string_view::npos;

/// Consecutive EINTR/EAGAIN (or empty writes) tolerated on one file operation before it fails.
constexpr int k_max_retries = 100;

// ----- the strict record reader -----

/// How the bytes at one offset read as a record.
enum class record_state : unsigned char {
    complete,   // a well-formed record
    incomplete, // a well-formed beginning of one, cut by the end of the data
    bad,        // a byte that no well-formed record has there
};

/// The record at one offset (the grammar is in aof.hpp).
struct record_read {
    record_state state = record_state::complete;
    std::size_t end = 0;           // complete: one past its last byte
    std::size_t problem = 0;       // bad: the first byte that cannot be there
    std::string what;              // bad: what was expected there and what was found
    std::size_t bulk = npos;       // incomplete inside a bulk's data: the offset of its '$'
    std::uint64_t bulk_length = 0; // ...its declared length
    std::size_t data = 0;          // ...where its data starts
};

/// Bytes [at, at + n) of `data` (fewer at the end) quoted for a message: 'ab', '\r', '\x00'.
std::string quoted(std::string_view data, std::size_t at, std::size_t n = 1) {
    std::string out = "'";
    for (std::size_t i = at; i < data.size() && i < at + n; ++i) {
        auto c = static_cast<unsigned char>(data[i]);
        if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
            out += static_cast<char>(c);
        else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out + "'";
}

/// Reads the decimal number and CRLF of a header line whose digits start at `pos` (the byte
/// after '*' or '$'); on success `pos` is past the CRLF. Every byte is checked as it comes, so
/// `incomplete` means what is there may still begin a well-formed line. `name` is for messages.
record_state read_number(std::string_view data, std::size_t& pos, std::uint64_t& value,
                         bool zero_ok, const char* name, record_read& r) {
    constexpr std::size_t max_digits = 18; // below 2^63: no overflow (Redis's string2ll bound)
    auto bad = [&](std::size_t at, std::string what) {
        r.problem = at;
        r.what = std::move(what);
        return record_state::bad;
    };
    std::size_t i = pos;
    if (i == data.size())
        return record_state::incomplete;
    if (data[i] < '0' || data[i] > '9')
        return bad(i, std::string("expected the ") + name + " (a digit), found " + quoted(data, i));
    if (data[i] == '0' && !zero_ok)
        return bad(i, std::string("the ") + name + " is 0");
    value = 0;
    for (; i < data.size() && data[i] >= '0' && data[i] <= '9'; ++i) {
        if (i > pos && data[pos] == '0')
            return bad(i, std::string("the ") + name + " has a leading zero");
        if (i - pos == max_digits)
            return bad(i, std::string("the ") + name + " has more than 18 digits");
        value = value * 10 + static_cast<std::uint64_t>(data[i] - '0');
    }
    if (i == data.size())
        return record_state::incomplete;
    if (data[i] != '\r')
        return bad(i,
                   std::string("expected '\\r' after the ") + name + ", found " + quoted(data, i));
    if (i + 1 == data.size())
        return record_state::incomplete;
    if (data[i + 1] != '\n')
        return bad(i + 1, "expected '\\n' after '\\r', found " + quoted(data, i + 1));
    pos = i + 2;
    return record_state::complete;
}

/// Reads the record at `at`; its arguments go to `args` when it is complete (and args is given).
record_read read_record(std::string_view data, std::size_t at,
                        std::vector<std::string_view>* args) {
    record_read r;
    if (args)
        args->clear();
    if (at == data.size()) {
        r.state = record_state::incomplete;
        return r;
    }
    if (data[at] != '*') {
        r.state = record_state::bad;
        r.problem = at;
        r.what = "expected '*', found " + quoted(data, at);
        return r;
    }
    std::size_t pos = at + 1;
    std::uint64_t count = 0;
    r.state = read_number(data, pos, count, false, "argument count", r);
    if (r.state != record_state::complete)
        return r;
    for (std::uint64_t i = 1; i <= count; ++i) {
        auto which = [&] { // for messages only: no allocation per bulk on the way through
            return " of argument " + std::to_string(i) + " of " + std::to_string(count);
        };
        if (pos == data.size()) {
            r.state = record_state::incomplete;
            return r;
        }
        if (data[pos] != '$') {
            r.state = record_state::bad;
            r.problem = pos;
            r.what = "expected '$' (the bulk header" + which() + "), found " + quoted(data, pos);
            return r;
        }
        std::size_t dollar = pos++;
        std::uint64_t length = 0;
        r.state = read_number(data, pos, length, true, "bulk length", r);
        if (r.state != record_state::complete)
            return r;
        if (length + 2 > data.size() - pos) {
            // The data runs into the end of the file unless a wrong byte comes first.
            std::size_t crlf = pos + length;
            r.bulk = dollar;
            r.bulk_length = length;
            r.data = pos;
            r.state = record_state::incomplete;
            if (length <= data.size() - pos && crlf < data.size() && data[crlf] != '\r') {
                r.state = record_state::bad;
                r.problem = crlf;
                r.what = "expected '\\r\\n' after the " + std::to_string(length) + " bytes" +
                         which() + ", found " + quoted(data, crlf, 2);
            }
            return r;
        }
        std::size_t crlf = pos + length;
        if (data[crlf] != '\r' || data[crlf + 1] != '\n') {
            r.state = record_state::bad;
            r.problem = crlf;
            r.what = "expected '\\r\\n' after the " + std::to_string(length) + " bytes" + which() +
                     ", found " + quoted(data, crlf, 2);
            r.bulk = dollar;
            r.bulk_length = length;
            r.data = pos;
            return r;
        }
        if (args)
            args->push_back(data.substr(pos, length));
        pos = crlf + 2;
    }
    r.state = record_state::complete;
    r.end = pos;
    return r;
}

/// The first offset in [from, to) where a record starts after a CRLF: `\r\n*N\r\n` (N >= 1)
/// followed by '$' or by the end of the data (rule 2 in aof.hpp). npos when there is none.
std::size_t find_record_start(std::string_view data, std::size_t from, std::size_t to) {
    std::size_t at = from < 2 ? 2 : from;
    while (at < to) {
        std::size_t hit = data.find("\r\n*", at - 2);
        if (hit == npos || hit + 2 >= to)
            return npos;
        std::size_t start = hit + 2;
        std::size_t pos = start + 1;
        std::uint64_t count = 0;
        record_read scratch;
        if (read_number(data, pos, count, false, "argument count", scratch) ==
                record_state::complete &&
            (pos == data.size() || data[pos] == '$'))
            return start;
        at = start + 1;
    }
    return npos;
}

/// How a chain of records read from some offset ends (see chain_from).
struct chain_end {
    std::size_t pos = 0; // where it stopped: past `limit`, or at a bad or incomplete record
    bool bad = false;    // stopped at a byte no record has there
    bool at_eof = false; // stopped at a well-formed beginning cut by the end of the data
};

/// Reads complete records from `q` until one ends beyond `limit` (or at it).
chain_end chain_from(std::string_view data, std::size_t q, std::size_t limit) {
    chain_end c;
    c.pos = q;
    while (c.pos < limit) {
        record_read r = read_record(data, c.pos, nullptr);
        if (r.state != record_state::complete) {
            c.bad = r.state == record_state::bad;
            c.at_eof = r.state == record_state::incomplete;
            return c;
        }
        c.pos = r.end;
    }
    return c;
}

/// A bulk whose declared length is suspected of having swallowed records.
struct swallow {
    std::size_t bulk = npos; // its '$' (npos: none found)
    std::size_t length = 0;  // its declared length
    std::size_t next = 0;    // where the first swallowed record starts
};

/// Looks through the bulks of a complete record (`args` are views into `data`) for a record
/// header after a CRLF in its data from which records read on either to exactly `end_exact`
/// (the record's end: the length swallowed whole records and its CRLF is theirs) or past
/// `past` / into the end of the data (the length ended on some CRLF inside a later record, and
/// reading on failed at `past`). npos arguments turn a test off.
swallow find_swallow(std::string_view data, const std::vector<std::string_view>& args,
                     std::size_t end_exact, std::size_t past) {
    for (std::string_view a : args) {
        auto d = static_cast<std::size_t>(a.data() - data.data());
        if (a.size() < 2 || a.find("\r\n*") == npos) // values rarely hold CRLF '*'
            continue;
        for (std::size_t q = find_record_start(data, d + 2, d + a.size()); q != npos;
             q = find_record_start(data, q + 1, d + a.size())) {
            std::size_t limit = end_exact != npos ? end_exact : past + 1;
            chain_end c = chain_from(data, q, limit);
            bool swallowed = end_exact != npos ? !c.bad && !c.at_eof && c.pos == end_exact
                                               : c.at_eof || (!c.bad && c.pos > past);
            if (swallowed) {
                std::size_t digits = std::to_string(a.size()).size();
                return {d - 3 - digits, a.size(), q};
            }
        }
    }
    return {};
}

/// "corrupt record at byte S: at byte P, what" (without "at byte P" when P is S).
std::string corrupt_text(std::size_t record, std::size_t problem, const std::string& what) {
    std::string out = "corrupt record at byte " + std::to_string(record) + ": ";
    if (problem != record)
        out += "at byte " + std::to_string(problem) + ", ";
    return out + what;
}

std::span<const std::byte> bytes_of(const std::string& s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

bool is_transient(const std::error_code& ec) noexcept {
    return ec == std::errc::interrupted || ec == std::errc::resource_unavailable_try_again;
}

// ----- file helpers -----

/// Writes all of `*data` at `offset`: loops over partial writes, retries EINTR/EAGAIN (at a fixed
/// offset a retry rewrites the same bytes in the same place, so it is idempotent).
corio::task<corio::result<void>> write_fully(const corio::file* f, const std::string* data,
                                             std::uint64_t offset) {
    std::span<const std::byte> rest = bytes_of(*data);
    int retries = 0;
    while (!rest.empty()) {
        auto writing = f->write_some_at(rest, offset);
        corio::result<std::size_t> n = co_await writing;
        if (!n && (!is_transient(n.error()) || ++retries > k_max_retries))
            co_return n.error();
        if (!n)
            continue;
        if (*n == 0) { // the kernel took nothing: retry a little, then call it an error
            if (++retries > k_max_retries)
                co_return make_error_code(corio::fs_errc::write_made_no_progress);
            continue;
        }
        retries = 0;
        rest = rest.subspan(*n);
        offset += *n;
    }
    co_return corio::result<void>{};
}

/// fsync (all metadata) or fdatasync of `f`, retrying EINTR/EAGAIN.
corio::task<corio::result<void>> sync_fully(const corio::file* f, bool data_only) {
    for (int retries = 0;; ++retries) {
        auto syncing = data_only ? f->fdatasync() : f->fsync();
        corio::result<void> synced = co_await syncing;
        if (synced || !is_transient(synced.error()) || retries >= k_max_retries)
            co_return synced;
    }
}

/// Makes a rename or a creation in the directory of `path` durable (fsync of the directory).
corio::task<corio::result<void>> sync_directory(std::string path) {
    std::size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    auto opening = corio::file::open(dir, O_RDONLY | O_DIRECTORY);
    corio::result<corio::file> d = co_await opening;
    if (!d)
        co_return d.error();
    auto syncing = sync_fully(&*d, false);
    corio::result<void> synced = co_await std::move(syncing);
    auto closing = d->close();
    corio::result<void> closed = co_await closing;
    (void)closed; // a read-only descriptor: nothing to lose at close
    if (!synced &&
        (synced == std::errc::invalid_argument || synced == std::errc::operation_not_supported))
        co_return corio::result<void>{}; // a filesystem that cannot sync directories at all
    co_return synced;
}

/// Takes the exclusive flock of a log: false when another process holds it. Filesystems that
/// cannot lock (ENOLCK, EINVAL...) are let through: the lock guards against an operator error.
bool try_lock(const corio::file& f) noexcept {
    return ::flock(f.native_handle(), LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK;
}

/// ftruncate(2) of an open file (blocking metadata work: on the offload pool). 0 or the errno.
struct truncate_job {
    int fd;
    std::uint64_t length;
    int operator()() const { return ::ftruncate(fd, static_cast<off_t>(length)) == 0 ? 0 : errno; }
};

/// The whole content of the open file `f` (statx for the size, then reads until end of file),
/// retrying EINTR/EAGAIN.
corio::task<corio::result<std::string>> read_all(const corio::file* f) {
    auto stating = f->statx(STATX_SIZE);
    corio::result<corio::file_status> st = co_await stating;
    if (!st)
        co_return st.error();
    std::string data(static_cast<std::size_t>(st->stx_size) + 1, '\0'); // +1: sees growth
    std::size_t filled = 0;
    int retries = 0;
    for (;;) {
        std::span<std::byte> room = std::as_writable_bytes(std::span(data)).subspan(filled);
        auto reading = f->read_some_at(room, filled);
        corio::result<std::size_t> n = co_await reading;
        if (!n && is_transient(n.error()) && ++retries <= k_max_retries)
            continue;
        if (!n)
            co_return n.error();
        retries = 0;
        if (*n == 0)
            break;
        filled += *n;
        if (filled == data.size())
            data.resize(data.size() * 2);
    }
    data.resize(filled);
    co_return data;
}

/// What a torn last record is called in messages.
std::string tail_text(const std::string& path, const replay_report& r) {
    return "aof: " + path + ": truncated tail: the file ends inside the record at byte " +
           std::to_string(r.good_length) + " (" + std::to_string(r.truncated_bytes) +
           " bytes, the well-formed beginning of a record, as a crash leaves it)";
}

} // namespace

std::string_view to_string(fsync_policy p) noexcept {
    switch (p) {
    case fsync_policy::always:
        return "always";
    case fsync_policy::everysec:
        return "everysec";
    case fsync_policy::no:
        return "no";
    }
    return "?";
}

replay_report replay_log(std::string_view data, engine& e) {
    replay_report report;
    std::vector<std::string_view> args;
    std::vector<std::string_view> previous_args; // of the record before `pos`
    std::size_t previous = npos;                 // where that record starts
    std::string reply;
    store& s = e.keyspace();
    bool was_loading = s.is_loading();
    s.set_loading(true);
    std::size_t pos = 0;
    auto corrupt = [&](std::size_t problem, const std::string& what) {
        report.ok = false;
        report.error_offset = problem;
        report.error = corrupt_text(pos, problem, what);
    };
    auto points_past = [](const swallow& w) {
        return "bulk length " + std::to_string(w.length) +
               " points past the next record (at byte " + std::to_string(w.next) + ")";
    };
    // Rule 3's second half: a length in the record before `pos` that ended by chance on a CRLF
    // inside a later record makes reading on fail at `problem`; the records it swallowed read on
    // past it. Blame that record then: true when it was.
    auto blame_previous = [&](std::size_t problem, const std::string& what) {
        swallow w;
        if (previous != npos)
            w = find_swallow(data, previous_args, npos, problem);
        if (w.bulk == npos)
            return false;
        --report.records;
        pos = report.good_length = previous;
        corrupt(w.bulk, points_past(w) + "; reading on from where its data ends, at byte " +
                            std::to_string(problem) + ", " + what);
        return true;
    };
    while (pos < data.size()) {
        record_read r = read_record(data, pos, &args);
        if (r.state == record_state::bad) {
            if (blame_previous(r.problem, r.what))
                break;
            std::string what = r.what;
            if (r.bulk != npos) { // the CRLF after a bulk is missing: a length too long?
                std::size_t next = find_record_start(data, r.data + 2, r.problem);
                if (next != npos)
                    what += "; bulk length " + std::to_string(r.bulk_length) + " (at byte " +
                            std::to_string(r.bulk) + ") points past the next record (at byte " +
                            std::to_string(next) + ")";
            }
            corrupt(r.problem, what);
            break;
        }
        if (r.state == record_state::incomplete) {
            std::size_t next =
                r.bulk == npos ? npos : find_record_start(data, r.data + 2, data.size());
            if (next != npos) { // rule 2 (aof.hpp)
                corrupt(r.bulk, "bulk length " + std::to_string(r.bulk_length) +
                                    " points past the next record (at byte " +
                                    std::to_string(next) + ") and past the end of the file (" +
                                    std::to_string(data.size()) + " bytes)");
                break;
            }
            report.truncated_bytes = data.size() - pos;
            break;
        }
        swallow w = find_swallow(data, args, r.end, npos); // whole records taken as data
        if (w.bulk != npos) {
            corrupt(w.bulk, points_past(w) + ": every record up to byte " + std::to_string(r.end) +
                                " reads as its data");
            break;
        }
        reply.clear();
        reply_writer writer(reply);
        (void)e.execute(args, writer);
        if (reply.starts_with("-ERR unknown command") ||
            reply.starts_with("-ERR wrong number of arguments")) {
            std::string what = "the server refuses it: " + reply.substr(1, reply.size() - 3);
            if (!blame_previous(pos, "a record " + what))
                corrupt(pos, what);
            break;
        }
        ++report.records;
        previous = pos;
        previous_args.swap(args);
        pos = r.end;
        report.good_length = pos;
    }
    s.set_loading(was_loading);
    return report;
}

namespace {

/// Saves `*data` as the first free one of PATH.bak, PATH.bak.1, ... (O_EXCL: never overwrites a
/// copy), fsynced with its directory entry. Resumes with its name.
corio::task<corio::result<std::string>> save_backup(std::string path, const std::string* data) {
    for (int i = 0; i < 100; ++i) {
        std::string name = path + ".bak" + (i == 0 ? "" : "." + std::to_string(i));
        auto creating = corio::file::open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        corio::result<corio::file> f = co_await creating;
        if (!f && f == std::errc::file_exists)
            continue;
        if (!f)
            co_return f.error();
        auto writing = write_fully(&*f, data, 0);
        corio::result<void> ok = co_await std::move(writing);
        if (ok) {
            auto syncing = sync_fully(&*f, false);
            ok = co_await std::move(syncing);
        }
        auto closing = f->close();
        corio::result<void> closed = co_await closing;
        if (ok && !closed)
            ok = closed;
        if (ok) {
            auto dir_syncing = sync_directory(name);
            ok = co_await std::move(dir_syncing);
        }
        if (!ok)
            co_return ok.error();
        co_return name;
    }
    co_return std::make_error_code(std::errc::file_exists);
}

/// Cuts the file at `path`, whose content was `size` bytes when checked, to `length`; fsynced.
corio::task<corio::result<void>> cut_file(std::string path, std::uint64_t size,
                                          std::uint64_t length) {
    auto opening = corio::file::open(path, O_WRONLY);
    corio::result<corio::file> f = co_await opening;
    if (!f)
        co_return f.error();
    auto stating = f->statx(STATX_SIZE);
    corio::result<corio::file_status> st = co_await stating;
    corio::result<void> ok;
    if (!st)
        ok = st.error();
    else if (st->stx_size != size) // changed since it was checked: touch nothing
        ok = std::make_error_code(std::errc::resource_unavailable_try_again);
    if (ok) {
        truncate_job job{f->native_handle(), length};
        auto cutting = corio::offload(job);
        int err = co_await cutting;
        if (err != 0)
            ok = std::error_code(err, std::system_category());
    }
    if (ok) {
        auto syncing = sync_fully(&*f, false);
        ok = co_await std::move(syncing);
    }
    auto closing = f->close();
    corio::result<void> closed = co_await closing;
    if (ok && !closed)
        ok = closed;
    co_return ok;
}

} // namespace

corio::task<repair_report> repair_log(std::string path) {
    repair_report report;
    auto fail = [&](std::string text) {
        report.ok = false;
        report.message = "aof: " + path + ": " + text;
        return report;
    };
    auto opening = corio::file::open(path, O_RDONLY);
    corio::result<corio::file> f = co_await opening;
    if (!f)
        co_return fail("cannot open it: " + f.error().message());
    if (!try_lock(*f))
        co_return fail("locked by another process (a server using this log?): not repairing");
    auto reading = read_all(&*f);
    corio::result<std::string> data = co_await std::move(reading);
    if (!data)
        co_return fail("reading it: " + data.error().message());

    store scratch; // the records must replay as at start-up, unknown commands included
    engine checker(scratch);
    replay_report r = replay_log(*data, checker);
    report.records = r.records;
    report.cut_at = r.good_length;
    if (r.ok && r.truncated_bytes == 0) {
        report.message = "aof: " + path + ": " + std::to_string(r.records) + " records, " +
                         std::to_string(data->size()) +
                         " bytes, well-formed to the end: nothing to repair";
        co_return report;
    }
    std::string finding = r.ok ? tail_text(path, r) : "aof: " + path + ": " + r.error;

    auto saving = save_backup(path, &*data);
    corio::result<std::string> backup = co_await std::move(saving);
    if (!backup)
        co_return fail("saving a copy before the repair: " + backup.error().message() +
                       ": nothing changed");
    report.backup = *backup;
    auto cutting = cut_file(path, data->size(), r.good_length);
    corio::result<void> cut = co_await std::move(cutting);
    if (!cut)
        co_return fail("cutting it at byte " + std::to_string(r.good_length) + ": " +
                       cut.error().message() + " (the original is saved as " + *backup + ")");
    report.changed = true;
    report.dropped = data->size() - r.good_length;
    report.message = finding + "\naof: " + path + ": cut at byte " + std::to_string(r.good_length) +
                     ": dropped " + std::to_string(report.dropped) + " bytes (from byte " +
                     std::to_string(r.good_length) + " to the end), kept " +
                     std::to_string(r.records) + " records; the original is saved as " + *backup;
    auto unlocking = f->close();
    corio::result<void> unlocked = co_await unlocking;
    (void)unlocked; // read-only
    co_return report;
}

aof_log::aof_log(aof_options options, store& keyspace)
    : m_options(std::move(options)), m_store(&keyspace) {}

aof_log::~aof_log() = default;

corio::task<load_report> aof_log::load(engine& e) {
    load_report report;
    const std::string& path = m_options.path;
    auto opening = corio::file::open(path, O_RDONLY); // never for writing before the check
    corio::result<corio::file> f = co_await opening;
    if (!f && f == std::errc::no_such_file_or_directory)
        co_return report; // a new log
    if (!f) {
        report.ok = false;
        report.message = "aof: " + path + ": cannot open it: " + f.error().message();
        co_return report;
    }
    if (!try_lock(*f)) {
        report.ok = false;
        report.message = "aof: " + path +
                         ": locked by another process (a server using this "
                         "log?): refusing to start";
        co_return report;
    }
    m_lock = std::move(*f);
    auto reading = read_all(&m_lock);
    corio::result<std::string> data = co_await std::move(reading);
    if (!data) {
        report.ok = false;
        report.message = "aof: " + path + ": reading it: " + data.error().message();
        co_return report;
    }
    replay_report r = replay_log(*data, e);
    report.records = r.records;
    report.length = r.good_length;
    if (!r.ok) {
        report.ok = false;
        report.message = "aof: " + path + ": " + r.error + "\naof: " + path +
                         ": refusing to start; the file was not changed. `corio-kv --aof-repair` "
                         "(same --dir and --appendfilename) cuts it at byte " +
                         std::to_string(r.good_length) + ", dropping the " +
                         std::to_string(data->size() - r.good_length) +
                         " bytes from there on and keeping a copy of the original";
    } else if (r.truncated_bytes > 0) {
        report.message = tail_text(path, r) + ": cutting the log from " +
                         std::to_string(data->size()) + " to " + std::to_string(r.good_length) +
                         " bytes; " + std::to_string(r.records) + " records kept";
    }
    co_return report;
}

corio::task<corio::result<void>> aof_log::open(std::uint64_t length) {
    auto opening = corio::file::open(m_options.path, O_WRONLY | O_CREAT, 0644);
    corio::result<corio::file> f = co_await opening;
    if (!f)
        co_return f.error();
    if (!m_lock.is_open() && !try_lock(*f))
        co_return std::make_error_code(std::errc::device_or_resource_busy);
    m_file = std::move(*f);
    auto stating = m_file.statx(STATX_SIZE);
    corio::result<corio::file_status> st = co_await stating;
    if (!st)
        co_return st.error();
    if (st->stx_size < length) {
        std::fprintf(stderr, "corio-kv: aof: %s: %llu bytes, shorter than the %llu loaded\n",
                     m_options.path.c_str(), static_cast<unsigned long long>(st->stx_size),
                     static_cast<unsigned long long>(length));
        co_return std::make_error_code(std::errc::io_error);
    }
    if (st->stx_size > length) { // the truncated tail: gone before anything is appended
        auto cutting = cut_to(length);
        corio::result<void> cut = co_await std::move(cutting);
        if (!cut)
            co_return cut;
    }
    // A newly created log must not vanish in a crash.
    auto syncing = sync_directory(m_options.path);
    corio::result<void> synced = co_await std::move(syncing);
    if (!synced)
        co_return synced;
    m_offset = length;
    m_base_size = length;
    m_writer_scope.spawn(writer());
    if (m_options.fsync == fsync_policy::everysec)
        m_ticker_scope.spawn(ticker());
    co_return corio::result<void>{};
}

corio::task<corio::result<void>> aof_log::cut_to(std::uint64_t length) {
    truncate_job job{m_file.native_handle(), length};
    auto cutting = corio::offload(job);
    int err = co_await cutting;
    if (err != 0)
        co_return std::error_code(err, std::system_category());
    auto syncing = sync_fully(&m_file, false); // the new size is durable before any append
    corio::result<void> synced = co_await std::move(syncing);
    co_return synced;
}

std::uint64_t aof_log::commit() {
    std::size_t fresh = m_pending.size() - m_committed;
    if (fresh > 0) {
        if (m_rewriting)
            m_rewrite_buffer.append(m_pending, m_committed, fresh);
        m_committed = m_pending.size();
        m_logged_seq += fresh;
        wake();
    }
    return m_logged_seq;
}

void aof_log::fatal(const char* what, std::error_code ec) {
    std::fprintf(stderr, "corio-kv: %s on the append only file %s: %s. Exiting.\n", what,
                 m_options.path.c_str(), ec.message().c_str());
    std::fflush(stderr);
    std::exit(1); // as Redis does: an acknowledged write must never be silently lost
}

corio::task<void> aof_log::write_pending() {
    commit();
    m_writing.swap(m_pending);
    m_pending.clear();
    m_committed = 0;
    std::uint64_t seq = m_logged_seq;
    auto writing = write_fully(&m_file, &m_writing, m_offset);
    corio::result<void> wrote = co_await std::move(writing);
    if (!wrote)
        fatal("write failed", wrote.error());
    m_offset += m_writing.size();
    m_writing.clear();
    m_written_seq = seq;
    ++m_stats.writes;
    if (m_options.fsync == fsync_policy::always)
        co_await sync_file();
}

corio::task<void> aof_log::sync_file() {
    std::uint64_t seq = m_written_seq;
    auto syncing = sync_fully(&m_file, true);
    corio::result<void> synced = co_await std::move(syncing);
    if (!synced)
        fatal("fsync failed", synced.error());
    ++m_stats.fsyncs;
    m_synced_seq = seq;
    m_durable_seq = seq;
    m_durable.set(); // wakes every waiter; later waits block again
    m_durable.reset();
}

corio::task<void> aof_log::writer() {
    for (;;) {
        commit();
        if (m_switch_ready) {
            co_await finish_rewrite();
            continue;
        }
        // The everysec fsync comes first: a steady stream of writes must not starve it.
        if (m_sync_due && m_synced_seq < m_written_seq) {
            m_sync_due = false;
            co_await sync_file();
            continue;
        }
        if (!m_pending.empty()) {
            co_await write_pending();
            std::uint64_t grown_limit =
                m_base_size + m_base_size * m_options.rewrite_percentage / 100;
            if (!m_rewriting && m_options.rewrite_percentage > 0 &&
                m_offset >= m_options.rewrite_min_size && m_offset > grown_limit)
                (void)start_rewrite();
            continue;
        }
        m_sync_due = false;
        if (m_stopping && !m_rewriting) {
            if (m_synced_seq < m_written_seq)
                co_await sync_file();
            co_return;
        }
        m_wake.reset();
        auto waiting = m_wake.wait();
        corio::result<void> woke = co_await waiting;
        (void)woke; // cancellation is never requested: close() stops the writer by m_stopping
    }
}

corio::task<void> aof_log::ticker() {
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(1s);
        if (!slept)
            co_return;
        m_sync_due = true;
        wake();
    }
}

std::string aof_log::start_rewrite() {
    if (!m_file.is_open())
        return "the append only file is not open";
    if (m_rewriting)
        return "Background append only file rewriting already in progress";
    commit(); // records so far go to the old log only: the snapshot holds their effect
    m_rewriting = true;
    m_rewrite_buffer.clear();
    std::string snapshot;
    snapshot_records(*m_store, snapshot);
    m_writer_scope.spawn(rewrite(std::move(snapshot)));
    return {};
}

corio::task<void> aof_log::rewrite(std::string snapshot) {
    std::string temp = m_options.path + ".rewrite";
    auto creating = corio::file::create(temp);
    corio::result<corio::file> f = co_await creating;
    if (f) {
        (void)try_lock(*f); // the lock moves to the new log with it (a fresh file: never taken)
        auto writing = write_fully(&*f, &snapshot, 0);
        corio::result<void> wrote = co_await std::move(writing);
        if (wrote) {
            m_rewrite_file = std::move(*f);
            m_rewrite_offset = snapshot.size();
            m_switch_ready = true;
            wake();
            co_return;
        }
        std::fprintf(stderr, "corio-kv: AOF rewrite: writing %s: %s\n", temp.c_str(),
                     wrote.error().message().c_str());
        auto closing = f->close();
        (void)co_await closing;
    } else {
        std::fprintf(stderr, "corio-kv: AOF rewrite: creating %s: %s\n", temp.c_str(),
                     f.error().message().c_str());
    }
    m_rewriting = false;
    m_rewrite_buffer.clear();
    wake(); // a writer waiting to stop may go now
    auto removing = corio::unlink(temp);
    (void)co_await removing;
}

corio::task<void> aof_log::finish_rewrite() {
    commit();
    m_switch_ready = false;
    m_rewriting = false;
    std::string tail = std::exchange(m_rewrite_buffer, {});
    std::string old_tail = std::exchange(m_pending, {}); // in `tail` too
    m_committed = 0;
    std::uint64_t seq = m_logged_seq;
    std::string temp = m_options.path + ".rewrite";

    auto writing = write_fully(&m_rewrite_file, &tail, m_rewrite_offset);
    corio::result<void> ok = co_await std::move(writing);
    if (ok) {
        auto syncing = sync_fully(&m_rewrite_file, true);
        ok = co_await std::move(syncing);
    }
    if (ok) {
        auto renaming = corio::rename(temp, m_options.path);
        ok = co_await renaming;
    }
    if (!ok) {
        std::fprintf(stderr, "corio-kv: AOF rewrite failed: %s; keeping the old log\n",
                     ok.error().message().c_str());
        auto closing = m_rewrite_file.close();
        (void)co_await closing;
        auto removing = corio::unlink(temp);
        (void)co_await removing;
        m_pending.insert(0, old_tail); // back in front of what arrived meanwhile
        m_committed += old_tail.size();
        co_return;
    }
    // The rename itself must be durable: after a crash the old log, which no longer receives
    // appends, would come back.
    auto syncing = sync_directory(m_options.path);
    corio::result<void> synced = co_await std::move(syncing);
    if (!synced)
        fatal("fsync of the directory after the rewrite failed", synced.error());
    auto closing = m_file.close();
    corio::result<void> closed = co_await closing;
    (void)closed;           // the old log is replaced: nothing in it is needed any more
    if (m_lock.is_open()) { // the old log's lock, whose file is gone: let its space go
        auto unlocking = m_lock.close();
        corio::result<void> unlocked = co_await unlocking;
        (void)unlocked;
    }
    m_file = std::move(m_rewrite_file);
    m_offset = m_rewrite_offset + tail.size();
    m_base_size = m_offset;
    m_written_seq = seq;
    m_synced_seq = seq;
    m_durable_seq = seq;
    ++m_stats.rewrites;
    ++m_stats.fsyncs;
    m_durable.set();
    m_durable.reset();
}

corio::task<void> aof_log::close() {
    m_stopping = true;
    m_ticker_scope.request_stop();
    co_await m_ticker_scope.join();
    wake();
    co_await m_writer_scope.join();
    if (m_file.is_open()) {
        auto closing = m_file.close();
        corio::result<void> closed = co_await closing;
        if (!closed) // after the final fsync succeeded: reported, nothing acknowledged is lost
            std::fprintf(stderr, "corio-kv: closing the append only file %s: %s\n",
                         m_options.path.c_str(), closed.error().message().c_str());
    }
    if (m_lock.is_open()) {
        auto unlocking = m_lock.close();
        corio::result<void> unlocked = co_await unlocking;
        (void)unlocked; // read-only
    }
}

aof_stats aof_log::stats() const noexcept {
    aof_stats s = m_stats;
    s.current_size = m_offset;
    s.base_size = m_base_size;
    s.pending = m_logged_seq - m_written_seq;
    s.rewriting = m_rewriting;
    return s;
}

} // namespace kv

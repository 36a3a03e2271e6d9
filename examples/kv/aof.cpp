// SPDX-License-Identifier: MIT
// The append-only file (see aof.hpp): replay, the writer task, and the rewrite.
#include "aof.hpp"

#include "resp_parser.hpp"

#include <corio/fs/path_ops.hpp>
#include <corio/runtime/timer.hpp>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <utility>

namespace kv {

using namespace std::chrono_literals;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

/// Makes a rename or a creation in the directory of `path` durable (fsync of the directory).
corio::task<void> sync_directory(std::string path) {
    std::size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    auto opening = corio::file::open(dir, O_RDONLY | O_DIRECTORY);
    corio::result<corio::file> d = co_await opening;
    if (!d)
        co_return; // best effort: the data itself is already fsynced
    auto syncing = d->fsync();
    corio::result<void> synced = co_await syncing;
    (void)synced;
    auto closing = d->close();
    corio::result<void> closed = co_await closing;
    (void)closed;
}

} // namespace

std::string_view to_string(fsync_policy p) noexcept {
    switch (p) {
    case fsync_policy::always: return "always";
    case fsync_policy::everysec: return "everysec";
    case fsync_policy::no: return "no";
    }
    return "?";
}

replay_report replay_log(std::string_view data, engine& e) {
    replay_report report;
    // A record may be as large as a client may send; the log is trusted to that extent only.
    parser_limits limits;
    limits.max_inline_length = 64u << 10;
    resp_parser parser(limits);
    std::string reply;
    store& s = e.keyspace();
    bool was_loading = s.is_loading();
    s.set_loading(true);
    std::size_t pos = 0;
    while (pos < data.size()) {
        std::string_view rest = data.substr(pos);
        if (rest[0] != '*') {
            report.ok = false;
            report.error = "Bad file format reading the append only file at offset " +
                           std::to_string(pos) + ": a record must start with '*'";
            break;
        }
        parse_status st = parser.parse(rest);
        if (st == parse_status::need_more) {
            report.truncated_bytes = rest.size();
            parser.reset();
            break;
        }
        if (st == parse_status::error) {
            report.ok = false;
            report.error = "Bad file format reading the append only file at offset " +
                           std::to_string(pos) + ": " + std::string(parser.error_text());
            break;
        }
        if (st == parse_status::command) {
            reply.clear();
            reply_writer w(reply);
            const auto& args = parser.args();
            (void)e.execute(args, w);
            if (reply.starts_with("-ERR unknown command") ||
                reply.starts_with("-ERR wrong number of arguments")) {
                report.ok = false;
                report.error = "Unknown command or bad arity reading the append only file at "
                               "offset " + std::to_string(pos) + ": " +
                               reply.substr(1, reply.size() - 3);
                break;
            }
            ++report.records;
        }
        pos += parser.consumed();
        report.good_length = pos;
    }
    s.set_loading(was_loading);
    return report;
}

aof_log::aof_log(aof_options options, store& keyspace)
    : m_options(std::move(options)), m_store(&keyspace) {}

aof_log::~aof_log() = default;

corio::task<corio::result<void>> aof_log::open(std::uint64_t length) {
    auto opening = corio::file::open(m_options.path, O_WRONLY | O_CREAT, 0644);
    corio::result<corio::file> f = co_await opening;
    if (!f)
        co_return f.error();
    m_file = std::move(*f);
    co_await sync_directory(m_options.path); // a newly created log must not vanish in a crash
    m_offset = length;
    m_base_size = length;
    m_writer_scope.spawn(writer());
    if (m_options.fsync == fsync_policy::everysec)
        m_ticker_scope.spawn(ticker());
    co_return corio::result<void>{};
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
    auto writing = m_file.write_all_at(bytes_of(m_writing), m_offset);
    corio::result<std::size_t> wrote = co_await writing;
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
    auto syncing = m_file.fdatasync();
    corio::result<void> synced = co_await syncing;
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
        auto writing = f->write_all_at(bytes_of(snapshot), 0);
        corio::result<std::size_t> wrote = co_await writing;
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

    auto writing = m_rewrite_file.write_all_at(bytes_of(tail), m_rewrite_offset);
    corio::result<std::size_t> wrote = co_await writing;
    corio::result<void> ok = wrote ? corio::result<void>{} : corio::result<void>(wrote.error());
    if (ok) {
        auto syncing = m_rewrite_file.fdatasync();
        ok = co_await syncing;
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
    co_await sync_directory(m_options.path); // the rename itself is durable
    auto closing = m_file.close();
    (void)co_await closing;
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
        (void)co_await closing;
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

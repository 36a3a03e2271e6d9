// SPDX-License-Identifier: MIT
// The append-only file of examples/kv: replay at start-up (a truncated last record is cut off, a
// corrupt one is an error), and a writer that appends the records of each batch of commands
// through corio's fs module with Redis's three fsync policies, group commit for `always`, and a
// rewrite (compaction) while serving.
#pragma once

#include "commands.hpp"
#include "store.hpp"

#include <corio/fs/file.hpp>
#include <corio/runtime/event.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kv {

/// What replaying a log found.
struct replay_report {
    bool ok = true;                 ///< false: a record in the middle is corrupt (see error)
    std::size_t records = 0;        ///< records executed
    std::size_t good_length = 0;    ///< bytes of complete records (the file is cut back to this)
    std::size_t truncated_bytes = 0; ///< bytes of an incomplete last record, dropped
    std::string error;              ///< why the log is corrupt, with the record's offset
};

/// Replays the records in `data` against `e` (whose propagation must be off). The store is put
/// in loading mode meanwhile, so nothing expires half-way. An incomplete last record is reported
/// in truncated_bytes (Redis's aof-load-truncated yes); a malformed record or an unknown command
/// anywhere is corruption.
[[nodiscard]] replay_report replay_log(std::string_view data, engine& e);

/// When the log is flushed to the device.
enum class fsync_policy : unsigned char {
    always,   ///< before a write command's reply is sent (one fdatasync per batch of writes)
    everysec, ///< once a second; a crash loses about a second of writes
    no,       ///< when the kernel decides
};

[[nodiscard]] std::string_view to_string(fsync_policy p) noexcept;

/// How the log is kept.
struct aof_options {
    std::string path;                         ///< the log file
    fsync_policy fsync = fsync_policy::everysec;
    std::uint64_t rewrite_percentage = 100;   ///< rewrite when grown by this % since the last one
    std::uint64_t rewrite_min_size = 64u << 20; ///< ...and at least this big (0 % turns it off)
};

/// Counters for INFO persistence.
struct aof_stats {
    std::uint64_t current_size = 0; ///< bytes in the log file now
    std::uint64_t base_size = 0;    ///< its size after loading or after the last rewrite
    std::uint64_t writes = 0;       ///< write batches
    std::uint64_t fsyncs = 0;       ///< fdatasync calls
    std::uint64_t rewrites = 0;     ///< rewrites finished
    std::uint64_t pending = 0;      ///< bytes logged but not yet written
    bool rewriting = false;         ///< a rewrite is in progress
};

/// The log writer. Commands append records to buffer() (engine::set_propagation); whoever ran
/// them calls commit(), which wakes the writer. One writer task owns the file: it writes what
/// was committed with one write (and, with `always`, one fdatasync) per round, so every write
/// of one loop turn shares one flush.
class aof_log {
public:
    aof_log(aof_options options, store& keyspace);
    aof_log(const aof_log&) = delete;
    aof_log& operator=(const aof_log&) = delete;
    ~aof_log();

    /// Opens the log for appending at `length` (the replayed size) and starts the writer.
    [[nodiscard]] corio::task<corio::result<void>> open(std::uint64_t length);

    /// Where commands append records.
    [[nodiscard]] std::string& buffer() noexcept { return m_pending; }

    /// Takes what was appended since the last commit; wakes the writer. Returns the sequence
    /// number a reply must wait for (see wait_durable) under `always`.
    std::uint64_t commit();

    /// True when everything up to sequence `seq` has been written and fsynced.
    [[nodiscard]] bool is_durable(std::uint64_t seq) const noexcept { return m_durable_seq >= seq; }

    /// Set (and reset at once) each time records become durable: waiters re-check is_durable().
    [[nodiscard]] corio::event& durable_event() noexcept { return m_durable; }

    [[nodiscard]] fsync_policy policy() const noexcept { return m_options.fsync; }

    /// Starts a rewrite: the keyspace is serialised now, written to a temporary file while new
    /// records keep going to the old log and to a rewrite buffer; then the buffer is appended to
    /// the new file, which is fsynced and renamed over the log. Returns an error text when one
    /// is already running.
    std::string start_rewrite();

    /// Writes what is pending, fsyncs, stops the writer and closes the file (shutdown).
    [[nodiscard]] corio::task<void> close();

    [[nodiscard]] aof_stats stats() const noexcept;

private:
    corio::task<void> writer();
    corio::task<void> ticker();
    corio::task<void> rewrite(std::string snapshot);
    corio::task<void> finish_rewrite();
    corio::task<void> write_pending();
    corio::task<void> sync_file();
    void wake() noexcept { m_wake.set(); }
    [[noreturn]] void fatal(const char* what, std::error_code ec);

    aof_options m_options;              // path, policy, rewrite rule
    store* m_store;                     // serialised by a rewrite
    corio::file m_file;                 // the log, opened for writing
    std::uint64_t m_offset = 0;         // where the next record goes
    std::uint64_t m_base_size = 0;      // size after load / last rewrite (auto-rewrite rule)
    std::string m_pending;              // records appended by commands, not yet written
    std::size_t m_committed = 0;        // bytes of m_pending already counted by commit()
    std::string m_writing;              // the records of the write in flight
    std::uint64_t m_logged_seq = 0;     // bytes ever committed
    std::uint64_t m_written_seq = 0;    // bytes ever written to the file
    std::uint64_t m_synced_seq = 0;     // bytes ever written and fsynced
    std::uint64_t m_durable_seq = 0;    // what `always` waiters compare against
    corio::event m_wake;                // the writer has something to do
    corio::event m_durable;             // see durable_event()
    bool m_sync_due = false;            // the everysec ticker asks for an fsync
    bool m_stopping = false;            // close() was called
    bool m_rewriting = false;           // between start_rewrite() and the switch
    bool m_switch_ready = false;        // the snapshot is written: the writer switches files
    std::string m_rewrite_buffer;       // records committed since the snapshot
    corio::file m_rewrite_file;         // the new log being built
    std::uint64_t m_rewrite_offset = 0; // its size so far
    aof_stats m_stats;                  // counters (sizes filled on read)
    corio::task_scope m_writer_scope;   // the writer and rewrite tasks
    corio::task_scope m_ticker_scope;   // the everysec ticker
};

} // namespace kv

// SPDX-License-Identifier: MIT
// The append-only file of examples/kv: a strict loader that tells a torn last record (repaired at
// start-up) from corruption before the tail (refused, with the byte offset), an explicit repair
// (--aof-repair), and a writer that appends the records of each batch of commands through corio's
// fs module with Redis's three fsync policies, group commit for `always`, and a rewrite
// (compaction) while serving.
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

// ----- reading a log -----
//
// The format is what the writer writes and nothing else: records `*N\r\n` (N >= 1), each followed
// by N bulks `$L\r\n` + L bytes + `\r\n`; numbers in decimal without sign or leading zeros, at
// most 18 digits. Anything else at any offset is corruption (`*0`, inline commands, a blank line
// included), and so is a well-formed record the server refuses (an unknown command, wrong arity).
//
// A crash can only leave the file ending inside the last record the writer was appending, never
// damage bytes before it: records are written in order at increasing offsets, and the file is
// cut back to its last complete record before anything is appended (aof_log::open). So the
// loader calls an incomplete record a truncated tail, and repairs it, only when
//   1. the file ends inside it, every byte from its start to the end of the file being what a
//      well-formed record may have there (each header complete or a prefix of one, each bulk's
//      data followed by `\r\n` unless the file ends first), and
//   2. the bulk whose data runs into the end of the file does not contain the start of another
//      record: no `\r\n` in it is followed by a record header `*N\r\n` that continues with `$` or
//      ends the file.
// Everything else that is not a sequence of complete records is corruption, refused at the
// record that holds the damage. Rule 2 catches a corrupted length that still parses: `$4` that
// became `$99999999` makes the parser take every later record as data and meet the end of the
// file "incomplete"; the records it swallowed are found inside that data. A length that points
// past a later record but not past the end usually finds no `\r\n` where its data ends; CRLFs are
// dense in a log, though, so it may end on one inside a later record by chance, and then
//   3. a complete record is corrupt when one of its bulks holds, after a `\r\n`, the start of
//      complete records that read on to exactly the record's own end (its length swallowed
//      whole records and took their last `\r\n` as its own), or past the byte where reading on
//      after it fails, or into the end of the file;
// the damage is then reported at that record, not at the garbage after it.
//
// What it cannot tell: a length corrupted inside the last record, where nothing follows, reads
// exactly as that record torn by a crash, and is cut like one (that one record at most, with the
// message). A value that itself holds RESP records in a torn last record makes rule 2 refuse a
// log that was merely torn (the safe direction: --aof-repair cuts it then), and so does rule 3
// for a value that ends in a RESP record lacking its final `\r\n`. A byte changed inside a value
// without changing its length is not detectable (no checksum; Redis's AOF has none either).

/// What replaying a log found.
struct replay_report {
    bool ok = true;                  ///< false: corrupt before its end (see error): refuse to start
    std::size_t records = 0;         ///< records replayed
    std::size_t good_length = 0;     ///< bytes of those records: where a repair cuts the file
    std::size_t truncated_bytes = 0; ///< a torn tail's bytes after good_length (ok stays true)
    std::size_t error_offset = 0;    ///< !ok: the byte at which the damage was seen
    std::string error;               ///< !ok: "corrupt record at byte N: what was found"
};

/// Replays the records in `data` against `e` (whose propagation must be off), stopping at the
/// first record that is corrupt or incomplete (see the rules above). The store is put in loading
/// mode meanwhile, so nothing expires half-way. After corruption found by rule 3 one record late,
/// `e` holds the effect of the damaged record too: a refused log is not served anyway.
[[nodiscard]] replay_report replay_log(std::string_view data, engine& e);

/// What loading the log at start-up decided (aof_log::load).
struct load_report {
    bool ok = true;           ///< false: do not start; the file was not changed
    std::uint64_t length = 0; ///< where appends go: open() cuts the file back to this first
    std::size_t records = 0;  ///< records replayed
    std::string message;      ///< why not ok, or the truncated-tail notice; empty otherwise
};

/// What an explicit repair (--aof-repair) did.
struct repair_report {
    bool ok = true;            ///< false: nothing could be repaired (see message); exit non-zero
    bool changed = false;      ///< the file was cut
    std::uint64_t cut_at = 0;  ///< the new length: the offset of the first bad record
    std::uint64_t dropped = 0; ///< bytes cut off
    std::size_t records = 0;   ///< complete good records kept
    std::string backup;        ///< where the original was saved (when changed)
    std::string message;       ///< what was found and done, for the operator
};

/// Checks the log at `path` as start-up would (a scratch keyspace replays it) and, when it is
/// damaged, saves a copy as PATH.bak (or .bak.1, ...; never overwritten), then cuts the log at the
/// first bad record (a truncated tail or corruption), fsynced. Refuses while a server holds the
/// log. Like `redis-check-aof --fix`: every record from the cut on is dropped, the backup keeps
/// them.
[[nodiscard]] corio::task<repair_report> repair_log(std::string path);

/// When the log is flushed to the device.
enum class fsync_policy : unsigned char {
    always,   ///< before a write command's reply is sent (one fdatasync per batch of writes)
    everysec, ///< once a second; a crash loses about a second of writes
    no,       ///< when the kernel decides
};

[[nodiscard]] std::string_view to_string(fsync_policy p) noexcept;

/// How the log is kept.
struct aof_options {
    std::string path; ///< the log file
    fsync_policy fsync = fsync_policy::everysec;
    std::uint64_t rewrite_percentage = 100;     ///< rewrite when grown by this % since the last one
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
/// of one loop turn shares one flush. Writes loop over partial counts and retry EINTR/EAGAIN
/// (at a fixed offset a retry rewrites the same bytes); any other write or fsync error ends the
/// process with a message, as Redis does: an acknowledged write is never silently lost, and the
/// torn record it may leave is the truncated tail the next start-up repairs. The file carries an
/// exclusive flock(2), so two servers never append to one log.
class aof_log {
public:
    aof_log(aof_options options, store& keyspace);
    aof_log(const aof_log&) = delete;
    aof_log& operator=(const aof_log&) = delete;
    ~aof_log();

    /// Start-up, before open(): takes the log's lock (a second server on the same file is
    /// refused) and replays the log into `e` (propagation off). Reads only: a refused log is left
    /// byte for byte as it was. A missing file is an empty log.
    [[nodiscard]] corio::task<load_report> load(engine& e);

    /// Opens the log for appending at `length` (what load() accepted) and starts the writer.
    /// Bytes after `length` (a truncated tail) are cut off and the cut is fsynced before anything
    /// is appended, so a torn record can never end up in the middle of the log. Takes the lock if
    /// load() did not. A file shorter than `length` is an error.
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

    /// Writes what is pending, fsyncs, stops the writer and closes the file (shutdown). A failed
    /// write or fsync ends the process (see below); a failed close is printed.
    [[nodiscard]] corio::task<void> close();

    [[nodiscard]] aof_stats stats() const noexcept;

private:
    corio::task<void> writer();
    corio::task<void> ticker();
    corio::task<void> rewrite(std::string snapshot);
    corio::task<void> finish_rewrite();
    corio::task<void> write_pending();
    corio::task<void> sync_file();
    corio::task<corio::result<void>> cut_to(std::uint64_t length);
    void wake() noexcept { m_wake.set(); }
    [[noreturn]] void fatal(const char* what, std::error_code ec);

    aof_options m_options;              // path, policy, rewrite rule
    store* m_store;                     // serialised by a rewrite
    corio::file m_file;                 // the log, opened for writing
    corio::file m_lock;                 // the log opened read-only by load(): holds its flock
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

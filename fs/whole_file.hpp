// SPDX-License-Identifier: MIT
// Whole-file helpers on top of corio::file: read a file into memory, replace a file atomically
// (temp + fsync + rename + fsync of the directory), copy a file with several reads in flight.
#pragma once

#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace corio {

/// Reads the whole file `path`. Sizes the buffer from statx, then reads until end of file, so a
/// file that grew or shrank meanwhile is read as it is at the end (procfs files that report size
/// 0 work too). Resumes with the bytes, or the errno (std::errc::no_such_file_or_directory...).
[[nodiscard]] task<result<std::string>> read_file(std::string path);

/// Knobs of write_file_atomically(). NOTE: name an options object before the co_await instead
/// of passing a braced temporary (g++ 12 PR 101367 miscompiles aggregate temporaries there).
struct write_file_options {
    mode_t mode = 0644; ///< permissions of a newly created temp file (before the umask)
    bool sync = true;   ///< fsync the temp file before the rename and the directory after it
    /// Test hook: stop after the temp file is written, fsynced and closed, before the rename, as
    /// if the process had crashed there. The target keeps its old content, the temp file stays
    /// behind (the next write reuses and replaces it), and the call reports
    /// fs_errc::simulated_crash.
    bool crash_before_rename = false;
};

/// The temp file write_file_atomically() uses for `path`: ".NAME.corio-tmp" in the same directory
/// (the same filesystem, so the rename is atomic; a fixed name, so a crashed write's leftover is
/// reclaimed by the next write).
[[nodiscard]] std::string atomic_temp_path(const std::string& path);

/// Replaces the content of `path` with `contents` so that a crash leaves either the old or the
/// new content, never a mix: writes atomic_temp_path(path) (created or truncated), fsyncs it,
/// renames it over `path`, then fsyncs the directory so the rename itself is durable. One writer
/// per path at a time (concurrent writers share the temp name). On failure before the rename the
/// temp file is removed and the target is untouched.
[[nodiscard]] task<result<void>> write_file_atomically(std::string path, std::string contents);
/// write_file_atomically() with options (see write_file_options).
[[nodiscard]] task<result<void>> write_file_atomically(std::string path, std::string contents,
                                                       write_file_options options);

/// Knobs of copy_file() (same NOTE as write_file_options about temporaries).
struct copy_file_options {
    std::size_t chunk_size = 128 * 1024; ///< bytes per read/write
    unsigned reads_in_flight = 4;        ///< chunks copied concurrently (each reads, then writes)
};

/// Copies `src` to `dst` (created with src's permission bits, or truncated) through the ring with
/// several chunks in flight: each of `reads_in_flight` workers reads a chunk and writes it at the
/// same offset. Data only (no metadata, no fsync). If `src` changes meanwhile, the copy holds
/// what each chunk read saw. Resumes with the number of bytes copied.
[[nodiscard]] task<result<std::uint64_t>> copy_file(std::string src, std::string dst);
/// copy_file() with options (see copy_file_options).
[[nodiscard]] task<result<std::uint64_t>> copy_file(std::string src, std::string dst,
                                                    copy_file_options options);

} // namespace corio

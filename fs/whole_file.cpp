// SPDX-License-Identifier: MIT
// Whole-file helpers: read_file, write_file_atomically, copy_file. Each opens, works and closes
// through the ring; every error is a value.
#include <corio/fs/whole_file.hpp>

#include <corio/fs/file.hpp>
#include <corio/fs/fs_error.hpp>
#include <corio/fs/path_ops.hpp>
#include <corio/runtime/when_all.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <span>
#include <utility>
#include <vector>

namespace corio {

namespace {

/// Reads `f` from offset 0 to end of file; `size_hint` (from statx) sizes the first buffer.
task<result<std::string>> read_to_end(const file* f, std::uint64_t size_hint) {
    if (size_hint >= std::string().max_size())
        co_return std::errc::file_too_large;
    // One byte beyond the hint: a full buffer means the file grew, so keep going.
    std::size_t initial = size_hint == 0 ? 4096 : static_cast<std::size_t>(size_hint) + 1;
    std::string data(initial, '\0');
    std::size_t filled = 0;
    for (;;) {
        std::span<std::byte> rest = std::as_writable_bytes(std::span(data)).subspan(filled);
        result<std::size_t> n = co_await f->read_at(rest, filled);
        if (!n)
            co_return n.error();
        filled += *n;
        if (filled < data.size())
            break; // read_at stops short only at end of file
        data.resize(data.size() * 2);
    }
    data.resize(filled);
    co_return data;
}

std::string parent_directory(const std::string& path) {
    std::size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    if (slash == 0)
        return "/";
    return path.substr(0, slash);
}

/// fsync of a directory: makes a rename (or create/unlink) inside it durable.
task<result<void>> sync_directory(std::string dir) {
    result<file> opened = co_await file::open(std::move(dir), O_RDONLY | O_DIRECTORY);
    if (!opened)
        co_return opened.error();
    file d = std::move(*opened);
    result<void> synced = co_await d.fsync();
    result<void> closed = co_await d.close();
    if (!synced)
        co_return synced;
    co_return closed;
}

/// Creates/truncates `temp`, writes `*contents`, fsyncs (when asked) and closes it.
task<result<void>> write_temp(std::string temp, const std::string* contents,
                              write_file_options options) {
    result<file> opened =
        co_await file::open(std::move(temp), O_WRONLY | O_CREAT | O_TRUNC, options.mode);
    if (!opened)
        co_return opened.error();
    file f = std::move(*opened);
    result<std::size_t> written = co_await f.write_all_at(std::string_view(*contents), 0);
    result<void> synced;
    if (written && options.sync)
        synced = co_await f.fsync();
    result<void> closed = co_await f.close();
    if (!written)
        co_return written.error();
    if (!synced)
        co_return synced;
    if (!closed)
        co_return closed; // a close error after writes can mean lost data (NFS, quota)
    if (options.crash_before_rename)
        co_return make_error_code(fs_errc::simulated_crash);
    co_return result<void>();
}

struct copy_state {
    const file* m_src = nullptr; // the source (open for reading)
    const file* m_dst = nullptr; // the destination (open for writing)
    std::uint64_t m_size = 0;    // source size from statx: the pipelined part
    std::size_t m_chunk = 0;     // bytes per read/write
    std::uint64_t m_next = 0;    // next chunk offset to claim
    std::uint64_t m_copied = 0;  // bytes written so far
    std::error_code m_error;     // first failure: the other workers stop claiming chunks
};

/// One of the pipelined workers: claims the next chunk below m_size, reads it, writes it.
task<void> copy_worker(copy_state* st) {
    std::vector<std::byte> buffer(st->m_chunk);
    while (!st->m_error && st->m_next < st->m_size) {
        std::uint64_t offset = st->m_next;
        std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(st->m_chunk, st->m_size - offset));
        st->m_next += want;
        std::span<std::byte> chunk = std::span(buffer).first(want);
        result<std::size_t> got = co_await st->m_src->read_at(chunk, offset);
        if (!got) {
            st->m_error = got.error();
            co_return;
        }
        result<std::size_t> put = co_await st->m_dst->write_all_at(chunk.first(*got), offset);
        if (!put) {
            st->m_error = put.error();
            co_return;
        }
        st->m_copied += *got;
    }
}

/// After the pipelined part: whatever the source grew by since statx, copied sequentially.
task<result<void>> copy_tail(copy_state* st) {
    std::vector<std::byte> buffer(st->m_chunk);
    std::uint64_t offset = st->m_size;
    for (;;) {
        result<std::size_t> got = co_await st->m_src->read_at(std::span(buffer), offset);
        if (!got)
            co_return got.error();
        if (*got == 0)
            co_return result<void>();
        std::span<const std::byte> chunk = std::span(buffer).first(*got);
        result<std::size_t> put = co_await st->m_dst->write_all_at(chunk, offset);
        if (!put)
            co_return put.error();
        st->m_copied += *got;
        offset += *got;
    }
}

task<result<std::uint64_t>> copy_open_files(const file* src, const file* dst, std::uint64_t size,
                                            copy_file_options options) {
    copy_state st;
    st.m_src = src;
    st.m_dst = dst;
    st.m_size = size;
    st.m_chunk = std::max<std::size_t>(options.chunk_size, 1);
    std::uint64_t chunks = (size + st.m_chunk - 1) / st.m_chunk;
    std::uint64_t workers = std::min<std::uint64_t>(std::max(options.reads_in_flight, 1u), chunks);
    std::vector<task<void>> tasks;
    for (std::uint64_t i = 0; i < workers; ++i)
        tasks.push_back(copy_worker(&st));
    auto all = when_all(std::move(tasks));
    co_await all;
    if (st.m_error)
        co_return st.m_error;
    result<void> tail = co_await copy_tail(&st);
    if (!tail)
        co_return tail.error();
    co_return st.m_copied;
}

bool same_file(const file_status& a, const file_status& b) noexcept {
    return a.stx_ino == b.stx_ino && a.stx_dev_major == b.stx_dev_major &&
           a.stx_dev_minor == b.stx_dev_minor;
}

} // namespace

std::string atomic_temp_path(const std::string& path) {
    std::size_t slash = path.rfind('/');
    std::size_t name_start = slash == std::string::npos ? 0 : slash + 1;
    return path.substr(0, name_start) + "." + path.substr(name_start) + ".corio-tmp";
}

task<result<std::string>> read_file(std::string path) {
    result<file> opened = co_await file::open(std::move(path), O_RDONLY);
    if (!opened)
        co_return opened.error();
    file f = std::move(*opened);
    result<file_status> status = co_await f.statx(STATX_SIZE);
    result<std::string> data = std::errc::io_error;
    if (status)
        data = co_await read_to_end(&f, status->stx_size);
    else
        data = status.error();
    result<void> closed = co_await f.close(); // a read-only close cannot lose data: ignored
    (void)closed;
    co_return data;
}

task<result<void>> write_file_atomically(std::string path, std::string contents) {
    write_file_options options;
    result<void> r = co_await write_file_atomically(std::move(path), std::move(contents), options);
    co_return r;
}

task<result<void>> write_file_atomically(std::string path, std::string contents,
                                         write_file_options options) {
    std::string temp = atomic_temp_path(path);
    result<void> written = co_await write_temp(temp, &contents, options);
    if (!written) {
        if (written.error() != fs_errc::simulated_crash) {
            result<void> removed = co_await corio::unlink(temp);
            (void)removed; // best effort: the next write reclaims the name anyway
        }
        co_return written;
    }
    result<void> renamed = co_await corio::rename(temp, path);
    if (!renamed) {
        result<void> removed = co_await corio::unlink(temp);
        (void)removed;
        co_return renamed;
    }
    if (!options.sync)
        co_return result<void>();
    result<void> dir_synced = co_await sync_directory(parent_directory(path));
    co_return dir_synced;
}

task<result<std::uint64_t>> copy_file(std::string src, std::string dst) {
    copy_file_options options;
    result<std::uint64_t> r = co_await copy_file(std::move(src), std::move(dst), options);
    co_return r;
}

task<result<std::uint64_t>> copy_file(std::string src, std::string dst, copy_file_options options) {
    result<file> in_opened = co_await file::open(std::move(src), O_RDONLY);
    if (!in_opened)
        co_return in_opened.error();
    file in = std::move(*in_opened);
    result<file_status> in_status = co_await in.statx(STATX_SIZE | STATX_MODE | STATX_INO);
    if (!in_status)
        co_return in_status.error();
    result<file_status> dst_status = co_await stat_path(dst, STATX_INO);
    if (dst_status && same_file(*in_status, *dst_status))
        co_return std::errc::invalid_argument; // copying a file onto itself would truncate it
    result<file> out_opened =
        co_await file::create(std::move(dst), static_cast<mode_t>(in_status->stx_mode & 07777));
    if (!out_opened)
        co_return out_opened.error();
    file out = std::move(*out_opened);
    result<std::uint64_t> copied =
        co_await copy_open_files(&in, &out, in_status->stx_size, options);
    result<void> out_closed = co_await out.close();
    result<void> in_closed = co_await in.close();
    (void)in_closed;
    if (copied && !out_closed)
        co_return out_closed.error();
    co_return copied;
}

} // namespace corio

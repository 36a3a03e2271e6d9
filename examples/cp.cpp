// SPDX-License-Identifier: MIT
// cp: copy a file, or cat it to stdout, with every open, read, write and close going through
// io_uring on one thread. `cp SRC DST` uses corio::copy_file (several chunks in flight, each read
// then written at its offset); `cp SRC -` reads and writes in order at the file position, so
// stdout may be a pipe, a terminal or a file. Compare the loop in cat_to_stdout with the blocking
// `while ((n = read(in, buf, size)) > 0) write(1, buf, n);` it reads like.
// Try: build/debug/examples/cp README.md /tmp/readme.copy && cmp README.md /tmp/readme.copy
//      build/debug/examples/cp --chunk 4096 README.md - | head
#include <corio/corio.hpp>
#include "examples/common/cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace {

struct options {
    std::string src;                // the file to read
    std::string dst;                // the file to write, or "-" for stdout
    std::size_t chunk = 128 * 1024; // bytes per read
    unsigned in_flight = 4;         // chunks in flight for a file-to-file copy
};

// Each chunk in flight owns a buffer of --chunk bytes: bound both so a typo cannot ask for
// terabytes.
constexpr std::size_t k_max_chunk = std::size_t{1} << 30;
constexpr unsigned k_max_in_flight = 256;

options parse_args(int argc, char** argv) {
    options opts;
    cli::parser p("cp", "Copies SRC to DST (or to stdout with DST '-') through io_uring.");
    p.number("--chunk", opts.chunk, 1, k_max_chunk, "bytes per read").type("BYTES");
    p.number("--in-flight", opts.in_flight, 1, k_max_in_flight,
             "chunks in flight for a file-to-file copy");
    p.positional("SRC", opts.src, "the file to read");
    p.positional("DST", opts.dst, "the file to write, or - for stdout");
    p.parse(argc, argv);
    return opts;
}

/// `cat SRC`: read a chunk, write it to stdout, until end of file.
corio::task<corio::result<std::uint64_t>> cat_to_stdout(std::string src, std::size_t chunk) {
    corio::result<corio::file> opened = co_await corio::file::open(src);
    if (!opened)
        co_return opened.error();
    corio::file in = std::move(*opened);
    corio::file out(::dup(STDOUT_FILENO)); // our own descriptor: closing it leaves fd 1 alone
    std::vector<std::byte> buffer(chunk);
    std::uint64_t total = 0;
    for (;;) {
        corio::result<std::size_t> got = co_await in.read_some_at(buffer, total);
        if (!got)
            co_return got.error();
        if (*got == 0)
            break;
        corio::result<std::size_t> put = co_await out.write_all(std::span(buffer).first(*got));
        if (!put)
            co_return put.error();
        total += *got;
    }
    corio::result<void> closed = co_await out.close();
    if (!closed)
        co_return closed.error();
    co_return total;
}

corio::task<corio::result<std::uint64_t>> run(options opts) {
    if (opts.dst == "-") {
        corio::result<std::uint64_t> n = co_await cat_to_stdout(opts.src, opts.chunk);
        co_return n;
    }
    corio::copy_file_options copy;
    copy.chunk_size = opts.chunk;
    copy.reads_in_flight = opts.in_flight;
    corio::result<std::uint64_t> n = co_await corio::copy_file(opts.src, opts.dst, copy);
    co_return n;
}

} // namespace

int main(int argc, char** argv) {
    options opts = parse_args(argc, argv);
    corio::io_context ctx;
    corio::result<std::uint64_t> copied = corio::sync_wait(ctx, run(opts));
    if (!copied) {
        std::fprintf(stderr, "cp: %s -> %s: %s\n", opts.src.c_str(), opts.dst.c_str(),
                     copied.error().message().c_str());
        return 1;
    }
    if (opts.dst != "-")
        std::fprintf(stderr, "cp: %llu bytes copied\n", static_cast<unsigned long long>(*copied));
    return 0;
}

// SPDX-License-Identifier: MIT
// An LD_PRELOAD library that counts a server's heap allocations (malloc, calloc, realloc,
// aligned allocations; operator new goes through malloc) into a file another process can read
// at any moment: the load generator reads it at the start and the end of its measured window,
// so the harness reports heap allocations per request for every style alike.
// Use: CORIO_ALLOC_COUNTER=/path/file LD_PRELOAD=.../libcorio_alloc_counter.so server ...
// The file holds one native-endian uint64 (the count), created and zeroed here.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

// glibc's own entry points: calling them avoids dlsym(RTLD_NEXT), which itself allocates.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {

// Null until the constructor has mapped the file: allocations before that are not counted.
std::atomic<std::uint64_t>* g_count = nullptr;

inline void count_one() noexcept {
    if (g_count)
        g_count->fetch_add(1, std::memory_order_relaxed);
}

__attribute__((constructor)) void map_counter() {
    const char* path = std::getenv("CORIO_ALLOC_COUNTER");
    if (!path || !*path)
        return;
    int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (::ftruncate(fd, sizeof(std::uint64_t)) != 0) {
        ::close(fd);
        return;
    }
    void* page = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (page == MAP_FAILED)
        return;
    auto* counter = static_cast<std::atomic<std::uint64_t>*>(page);
    counter->store(0, std::memory_order_relaxed);
    g_count = counter;
}

} // namespace

extern "C" {

void* malloc(std::size_t n) {
    count_one();
    return __libc_malloc(n);
}

void* calloc(std::size_t count, std::size_t n) {
    count_one();
    return __libc_calloc(count, n);
}

void* realloc(void* p, std::size_t n) {
    count_one();
    return __libc_realloc(p, n);
}

void free(void* p) { __libc_free(p); }

void* memalign(std::size_t alignment, std::size_t n) {
    count_one();
    return __libc_memalign(alignment, n);
}

void* aligned_alloc(std::size_t alignment, std::size_t n) {
    count_one();
    return __libc_memalign(alignment, n);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0)
        return 22; // EINVAL
    count_one();
    void* p = __libc_memalign(alignment, n);
    if (!p)
        return 12; // ENOMEM
    *out = p;
    return 0;
}

} // extern "C"

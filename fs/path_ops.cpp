// SPDX-License-Identifier: MIT
// Directory listing on an offload worker: opendir/readdir, d_type with an fstatat fallback for
// filesystems that do not fill it.
#include <corio/fs/path_ops.hpp>

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace corio::fs_detail {

namespace {

file_type from_dirent_type(unsigned char d_type) noexcept {
    switch (d_type) {
    case DT_REG:
        return file_type::regular;
    case DT_DIR:
        return file_type::directory;
    case DT_LNK:
        return file_type::symlink;
    case DT_BLK:
        return file_type::block_device;
    case DT_CHR:
        return file_type::character_device;
    case DT_FIFO:
        return file_type::fifo;
    case DT_SOCK:
        return file_type::socket;
    default:
        return file_type::unknown;
    }
}

file_type from_mode(mode_t mode) noexcept {
    switch (mode & S_IFMT) {
    case S_IFREG:
        return file_type::regular;
    case S_IFDIR:
        return file_type::directory;
    case S_IFLNK:
        return file_type::symlink;
    case S_IFBLK:
        return file_type::block_device;
    case S_IFCHR:
        return file_type::character_device;
    case S_IFIFO:
        return file_type::fifo;
    case S_IFSOCK:
        return file_type::socket;
    default:
        return file_type::unknown;
    }
}

struct dir_closer {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

} // namespace

result<std::vector<directory_entry>> list_directory_job::operator()() const {
    std::unique_ptr<DIR, dir_closer> dir(::opendir(m_path.c_str()));
    if (!dir)
        return errno_code(errno);
    std::vector<directory_entry> entries;
    for (;;) {
        errno = 0;
        const dirent* ent = ::readdir(dir.get());
        if (ent == nullptr) {
            if (errno != 0)
                return errno_code(errno);
            break;
        }
        if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0)
            continue;
        file_type type = from_dirent_type(ent->d_type);
        struct stat st;
        if (type == file_type::unknown &&
            ::fstatat(::dirfd(dir.get()), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = from_mode(st.st_mode);
        entries.push_back({ent->d_name, type});
    }
    std::sort(entries.begin(), entries.end(),
              [](const directory_entry& a, const directory_entry& b) { return a.name < b.name; });
    return entries;
}

} // namespace corio::fs_detail

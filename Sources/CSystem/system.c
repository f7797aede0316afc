// System calls that Swift's Glibc module does not expose (GNU extensions).
#define _GNU_SOURCE
#include "CSystem.h"
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

int ocirpc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int ocirpc_mkstemp_cloexec(char *path_template) { return mkostemp(path_template, O_CLOEXEC); }

int ocirpc_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int ocirpc_thread_id(void) { return (int)gettid(); }

int ocirpc_processors_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

long ocirpc_filesystem_type(const char *path) {
    struct statfs status;
    return statfs(path, &status) == 0 ? (long)status.f_type : -1;
}

void ocirpc_release_free_memory(void) { malloc_trim(0); }

int ocirpc_map_allocations_from(size_t bytes) { return mallopt(M_MMAP_THRESHOLD, (int)bytes); }

long long ocirpc_heap_bytes_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (long long)(info.uordblks + info.hblkhd);
}

static int ofd_lock(int fd, long long offset, short type) {
    struct flock lock = {0};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = (off_t)offset;
    lock.l_len = 1;
    lock.l_pid = 0;
    return fcntl(fd, F_OFD_SETLK, &lock);
}

int ocirpc_ofd_trylock(int fd, long long offset) { return ofd_lock(fd, offset, F_WRLCK); }

const char *ocirpc_next_entry_name(DIR *directory) {
    struct dirent *entry = readdir(directory);
    return entry == NULL ? NULL : entry->d_name;
}

int ocirpc_ofd_unlock(int fd, long long offset) { return ofd_lock(fd, offset, F_UNLCK); }

// System calls that Swift's Glibc module does not expose.
#ifndef OCIRPC_CSYSTEM_H
#define OCIRPC_CSYSTEM_H

#include <dirent.h>
#include <spawn.h>

/// A pipe whose two ends are close-on-exec from the start (pipe2), so a
/// concurrent spawn cannot inherit them. 0 on success, -1 and errno else.
int ocirpc_pipe_cloexec(int fds[2]);

/// Creates and opens a new file from `path_template` (ending in XXXXXX,
/// replaced in place), close-on-exec from the start (mkostemp). The file
/// descriptor, or -1 and errno.
int ocirpc_mkstemp_cloexec(char *path_template);

/// Adds to `actions` the closing of every file descriptor from `from` on
/// (posix_spawn_file_actions_addclosefrom_np): a child gets the standard
/// streams it was given and nothing the parent happened to have open
/// (another child's pipe, a socket). 0, or an error number.
int ocirpc_spawn_close_from(posix_spawn_file_actions_t *actions, int from);

/// The type of the file system `path` is on (statfs's f_type, e.g.
/// 0x01021994 for tmpfs), or -1 and errno.
long ocirpc_filesystem_type(const char *path);

/// The calling thread's kernel id (gettid).
int ocirpc_thread_id(void);

/// The processors the calling thread may run on (sched_getaffinity's
/// CPU_COUNT), or the processors online when that cannot be read.
int ocirpc_processors_available(void);

/// Returns free heap pages to the system (malloc_trim).
void ocirpc_release_free_memory(void);

/// Makes malloc map every allocation of `bytes` or more on its own and
/// unmap it when freed, rather than raise that threshold as large blocks
/// are freed and keep them in its arenas (mallopt M_MMAP_THRESHOLD; at
/// most 32 MiB). 1 on success.
int ocirpc_map_allocations_from(size_t bytes);

/// Bytes malloc has handed out and not had back, over all arenas and
/// mmapped chunks (mallinfo2: uordblks + hblkhd).
long long ocirpc_heap_bytes_in_use(void);

/// Takes, without waiting, the open-file-description write lock on the
/// byte at `offset` of `fd` (F_OFD_SETLK): released by
/// ocirpc_ofd_unlock, by closing the file, or by the process dying. Locks
/// through one open file never exclude each other. 0, or -1 and errno
/// (EAGAIN or EACCES when another open file holds it).
int ocirpc_ofd_trylock(int fd, long long offset);

/// Releases the lock ocirpc_ofd_trylock took on the byte at `offset`.
int ocirpc_ofd_unlock(int fd, long long offset);

/// The name of the next entry `readdir` gives from `directory`, read where
/// it lies (NUL-terminated); NULL at the end or on an error. An entry is
/// only as long as its name: copying a whole `struct dirent` (as Swift's
/// `entry.pointee` does) reads past the last one in readdir's buffer.
const char *ocirpc_next_entry_name(DIR *directory);

/// The stack size a thread gets when its creator names none (libdispatch's
/// threads): `ulimit -s`, or glibc's default without one.
long long ocirpc_default_thread_stack_bytes(void);

/// Makes the stack a thread gets when its creator names none at least
/// `minimum` bytes (`pthread_setattr_default_np`); 0 on success.
int ocirpc_raise_default_thread_stack(long long minimum);

/// Raises the soft `RLIMIT_STACK` (how far the main thread's stack may
/// grow) to `minimum` bytes when lower, as far as the hard limit allows;
/// 0 on success or when nothing was to be done.
int ocirpc_raise_stack_limit(long long minimum);

/// Catches SIGTERM and SIGINT with a handler that only notes the signal
/// and posts a semaphore, so a session ends on them with no thread to
/// start (libdispatch's signal sources need one of its threads). Once per
/// process; 0 on success, -1 and errno else.
int ocirpc_termination_signals_install(void);

/// Posts the semaphore `ocirpc_termination_wait` waits on (the session
/// ended otherwise than by a signal).
void ocirpc_termination_wake(void);

/// Waits for a caught signal or a wake.
void ocirpc_termination_wait(void);

/// The signal caught since the last call, or 0.
int ocirpc_termination_take_signal(void);

/// ThreadSanitizer's annotations, defined when its runtime is linked in
/// (`swift build --sanitize thread`) and null otherwise.
extern void __tsan_acquire(void *address) __attribute__((weak));
extern void __tsan_release(void *address) __attribute__((weak));

/// Under ThreadSanitizer, what this thread wrote before is seen by the
/// thread that next calls ocirpc_sanitizer_acquire on `address`. Otherwise
/// nothing.
static inline void ocirpc_sanitizer_release(const void *address) {
    if (__tsan_release) __tsan_release((void *)address);
}

/// Under ThreadSanitizer, this thread sees what was written before the last
/// ocirpc_sanitizer_release on `address`. Otherwise nothing.
static inline void ocirpc_sanitizer_acquire(const void *address) {
    if (__tsan_acquire) __tsan_acquire((void *)address);
}

#endif

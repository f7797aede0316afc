// System calls that Swift's Glibc module does not expose (GNU extensions).
#define _GNU_SOURCE
#include "CSystem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
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

long long ocirpc_default_thread_stack_bytes(void) {
    pthread_attr_t attributes;
    size_t size = 0;
    if (pthread_getattr_default_np(&attributes) != 0) return -1;
    int got = pthread_attr_getstacksize(&attributes, &size);
    pthread_attr_destroy(&attributes);
    return got == 0 ? (long long)size : -1;
}

int ocirpc_raise_default_thread_stack(long long minimum) {
    pthread_attr_t attributes;
    size_t size = 0;
    if (pthread_getattr_default_np(&attributes) != 0) return -1;
    int result = pthread_attr_getstacksize(&attributes, &size);
    if (result == 0 && (long long)size < minimum) {
        result = pthread_attr_setstacksize(&attributes, (size_t)minimum);
        if (result == 0) result = pthread_setattr_default_np(&attributes);
    }
    pthread_attr_destroy(&attributes);
    return result == 0 ? 0 : -1;
}

int ocirpc_raise_stack_limit(long long minimum) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_STACK, &limit) != 0) return -1;
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= (rlim_t)minimum) return 0;
    int capped = limit.rlim_max != RLIM_INFINITY && limit.rlim_max < (rlim_t)minimum;
    limit.rlim_cur = capped ? limit.rlim_max : (rlim_t)minimum;
    return setrlimit(RLIMIT_STACK, &limit);
}

static sem_t termination_semaphore;
static atomic_int termination_signal;

static void on_termination_signal(int number) {
    int saved = errno;
    atomic_store(&termination_signal, number);
    sem_post(&termination_semaphore);
    errno = saved;
}

int ocirpc_termination_signals_install(void) {
    static atomic_int installed;
    if (atomic_exchange(&installed, 1)) return 0;
    if (sem_init(&termination_semaphore, 0, 0) != 0) return -1;
    struct sigaction action = {0};
    action.sa_handler = on_termination_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0) return -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

void ocirpc_termination_wake(void) { sem_post(&termination_semaphore); }

void ocirpc_termination_wait(void) {
    while (sem_wait(&termination_semaphore) != 0 && errno == EINTR) {}
}

int ocirpc_termination_take_signal(void) { return atomic_exchange(&termination_signal, 0); }

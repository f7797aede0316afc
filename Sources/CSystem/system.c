// System calls that Swift's Glibc module does not expose (GNU extensions).
#define _GNU_SOURCE
#include "CSystem.h"
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

int ocirpc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

void ocirpc_release_free_memory(void) { malloc_trim(0); }

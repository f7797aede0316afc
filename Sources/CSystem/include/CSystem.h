// System calls that Swift's Glibc module does not expose.
#ifndef OCIRPC_CSYSTEM_H
#define OCIRPC_CSYSTEM_H

/// A pipe whose two ends are close-on-exec from the start (pipe2), so a
/// concurrent spawn cannot inherit them. 0 on success, -1 and errno else.
int ocirpc_pipe_cloexec(int fds[2]);

/// Returns free heap pages to the system (malloc_trim).
void ocirpc_release_free_memory(void);

#endif

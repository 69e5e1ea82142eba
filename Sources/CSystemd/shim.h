#ifndef TOKEN_BROKER_CSYSTEMD_SHIM_H
#define TOKEN_BROKER_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* memfd_create(2) through syscall(2): its libc declaration needs _GNU_SOURCE, which a module
   header cannot count on. Used for the token handover in systemd's file-descriptor store. */
static inline int tb_memfd_create(const char *name, unsigned int flags) {
  return (int)syscall(SYS_memfd_create, name, flags);
}

#endif

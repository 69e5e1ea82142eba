#ifndef TOKEN_BROKER_CLIBC_EXTRAS_H
#define TOKEN_BROKER_CLIBC_EXTRAS_H

#include <spawn.h>
#include <stddef.h>

/* What Swift's Glibc module does not declare. */

/* malloc_trim(3): give the memory malloc holds free back to the system. */
int tb_malloc_trim(size_t pad);

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34): the child closes every descriptor
   from `from` up, so it inherits nothing the spawning process did not hand it on purpose. */
int tb_posix_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif

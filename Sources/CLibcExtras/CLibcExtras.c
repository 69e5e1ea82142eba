#define _GNU_SOURCE
#include "CLibcExtras.h"

#include <malloc.h>
#include <spawn.h>

int tb_malloc_trim(size_t pad) { return malloc_trim(pad); }

int tb_posix_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
  return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

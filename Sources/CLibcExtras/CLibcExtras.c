#include "CLibcExtras.h"

#include <malloc.h>

int tb_malloc_trim(size_t pad) { return malloc_trim(pad); }

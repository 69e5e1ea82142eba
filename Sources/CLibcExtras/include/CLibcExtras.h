#ifndef TOKEN_BROKER_CLIBC_EXTRAS_H
#define TOKEN_BROKER_CLIBC_EXTRAS_H

#include <stddef.h>

/* What Swift's Glibc module does not declare. */

/* malloc_trim(3): give the memory malloc holds free back to the system. */
int tb_malloc_trim(size_t pad);

#endif

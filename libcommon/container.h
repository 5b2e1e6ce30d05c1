/* container.h: container_of, so a libev watcher embedded in a struct finds
 * its owner without a data pointer or an extra allocation. */
#ifndef CG_CONTAINER_H
#define CG_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif

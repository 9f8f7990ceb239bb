/* Internal: the number of elements of an array (not of a pointer). */
#ifndef SHMRT_ARRAY_SIZE_H
#define SHMRT_ARRAY_SIZE_H

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif

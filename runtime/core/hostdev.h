/* Internal: marks inline helpers that the CPU kernels and the CUDA kernels
 * (compiled by nvcc) share, so that both backends use one definition. */
#ifndef SHMRT_HOSTDEV_H
#define SHMRT_HOSTDEV_H

#ifdef __CUDACC__
#define SHMRT_HD __host__ __device__ __forceinline__
#else
#define SHMRT_HD inline
#endif

#endif

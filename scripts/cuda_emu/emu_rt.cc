/* The emulator's scheduler (emu.h) and the CUDA runtime and cuBLASLt entry
 * points kernels/cuda calls, on host memory: one device of compute
 * capability 9.0 with SHMRT_EMU_SMS multiprocessors (default 132, which
 * sets how many splits decode attention makes), no cuBLASLt (its plans
 * fail, so the matmul picks among our own kernels). */
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cublasLt.h>

#include "emu.h"
#include "mma.h"

uint3 emu_tid, emu_bid;
dim3 emu_bdim, emu_gdim;
unsigned long long emu_xbuf[32][32];
namespace nvcuda { namespace wmma { float emu_mma_buf[32][3][256]; } }

// A minimal x86-64 context switch (callee-saved registers and the stack
// pointer): swapcontext's signal-mask system calls made the emulation slow.
extern "C" void emu_switch(void **from_sp, void *to_sp);
asm(R"(
.text
.globl emu_switch
emu_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
)");
static void *sched_sp;
static std::vector<void *> ctxs;
static std::vector<char *> stacks;
static std::vector<int> done;
static int cur, nthreads;
static std::function<void()> *cur_fn;
static int bar_count, bar_gen, wcount[32], wgen[32];
static const size_t STACK = 256 << 10;

static void yield_() { emu_switch(&ctxs[cur], sched_sp); }
static void set_tid() { emu_tid = make_uint3(cur, 0, 0); }

void emu_barrier_block()
{
	int g = bar_gen;
	if (++bar_count == nthreads) { bar_count = 0; bar_gen++; return; }
	while (bar_gen == g) { yield_(); set_tid(); }
}
void emu_barrier_warp()
{
	int w = cur / 32, g = wgen[w], n = std::min(32, nthreads - w * 32);
	if (++wcount[w] == n) { wcount[w] = 0; wgen[w]++; return; }
	while (wgen[w] == g) { yield_(); set_tid(); }
}
unsigned char *emu_dyn_smem()
{
	static unsigned char buf[256 << 10] __attribute__((aligned(128)));
	return buf;
}
static void entry()
{
	set_tid();
	(*cur_fn)();
	done[cur] = 1;
	void *dead;
	emu_switch(&dead, sched_sp);
}

void emu_launch(std::function<void()> fn, dim3 grid, dim3 block, size_t, cudaStream_t)
{
	nthreads = block.x * block.y * block.z;
	if (nthreads % 32) { fprintf(stderr, "emu: block of %d threads\n", nthreads); abort(); }
	emu_gdim = grid, emu_bdim = block;
	cur_fn = &fn;
	ctxs.resize(nthreads); done.assign(nthreads, 0);
	while ((int)stacks.size() < nthreads) stacks.push_back((char *)malloc(STACK));
	for (unsigned z = 0; z < grid.z; z++)
		for (unsigned y = 0; y < grid.y; y++)
			for (unsigned x = 0; x < grid.x; x++) {
				emu_bid = make_uint3(x, y, z);
				bar_count = 0; memset(wcount, 0, sizeof(wcount));
				for (int t = 0; t < nthreads; t++) {
					done[t] = 0;
					void **sp = (void **)(stacks[t] + STACK - 64);
					*--sp = 0; /* so that rsp % 16 == 8 on entry, as after a call */
					*--sp = (void *)entry;
					for (int r = 0; r < 6; r++)
						*--sp = 0;
					ctxs[t] = sp;
				}
				for (int left = nthreads; left;) {
					left = 0;
					for (cur = 0; cur < nthreads; cur++)
						if (!done[cur]) {
							emu_switch(&sched_sp, ctxs[cur]);
							left += !done[cur];
						}
				}
			}
}

extern "C" {
cudaError_t cudaMalloc(void **p, size_t n) { *p = aligned_alloc(256, (n + 255) / 256 * 256); memset(*p, 0xcd, n); return cudaSuccess; }
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, cudaMemcpyKind,
			      cudaStream_t)
{
	for (size_t r = 0; r < h; r++)
		memmove((char *)d + r * dp, (const char *)s + r * sp, w);
	return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int)
{
	*v = a == cudaDevAttrComputeCapabilityMajor ? 9 : a == cudaDevAttrMultiProcessorCount ? atoi(getenv("SHMRT_EMU_SMS") ? getenv("SHMRT_EMU_SMS") : "132")
	   : a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? 232448 : 0;
	return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t) { return "emu error"; }
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *) { memset(a, 0, sizeof(*a)); a->type = cudaMemoryTypeUnregistered; return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (cudaEvent_t)malloc(8); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = (float)(rand() % 100); return cudaSuccess; }
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus *s) { *s = cudaStreamCaptureStatusNone; return cudaSuccess; }
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *) { memset(a, 0, sizeof(*a)); return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) { return cudaSuccess; }
cublasStatus_t cublasLtCreate(cublasLtHandle_t *) { return CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }
}
extern "C" {
#define STUB(name, ...) cublasStatus_t name(__VA_ARGS__) { return CUBLAS_STATUS_NOT_SUPPORTED; }
STUB(cublasLtMatrixLayoutDestroy, cublasLtMatrixLayout_t)
STUB(cublasLtMatmulDescDestroy, cublasLtMatmulDesc_t)
STUB(cublasLtMatmulDescCreate, cublasLtMatmulDesc_t *, cublasComputeType_t, cudaDataType_t)
STUB(cublasLtMatmulDescSetAttribute, cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void *, size_t)
STUB(cublasLtMatrixLayoutCreate, cublasLtMatrixLayout_t *, cudaDataType, uint64_t, uint64_t, int64_t)
STUB(cublasLtMatmulPreferenceCreate, cublasLtMatmulPreference_t *)
STUB(cublasLtMatmulPreferenceSetAttribute, cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void *, size_t)
STUB(cublasLtMatmulPreferenceDestroy, cublasLtMatmulPreference_t)
STUB(cublasLtMatmulAlgoGetHeuristic, cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
     cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *, int *)
STUB(cublasLtMatmul, cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *, cublasLtMatrixLayout_t, const void *,
     cublasLtMatrixLayout_t, const void *, const void *, cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,
     const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t)
const char *cublasLtGetStatusString(cublasStatus_t) { return "emu"; }
}

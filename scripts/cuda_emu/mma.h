/* WMMA emulation for scripts/cuda_emu (emu.h): lane l holds elements
 * l*8 .. l*8+7 of a 16x16 tile in row-major order (not the hardware layout,
 * which WMMA leaves unspecified and kernels must not rely on). */
#pragma once
#include <type_traits>

#include "emu.h"
namespace nvcuda { namespace wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class L = void> struct fragment {
	enum { num_elements = 8 };
	T x[8];
};
extern float emu_mma_buf[32][3][256];
template <class T> static float emu_f(T v) { return (float)v; }
static inline float emu_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class Use, class T, class L> static void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm)
{
	int lane = threadIdx.x % 32;
	for (int i = 0; i < 8; i++) {
		int e = lane * 8 + i, r = e / 16, c = e % 16;
		f.x[i] = std::is_same<L, col_major>::value ? p[c * ldm + r] : p[r * ldm + c];
	}
}
template <class T> static void load_matrix_sync(fragment<accumulator, 16, 16, 16, T> &f, const T *p, unsigned ldm, layout_t l)
{
	int lane = threadIdx.x % 32;
	for (int i = 0; i < 8; i++) {
		int e = lane * 8 + i, r = e / 16, c = e % 16;
		f.x[i] = l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
	}
}
template <class T> static void store_matrix_sync(T *p, const fragment<accumulator, 16, 16, 16, T> &f, unsigned ldm, layout_t l)
{
	int lane = threadIdx.x % 32;
	for (int i = 0; i < 8; i++) {
		int e = lane * 8 + i, r = e / 16, c = e % 16;
		(l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[i];
	}
}
template <class F, class T> static void fill_fragment(F &f, T v) { for (int i = 0; i < 8; i++) f.x[i] = v; }
template <class LA, class LB>
static void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
		     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c)
{
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	float (*buf)[256] = emu_mma_buf[warp];
	for (int i = 0; i < 8; i++) {
		buf[0][lane * 8 + i] = emu_f(a.x[i]);
		buf[1][lane * 8 + i] = emu_f(b.x[i]);
		buf[2][lane * 8 + i] = c.x[i];
	}
	emu_barrier_warp();
	float out[8];
	for (int i = 0; i < 8; i++) {
		int e = lane * 8 + i, r = e / 16, col = e % 16;
		float s = buf[2][e];
		for (int k = 0; k < 16; k++)
			s += buf[0][r * 16 + k] * buf[1][k * 16 + col];
		out[i] = s;
	}
	emu_barrier_warp();
	for (int i = 0; i < 8; i++) d.x[i] = out[i];
}
}}

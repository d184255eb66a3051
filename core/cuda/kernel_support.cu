// The shared host side of the CUDA kernel families (core/cuda/kernel_support.h).
#include "core/cuda/kernel_support.h"

#include <array>
#include <climits>
#include <cstdio>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/kernels.h"

namespace loom::cuda::detail {
namespace {

[[noreturn]] void fail(const char* kernel, const std::string& what) {
  throw Error(std::string(kernel) + ": " + what);
}

std::string pointer_str(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace

KernelCall::KernelCall(const char* kernel, std::initializer_list<NamedTensor> tensors)
    : kernel_(kernel) {
  const NamedTensor* first = nullptr;
  for (const NamedTensor& t : tensors) {
    if (t.tensor.data() == nullptr) continue;
    if (first == nullptr) first = &t;
  }
  LOOM_ASSERT(first != nullptr, "a CUDA kernel call without tensors");
  const Device device = first->tensor.device();
  device_ = device.index;
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) {
    (void)cudaGetLastError();
    visible = 0;
  }
  if (device_ < 0 || device_ >= visible)
    fail(kernel, "the tensors are on " + device.str() + " but this process sees " +
                     std::to_string(visible) +
                     " CUDA device(s) (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it); "
                     "keep the model on the CPU or run where the GPU is visible");
  for (const NamedTensor& t : tensors) {
    if (t.tensor.data() == nullptr) continue;
    cudaPointerAttributes attr{};
    LOOM_CUDA_CHECK(cudaPointerGetAttributes(&attr, t.tensor.data()));
    const bool on_device =
        (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) &&
        attr.device == device_;
    if (!on_device)
      fail(kernel, "the tensors are on " + device.str() + " but " + t.name + "'s memory (" +
                       pointer_str(t.tensor.data()) + ") is " +
                       (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged
                            ? "memory of cuda:" + std::to_string(attr.device)
                            : std::string("host memory")) +
                       "; allocate it with Buffer(bytes, " + device.str() + ")");
  }
  for (const NamedTensor& t : tensors)
    if (t.tensor.data() != nullptr && t.tensor.dtype() == DType::kF64)
      fail(kernel, std::string(t.name) + " is f64 but the CUDA kernels take f32 only (f64 is "
                                         "for the CPU reference and its gradient checks); "
                                         "keep f64 tensors on the CPU");
  LOOM_CUDA_CHECK(cudaGetDevice(&previous_device_));
  if (previous_device_ != device_) LOOM_CUDA_CHECK(cudaSetDevice(device_));
  stream_ = static_cast<cudaStream_t>(cuda_current_stream(device_));
}

KernelCall::~KernelCall() {
  if (previous_device_ >= 0 && previous_device_ != device_) (void)cudaSetDevice(previous_device_);
}

// ---- range checks (Note [Range checks on the GPU]) -----------------------------------

namespace {

constexpr unsigned long long kNoBadId = ULLONG_MAX;
__device__ unsigned long long g_first_bad_id = kNoBadId;

__global__ void find_first_bad_id(const int32_t* ids, int64_t count, int64_t limit,
                                  int64_t allowed) {
  for (int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; n < count;
       n += int64_t(gridDim.x) * blockDim.x) {
    const int32_t id = ids[n];
    if ((id >= 0 && id < limit) || int64_t(id) == allowed) continue;
    atomicMin(&g_first_bad_id, static_cast<unsigned long long>(n));
  }
}

}  // namespace

BadId first_bad_id(const KernelCall& call, const int32_t* ids, int64_t count, int64_t limit,
                   int64_t allowed) {
  BadId bad;
  if (count == 0) return bad;
  constexpr int kThreads = 256;
  find_first_bad_id<<<blocks_for(count, kThreads), kThreads, 0, call.stream()>>>(
      ids, count, limit, allowed);
  LOOM_CUDA_CHECK_LAUNCH("find_first_bad_id");
  unsigned long long first = kNoBadId;
  LOOM_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&first, g_first_bad_id, sizeof first, 0,
                                            cudaMemcpyDeviceToHost, call.stream()));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(call.stream()));
  if (first == kNoBadId) return bad;
  bad.index = static_cast<int64_t>(first);
  LOOM_CUDA_CHECK(cudaMemcpyAsync(&bad.value, ids + bad.index, sizeof bad.value,
                                  cudaMemcpyDeviceToHost, call.stream()));
  static const unsigned long long reset = kNoBadId;   // static: outlives the async copy
  LOOM_CUDA_CHECK(cudaMemcpyToSymbolAsync(g_first_bad_id, &reset, sizeof reset, 0,
                                          cudaMemcpyHostToDevice, call.stream()));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(call.stream()));
  return bad;
}

// ---- cuBLAS -------------------------------------------------------------------------

namespace {
constexpr int kMaxDevices = 64;
thread_local std::array<cublasHandle_t, kMaxDevices> cublas_handles{};

int blas_dim(const KernelCall& call, int64_t v) {
  if (v > INT_MAX)
    fail(call.kernel(), "GEMM dimension " + std::to_string(v) +
                            " exceeds cuBLAS's int range; split the call");
  return static_cast<int>(v);
}
}  // namespace

cublasHandle_t cublas_handle(const KernelCall& call) {
  LOOM_ASSERT(call.device() >= 0 && call.device() < kMaxDevices, "CUDA device index");
  cublasHandle_t& handle = cublas_handles[size_t(call.device())];
  if (handle == nullptr) LOOM_CUBLAS_CHECK(cublasCreate(&handle));
  LOOM_CUBLAS_CHECK(cublasSetStream(handle, call.stream()));
  return handle;
}

cublasComputeType_t fp32_compute_type() {
  switch (cuda_matmul()) {
    case CudaMatmul::kTf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case CudaMatmul::kBf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case CudaMatmul::kFp32: break;
  }
  return CUBLAS_COMPUTE_32F;
}

void gemm(const KernelCall& call, const Gemm& g) {
  if (g.m == 0 || g.n == 0) return;
  cublasHandle_t handle = cublas_handle(call);
  // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands and
  // the sizes m and n, keep the transpose flags.
  const cublasOperation_t op_a = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = blas_dim(call, g.n), n = blas_dim(call, g.m), k = blas_dim(call, g.k);
  const int lda = blas_dim(call, g.ldb), ldb = blas_dim(call, g.lda), ldc = blas_dim(call, g.ldc);
  if (g.batch == 1) {
    LOOM_CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, m, n, k, &g.alpha, g.b, CUDA_R_32F, lda,
                                   g.a, CUDA_R_32F, ldb, &g.beta, g.c, CUDA_R_32F, ldc,
                                   fp32_compute_type(), CUBLAS_GEMM_DEFAULT));
  } else {
    LOOM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle, op_b, op_a, m, n, k, &g.alpha, g.b, CUDA_R_32F, lda, g.stride_b, g.a,
        CUDA_R_32F, ldb, g.stride_a, &g.beta, g.c, CUDA_R_32F, ldc, g.stride_c,
        blas_dim(call, g.batch), fp32_compute_type(), CUBLAS_GEMM_DEFAULT));
  }
}

unsigned blocks_for(int64_t n, int threads) {
  // Grid-stride loops cover any n; more than ~64k blocks of 256 buys nothing.
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

}  // namespace loom::cuda::detail

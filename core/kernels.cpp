// The dispatch points of core/kernels.h: one per family. Each checks its arguments once
// (Note [Kernel contract]) and hands them to the backend the tensors' device names. The
// backends (core/kernels_cpu.cpp, core/cuda/<family>.cu) may then assume valid arguments.
#include "core/kernels.h"

#include <atomic>
#include <cmath>
#include <initializer_list>
#include <string>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"
#include "core/kernels_cuda.h"

#include <omp.h>

namespace loom {
namespace {

// One argument of a kernel call, for the checks and their messages.
struct Arg {
  const char* name;
  Tensor tensor;
  bool optional = false;
};

bool present(const Tensor& t) { return t.data() != nullptr; }

[[noreturn]] void fail(const char* kernel, const std::string& what) {
  throw Error(std::string(kernel) + ": " + what);
}

// Every present tensor on one device with one floating dtype; required ones present.
// Returns whether the call goes to CUDA.
bool check_args(const char* kernel, std::initializer_list<Arg> args) {
  const Arg* first = nullptr;
  for (const Arg& a : args) {
    if (!present(a.tensor)) {
      if (!a.optional) fail(kernel, std::string("argument '") + a.name + "' is missing");
      continue;
    }
    if (first == nullptr) {
      first = &a;
      DType d = a.tensor.dtype();
      if (d != DType::kF32 && d != DType::kF64)
        fail(kernel, std::string(a.name) + " has dtype " + dtype_name(d) +
                         "; kernels take f32 or f64");
      continue;
    }
    if (!(a.tensor.device() == first->tensor.device()))
      fail(kernel, std::string("all tensors must be on one device: ") + first->name + " is on " +
                       first->tensor.device().str() + ", " + a.name + " on " +
                       a.tensor.device().str());
    if (a.tensor.dtype() != first->tensor.dtype())
      fail(kernel, std::string("all tensors must have one dtype: ") + first->name + " is " +
                       dtype_name(first->tensor.dtype()) + ", " + a.name + " is " +
                       dtype_name(a.tensor.dtype()));
  }
  LOOM_ASSERT(first != nullptr, "a kernel call without tensors");
  return first->tensor.device().is_cuda();
}

// Integer arguments (token ids, targets, masks): i32, on the device of `ref` (a floating
// argument already checked by check_args); required ones present.
void check_int_args(const char* kernel, const Arg& ref, std::initializer_list<Arg> args) {
  for (const Arg& a : args) {
    if (!present(a.tensor)) {
      if (!a.optional) fail(kernel, std::string("argument '") + a.name + "' is missing");
      continue;
    }
    if (a.tensor.dtype() != DType::kI32)
      fail(kernel, std::string(a.name) + " has dtype " + dtype_name(a.tensor.dtype()) +
                       "; integer arguments are i32");
    if (!(a.tensor.device() == ref.tensor.device()))
      fail(kernel, std::string("all tensors must be on one device: ") + ref.name + " is on " +
                       ref.tensor.device().str() + ", " + a.name + " on " +
                       a.tensor.device().str());
  }
}

[[noreturn]] void bad_shape(const char* kernel, const char* name, const Tensor& t,
                            const std::string& want) {
  fail(kernel, std::string(name) + " must be " + want + "; got " + t.shape().str());
}

int64_t last_dim(const Tensor& t) { return t.shape().rank() == 0 ? 1 : t.shape()[t.shape().rank() - 1]; }

// The product of all but the last dimension: N of (..., X).
int64_t rows(const Tensor& t) {
  int64_t n = 1;
  for (int i = 0; i + 1 < t.shape().rank(); ++i) n *= t.shape()[i];
  return n;
}

// a (..., X) and b (..., Y) with the same leading dimensions.
bool same_rows(const Tensor& a, const Tensor& b) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (sa.rank() != sb.rank() || sa.rank() < 1) return false;
  for (int i = 0; i + 1 < sa.rank(); ++i)
    if (sa[i] != sb[i]) return false;
  return true;
}

std::string dims(std::initializer_list<int64_t> d) { return Shape(d).str(); }

// Shared by linear_forward and linear_backward: in (N, I), weight (O, I), and the
// (N, O) tensor `rows_o` (out or dout); bias-like (O) optional.
void check_linear_shapes(const char* kernel, const Tensor& rows_o, const char* rows_o_name,
                         const Tensor& in, const Tensor& weight, const Tensor& bias,
                         const char* bias_name) {
  if (weight.shape().rank() != 2) bad_shape(kernel, "weight", weight, "(O, I)");
  const int64_t O = weight.shape()[0], I = weight.shape()[1];
  if (in.shape().rank() < 1 || last_dim(in) != I)
    bad_shape(kernel, "in", in, "(N, I) with I = " + std::to_string(I));
  if (!same_rows(rows_o, in) || last_dim(rows_o) != O)
    bad_shape(kernel, rows_o_name, rows_o,
              "in's leading dimensions followed by O = " + std::to_string(O));
  if (present(bias) && !(bias.shape() == Shape{O})) bad_shape(kernel, bias_name, bias, dims({O}));
}

}  // namespace

void set_kernel_threads(int threads) {
  LOOM_ASSERT(threads >= 1, "set_kernel_threads: threads < 1");
  omp_set_num_threads(threads);
  cpu::detail::set_blas_threads(threads);
}

namespace {
std::atomic<CudaMatmul> matmul_precision{CudaMatmul::kFp32};
}  // namespace

void set_cuda_matmul(CudaMatmul precision) { matmul_precision.store(precision, std::memory_order_relaxed); }
CudaMatmul cuda_matmul() { return matmul_precision.load(std::memory_order_relaxed); }
void set_cuda_tf32(bool enabled) { set_cuda_matmul(enabled ? CudaMatmul::kTf32 : CudaMatmul::kFp32); }
bool cuda_tf32() { return cuda_matmul() == CudaMatmul::kTf32; }

// ---- linear -------------------------------------------------------------------------

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias) {
  const char* k = "linear_forward";
  bool cuda = check_args(k, {{"out", out}, {"in", in}, {"weight", weight}, {"bias", bias, true}});
  check_linear_shapes(k, out, "out", in, weight, bias, "bias");
  if (cuda) return cuda::linear_forward(out, in, weight, bias);
  cpu::linear_forward(out, in, weight, bias);
}

void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight) {
  const char* k = "linear_backward";
  bool cuda = check_args(k, {{"din", din, true}, {"dweight", dweight}, {"dbias", dbias, true},
                             {"dout", dout}, {"in", in}, {"weight", weight}});
  check_linear_shapes(k, dout, "dout", in, weight, dbias, "dbias");
  if (!(dweight.shape() == weight.shape()))
    bad_shape(k, "dweight", dweight, "weight's shape " + weight.shape().str());
  if (present(din) && !(din.shape() == in.shape()))
    bad_shape(k, "din", din, "in's shape " + in.shape().str());
  if (cuda) return cuda::linear_backward(din, dweight, dbias, dout, in, weight);
  cpu::linear_backward(din, dweight, dbias, dout, in, weight);
}

// ---- squared error ------------------------------------------------------------------

namespace {
void check_squared_error_shapes(const char* kernel, const Tensor& pred, const Tensor& target) {
  if (pred.shape().rank() < 1) bad_shape(kernel, "pred", pred, "(N, K)");
  if (!(target.shape() == pred.shape()))
    bad_shape(kernel, "target", target, "pred's shape " + pred.shape().str());
}
}  // namespace

void squared_error_forward(Tensor loss, Tensor pred, Tensor target) {
  const char* k = "squared_error_forward";
  bool cuda = check_args(k, {{"loss", loss}, {"pred", pred}, {"target", target}});
  check_squared_error_shapes(k, pred, target);
  const int64_t N = rows(pred);
  if (!(loss.shape() == Shape{N})) bad_shape(k, "loss", loss, dims({N}));
  if (cuda) return cuda::squared_error_forward(loss, pred, target);
  cpu::squared_error_forward(loss, pred, target);
}

void squared_error_backward(Tensor dpred, Tensor pred, Tensor target) {
  const char* k = "squared_error_backward";
  bool cuda = check_args(k, {{"dpred", dpred}, {"pred", pred}, {"target", target}});
  check_squared_error_shapes(k, pred, target);
  if (!(dpred.shape() == pred.shape()))
    bad_shape(k, "dpred", dpred, "pred's shape " + pred.shape().str());
  if (cuda) return cuda::squared_error_backward(dpred, pred, target);
  cpu::squared_error_backward(dpred, pred, target);
}

// ---- transformer families -----------------------------------------------------------

namespace {

// A per-row vector of `x` (..., X): shape (N) or x's leading dimensions.
bool is_row_vector(const Tensor& t, const Tensor& x) {
  if (t.shape() == Shape{rows(x)}) return true;
  const Shape& st = t.shape();
  const Shape& sx = x.shape();
  if (st.rank() + 1 != sx.rank()) return false;
  for (int i = 0; i < st.rank(); ++i)
    if (st[i] != sx[i]) return false;
  return true;
}

void check_same_shape(const char* kernel, const char* name, const Tensor& t,
                      const char* like_name, const Tensor& like) {
  if (!(t.shape() == like.shape()))
    bad_shape(kernel, name, t, std::string(like_name) + "'s shape " + like.shape().str());
}

// tokens (B, T) [segments (B, T)] against a table (X, C) and the (B, T, C) tensor `btc`.
void check_embedding_shapes(const char* kernel, const Tensor& btc, const char* btc_name,
                            const Tensor& tokens, const Tensor& segments, const Tensor& wte,
                            const Tensor& wpe, const Tensor& wse, const char* wse_name) {
  if (tokens.shape().rank() != 2) bad_shape(kernel, "tokens", tokens, "(B, T)");
  const int64_t B = tokens.shape()[0], T = tokens.shape()[1];
  if (wte.shape().rank() != 2) bad_shape(kernel, "wte", wte, "(V, C)");
  const int64_t C = wte.shape()[1];
  if (!(btc.shape() == Shape{B, T, C})) bad_shape(kernel, btc_name, btc, dims({B, T, C}));
  if (wpe.shape().rank() != 2 || wpe.shape()[0] < T || wpe.shape()[1] != C)
    bad_shape(kernel, "wpe", wpe, "(P, " + std::to_string(C) + ") with P >= T = " +
                                      std::to_string(T));
  if (present(segments) != present(wse))
    fail(kernel, std::string("segments and ") + wse_name +
                     " come together: pass both or neither");
  if (!present(segments)) return;
  if (!(segments.shape() == tokens.shape()))
    bad_shape(kernel, "segments", segments, "tokens' shape " + tokens.shape().str());
  if (wse.shape().rank() != 2 || wse.shape()[1] != C)
    bad_shape(kernel, wse_name, wse, "(S, " + std::to_string(C) + ")");
}

}  // namespace

void embedding_forward(Tensor out, Tensor tokens, Tensor segments, Tensor wte, Tensor wpe,
                       Tensor wse) {
  const char* k = "embedding_forward";
  bool cuda = check_args(k, {{"out", out}, {"wte", wte}, {"wpe", wpe}, {"wse", wse, true}});
  check_int_args(k, {"out", out}, {{"tokens", tokens}, {"segments", segments, true}});
  check_embedding_shapes(k, out, "out", tokens, segments, wte, wpe, wse, "wse");
  if (cuda) return cuda::embedding_forward(out, tokens, segments, wte, wpe, wse);
  cpu::embedding_forward(out, tokens, segments, wte, wpe, wse);
}

void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dwse, Tensor dout, Tensor tokens,
                        Tensor segments) {
  const char* k = "embedding_backward";
  bool cuda = check_args(k, {{"dwte", dwte}, {"dwpe", dwpe}, {"dwse", dwse, true},
                             {"dout", dout}});
  check_int_args(k, {"dout", dout}, {{"tokens", tokens}, {"segments", segments, true}});
  check_embedding_shapes(k, dout, "dout", tokens, segments, dwte, dwpe, dwse, "dwse");
  if (cuda) return cuda::embedding_backward(dwte, dwpe, dwse, dout, tokens, segments);
  cpu::embedding_backward(dwte, dwpe, dwse, dout, tokens, segments);
}

namespace {
// in (N, C); weight (C); bias-like (C) optional; mean, rstd per row.
void check_layernorm_shapes(const char* kernel, const Tensor& in, const Tensor& weight,
                            const Tensor& bias, const char* bias_name, const Tensor& mean,
                            const Tensor& rstd) {
  if (in.shape().rank() < 1) bad_shape(kernel, "in", in, "(N, C)");
  const int64_t C = last_dim(in);
  if (!(weight.shape() == Shape{C})) bad_shape(kernel, "weight", weight, dims({C}));
  if (present(bias) && !(bias.shape() == Shape{C})) bad_shape(kernel, bias_name, bias, dims({C}));
  const std::string per_row = "one value per row of in " + in.shape().str();
  if (!is_row_vector(mean, in)) bad_shape(kernel, "mean", mean, per_row);
  if (!is_row_vector(rstd, in)) bad_shape(kernel, "rstd", rstd, per_row);
}
}  // namespace

void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor weight,
                       Tensor bias, double eps) {
  const char* k = "layernorm_forward";
  bool cuda = check_args(k, {{"out", out}, {"mean", mean}, {"rstd", rstd}, {"in", in},
                             {"weight", weight}, {"bias", bias, true}});
  check_layernorm_shapes(k, in, weight, bias, "bias", mean, rstd);
  check_same_shape(k, "out", out, "in", in);
  if (!(eps > 0) || !std::isfinite(eps))
    fail(k, "eps must be positive and finite; got " + std::to_string(eps));
  if (cuda) return cuda::layernorm_forward(out, mean, rstd, in, weight, bias, eps);
  cpu::layernorm_forward(out, mean, rstd, in, weight, bias, eps);
}

void layernorm_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                        Tensor weight, Tensor mean, Tensor rstd) {
  const char* k = "layernorm_backward";
  bool cuda = check_args(k, {{"din", din}, {"dweight", dweight}, {"dbias", dbias, true},
                             {"dout", dout}, {"in", in}, {"weight", weight}, {"mean", mean},
                             {"rstd", rstd}});
  check_layernorm_shapes(k, in, weight, dbias, "dbias", mean, rstd);
  check_same_shape(k, "din", din, "in", in);
  check_same_shape(k, "dout", dout, "in", in);
  check_same_shape(k, "dweight", dweight, "weight", weight);
  if (cuda) return cuda::layernorm_backward(din, dweight, dbias, dout, in, weight, mean, rstd);
  cpu::layernorm_backward(din, dweight, dbias, dout, in, weight, mean, rstd);
}

void gelu_forward(Tensor out, Tensor in, GeluForm form) {
  const char* k = "gelu_forward";
  bool cuda = check_args(k, {{"out", out}, {"in", in}});
  check_same_shape(k, "out", out, "in", in);
  if (cuda) return cuda::gelu_forward(out, in, form);
  cpu::gelu_forward(out, in, form);
}

void gelu_backward(Tensor din, Tensor dout, Tensor in, GeluForm form) {
  const char* k = "gelu_backward";
  bool cuda = check_args(k, {{"din", din}, {"dout", dout}, {"in", in}});
  check_same_shape(k, "din", din, "in", in);
  check_same_shape(k, "dout", dout, "in", in);
  if (cuda) return cuda::gelu_backward(din, dout, in, form);
  cpu::gelu_backward(din, dout, in, form);
}

void residual_forward(Tensor out, Tensor a, Tensor b) {
  const char* k = "residual_forward";
  bool cuda = check_args(k, {{"out", out}, {"a", a}, {"b", b}});
  check_same_shape(k, "b", b, "a", a);
  check_same_shape(k, "out", out, "a", a);
  if (cuda) return cuda::residual_forward(out, a, b);
  cpu::residual_forward(out, a, b);
}

void residual_backward(Tensor dacc, Tensor dout) {
  const char* k = "residual_backward";
  bool cuda = check_args(k, {{"dacc", dacc}, {"dout", dout}});
  check_same_shape(k, "dout", dout, "dacc", dacc);
  if (cuda) return cuda::residual_backward(dacc, dout);
  cpu::residual_backward(dacc, dout);
}

namespace {
// qkv (B, T, 3C) with C divisible by n_head, the (B, T, C) tensor `btc` (out or dout),
// lse (B, H, T), att (B, H, T, T) or empty, key_mask (B, T) or empty.
void check_attention_shapes(const char* kernel, const Tensor& btc, const char* btc_name,
                            const Tensor& lse, const Tensor& att, const Tensor& qkv,
                            const Tensor& key_mask, int n_head) {
  if (qkv.shape().rank() != 3 || last_dim(qkv) % 3 != 0 || last_dim(qkv) == 0)
    bad_shape(kernel, "qkv", qkv, "(B, T, 3C) with C > 0");
  const int64_t B = qkv.shape()[0], T = qkv.shape()[1], C = last_dim(qkv) / 3;
  if (n_head <= 0 || C % n_head != 0)
    fail(kernel, "n_head must divide C = " + std::to_string(C) + "; got " +
                     std::to_string(n_head));
  if (!(btc.shape() == Shape{B, T, C})) bad_shape(kernel, btc_name, btc, dims({B, T, C}));
  if (!(lse.shape() == Shape{B, n_head, T})) bad_shape(kernel, "lse", lse, dims({B, n_head, T}));
  if (present(att) && !(att.shape() == Shape{B, n_head, T, T}))
    bad_shape(kernel, "att", att, dims({B, n_head, T, T}) + " or empty");
  if (present(key_mask) && !(key_mask.shape() == Shape{B, T}))
    bad_shape(kernel, "key_mask", key_mask, dims({B, T}));
}
}  // namespace

// Note [Saved probabilities or lse] in core/kernels.h.
bool attention_saves_probabilities(Device device) { return device.is_cpu(); }

void attention_forward(Tensor out, Tensor lse, Tensor att, Tensor qkv, Tensor key_mask,
                       int n_head, bool causal) {
  const char* k = "attention_forward";
  bool cuda = check_args(k, {{"out", out}, {"lse", lse}, {"att", att, true}, {"qkv", qkv}});
  check_int_args(k, {"qkv", qkv}, {{"key_mask", key_mask, true}});
  check_attention_shapes(k, out, "out", lse, att, qkv, key_mask, n_head);
  if (cuda) return cuda::attention_forward(out, lse, att, qkv, key_mask, n_head, causal);
  cpu::attention_forward(out, lse, att, qkv, key_mask, n_head, causal);
}

void attention_backward(Tensor dqkv, Tensor scratch, Tensor dout, Tensor qkv, Tensor out,
                        Tensor lse, Tensor att, Tensor key_mask, int n_head, bool causal) {
  const char* k = "attention_backward";
  bool cuda = check_args(k, {{"dqkv", dqkv}, {"scratch", scratch}, {"dout", dout}, {"qkv", qkv},
                             {"out", out}, {"lse", lse}, {"att", att, true}});
  check_int_args(k, {"qkv", qkv}, {{"key_mask", key_mask, true}});
  check_attention_shapes(k, dout, "dout", lse, att, qkv, key_mask, n_head);
  check_same_shape(k, "dqkv", dqkv, "qkv", qkv);
  check_same_shape(k, "out", out, "dout", dout);
  if (present(att) && !(scratch.shape() == att.shape()))
    bad_shape(k, "scratch", scratch, att.shape().str() + ", att's shape");
  if (!present(att) && !(scratch.shape() == lse.shape()))
    bad_shape(k, "scratch", scratch, lse.shape().str() + " (B, H, T) when att is empty");
  if (cuda)
    return cuda::attention_backward(dqkv, scratch, dout, qkv, out, lse, att, key_mask, n_head,
                                    causal);
  cpu::attention_backward(dqkv, scratch, dout, qkv, out, lse, att, key_mask, n_head, causal);
}

namespace {
// logits (N, V); targets, and the per-row tensors, one value per row.
void check_softmax_ce_shapes(const char* kernel, const Tensor& logits, const Tensor& targets,
                             const Tensor& lse) {
  if (logits.shape().rank() < 1 || last_dim(logits) == 0)
    bad_shape(kernel, "logits", logits, "(N, V) with V > 0");
  const std::string per_row = "one value per row of logits " + logits.shape().str();
  if (!is_row_vector(targets, logits)) bad_shape(kernel, "targets", targets, per_row);
  if (!is_row_vector(lse, logits)) bad_shape(kernel, "lse", lse, per_row);
}
}  // namespace

void softmax_cross_entropy_forward(Tensor loss, Tensor lse, Tensor logits, Tensor targets,
                                   int ignore_index) {
  const char* k = "softmax_cross_entropy_forward";
  bool cuda = check_args(k, {{"loss", loss}, {"lse", lse}, {"logits", logits}});
  check_int_args(k, {"logits", logits}, {{"targets", targets}});
  check_softmax_ce_shapes(k, logits, targets, lse);
  if (!is_row_vector(loss, logits))
    bad_shape(k, "loss", loss, "one value per row of logits " + logits.shape().str());
  if (cuda) return cuda::softmax_cross_entropy_forward(loss, lse, logits, targets, ignore_index);
  cpu::softmax_cross_entropy_forward(loss, lse, logits, targets, ignore_index);
}

void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                    int ignore_index, double scale) {
  const char* k = "softmax_cross_entropy_backward";
  bool cuda = check_args(k, {{"dlogits", dlogits}, {"logits", logits}, {"lse", lse}});
  check_int_args(k, {"logits", logits}, {{"targets", targets}});
  check_softmax_ce_shapes(k, logits, targets, lse);
  check_same_shape(k, "dlogits", dlogits, "logits", logits);
  if (cuda)
    return cuda::softmax_cross_entropy_backward(dlogits, logits, lse, targets, ignore_index,
                                                scale);
  cpu::softmax_cross_entropy_backward(dlogits, logits, lse, targets, ignore_index, scale);
}

// ---- tanh, gather_rows ----------------------------------------------------------------

void tanh_forward(Tensor out, Tensor in) {
  const char* k = "tanh_forward";
  bool cuda = check_args(k, {{"out", out}, {"in", in}});
  check_same_shape(k, "out", out, "in", in);
  if (cuda) return cuda::tanh_forward(out, in);
  cpu::tanh_forward(out, in);
}

void tanh_backward(Tensor din, Tensor dout, Tensor out) {
  const char* k = "tanh_backward";
  bool cuda = check_args(k, {{"din", din}, {"dout", dout}, {"out", out}});
  check_same_shape(k, "din", din, "out", out);
  check_same_shape(k, "dout", dout, "out", out);
  if (cuda) return cuda::tanh_backward(din, dout, out);
  cpu::tanh_backward(din, dout, out);
}

namespace {
// bpc (B, P, C) (out or dout), btc (B, T, C) (in or din), positions (B, P).
void check_gather_rows_shapes(const char* kernel, const Tensor& bpc, const char* bpc_name,
                              const Tensor& btc, const char* btc_name, const Tensor& positions) {
  if (btc.shape().rank() != 3) bad_shape(kernel, btc_name, btc, "(B, T, C)");
  const int64_t B = btc.shape()[0], C = btc.shape()[2];
  if (positions.shape().rank() != 2 || positions.shape()[0] != B)
    bad_shape(kernel, "positions", positions, "(B, P) with B = " + std::to_string(B));
  const int64_t P = positions.shape()[1];
  if (!(bpc.shape() == Shape{B, P, C})) bad_shape(kernel, bpc_name, bpc, dims({B, P, C}));
}
}  // namespace

void gather_rows_forward(Tensor out, Tensor in, Tensor positions) {
  const char* k = "gather_rows_forward";
  bool cuda = check_args(k, {{"out", out}, {"in", in}});
  check_int_args(k, {"in", in}, {{"positions", positions}});
  check_gather_rows_shapes(k, out, "out", in, "in", positions);
  if (cuda) return cuda::gather_rows_forward(out, in, positions);
  cpu::gather_rows_forward(out, in, positions);
}

void gather_rows_backward(Tensor din, Tensor dout, Tensor positions) {
  const char* k = "gather_rows_backward";
  bool cuda = check_args(k, {{"din", din}, {"dout", dout}});
  check_int_args(k, {"din", din}, {{"positions", positions}});
  check_gather_rows_shapes(k, dout, "dout", din, "din", positions);
  if (cuda) return cuda::gather_rows_backward(din, dout, positions);
  cpu::gather_rows_backward(din, dout, positions);
}

}  // namespace loom

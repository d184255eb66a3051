// The dispatch points of core/kernels.h: one per family. Each checks its arguments once
// (Note [Kernel contract]) and hands them to the backend the tensors' device names. The
// backends (core/kernels_cpu.cpp, core/cuda/<family>.cu) may then assume valid arguments.
#include "core/kernels.h"

#include <initializer_list>
#include <string>

#include "core/kernels_cpu.h"
#include "core/kernels_cuda.h"

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

}  // namespace loom

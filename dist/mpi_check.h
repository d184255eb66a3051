#pragma once
// LOOM_MPI_CHECK(expr): every MPI return code goes through it (STYLE.md rule 7). The
// communicators set MPI_ERRORS_RETURN, so a failure comes back here as a code and is
// thrown with the expression, file:line and MPI_Error_string. Inside a collective use
// LOOM_MPI_CHECK_OP(info, expr): the CommError also names the op, its sequence number,
// the step and the rank (info is a loom::OpInfo).
//
// This header does not include mpi.h (MPI_SUCCESS is 0 by the standard); include it only
// from .cpp files that already do.
#include "dist/watchdog.h"

namespace loom::detail {
// Throws LibraryError (op == nullptr) or CommError naming *op.
[[noreturn]] void mpi_call_failed(int code, const char* expr, const char* file, int line,
                                  const OpInfo* op);
}  // namespace loom::detail

#define LOOM_MPI_CHECK(expr)                                                          \
  do {                                                                                \
    int loom_mpi_rc_ = (expr);                                                        \
    if (loom_mpi_rc_ != 0) [[unlikely]]                                               \
      ::loom::detail::mpi_call_failed(loom_mpi_rc_, #expr, __FILE__, __LINE__, nullptr); \
  } while (0)

#define LOOM_MPI_CHECK_OP(info, expr)                                                 \
  do {                                                                                \
    int loom_mpi_rc_ = (expr);                                                        \
    if (loom_mpi_rc_ != 0) [[unlikely]]                                               \
      ::loom::detail::mpi_call_failed(loom_mpi_rc_, #expr, __FILE__, __LINE__, &(info)); \
  } while (0)

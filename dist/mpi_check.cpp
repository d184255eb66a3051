#include "dist/mpi_check.h"

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include <string>

#include "core/error.h"

namespace loom::detail {

void mpi_call_failed(int code, const char* expr, const char* file, int line, const OpInfo* op) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  std::string why = length > 0 ? std::string(text, static_cast<size_t>(length))
                               : "MPI error code " + std::to_string(code);
  if (op == nullptr) throw_library_error("MPI", expr, file, line, why);
  throw CommError(op->describe() + " failed: " + expr + " at " + file + ":" +
                  std::to_string(line) + ": " + why);
}

}  // namespace loom::detail

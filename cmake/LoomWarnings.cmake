# loom_target_defaults(TARGET): warnings, include root, optimisation flags.
# -Wnull-dereference and -Wrestrict are left out: at -O2 GCC 12 reports them inside
# libstdc++ and Boost.Asio code inlined into ours (GCC bug 105329 for -Wrestrict), and CI
# builds Release with -Werror.
function(loom_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                              -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough
                              -Wno-restrict>)
  # nvcc: its own warnings, and the host compiler's -Wall -Wextra on the host side of .cu.
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  if(LOOM_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>
                                             $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
  endif()
  if(LOOM_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}
                                              ${PROJECT_BINARY_DIR}/generated)
endfunction()

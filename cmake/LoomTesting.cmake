# loom_add_test(NAME SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s])
#   A GoogleTest binary run once by ctest (label: unit unless given).
# loom_add_mpi_test(NAME SOURCES ... [LIBS ...] [NP 2 3] [TIMEOUT s])
#   A GoogleTest binary run by ctest under `mpirun -np N --oversubscribe` for each N
#   (label: mpi); NP 1 runs it as a singleton without mpirun. Its main is tests/support/mpi_gtest_main.cpp.
include(GoogleTest)
find_package(GTest REQUIRED)

set(LOOM_MPIRUN_FLAGS --oversubscribe --bind-to none --mca mpi_yield_when_idle 1
    CACHE STRING "Flags ctest passes to mpirun")
set(LOOM_TEST_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OMPI_MCA_rmaps_base_oversubscribe=1")

function(loom_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  loom_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main loom_test_support)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       SKIP_REGULAR_EXPRESSION "LOOM-ENVIRONMENT-SKIP"   # tests/support/test_support.h
                       ENVIRONMENT "${LOOM_TEST_ENV};LOOM_BINARY=$<TARGET_FILE:loom>")
endfunction()

function(loom_add_mpi_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;NP;LABELS" ${ARGN})
  if(NOT T_NP)
    set(T_NP 2 3)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS mpi)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/support/mpi_gtest_main.cpp)
  loom_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest loom_test_support)
  foreach(np ${T_NP})
    if(np EQUAL 1)          # singleton: no launcher at all
      add_test(NAME ${name}_singleton COMMAND $<TARGET_FILE:${name}>)
      set(tname ${name}_singleton)
    else()
      add_test(NAME ${name}_np${np}
               COMMAND ${MPIEXEC_EXECUTABLE} -np ${np} ${LOOM_MPIRUN_FLAGS} $<TARGET_FILE:${name}>)
      set(tname ${name}_np${np})
    endif()
    set_tests_properties(${tname} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                         PROCESSORS ${np}
                         SKIP_REGULAR_EXPRESSION "LOOM-ENVIRONMENT-SKIP"   # tests/support/test_support.h
                         ENVIRONMENT "${LOOM_TEST_ENV};LOOM_BINARY=$<TARGET_FILE:loom>")
  endforeach()
endfunction()

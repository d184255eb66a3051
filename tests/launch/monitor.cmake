# Observability and stop requests (launch/signals, progress, metrics, status_server,
# run_monitor). The status server tests talk real HTTP over 127.0.0.1 with real sockets.
loom_add_test(test_monitor
  SOURCES ${LOOM_TEST_DIR}/test_status_server.cpp ${LOOM_TEST_DIR}/test_progress.cpp
          ${LOOM_TEST_DIR}/test_signals.cpp
  LIBS loom_launch nlohmann_json::nlohmann_json Threads::Threads)

loom_add_mpi_test(test_run_monitor
  SOURCES ${PROJECT_SOURCE_DIR}/tests/mpi/test_run_monitor.cpp
  LIBS loom_launch nlohmann_json::nlohmann_json Threads::Threads
  NP 1 2 3)

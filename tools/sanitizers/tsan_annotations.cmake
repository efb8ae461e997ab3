# ThreadSanitizer builds only (included from the top-level CMakeLists.txt):
# tells TSan how Debian's uninstrumented abseil and gRPC synchronise, so that
# it sees the order their locks and completion queues give our code:
#   absl_sync_tsan.cc  absl::Mutex, CondVar and Notification;
#   grpc_tsan.cc       a batch started on a call before its completion
#                      event, every reaction of a call before its OnDone.
#
# A shared library that every target created after this file is included
# links first, so that the dynamic linker finds its definitions of those
# functions before abseil's and gRPC's (absl_sync_tsan.cc checks it at
# start-up): link_libraries() makes the targets depend on it, and the link
# option names it ahead of every library (CMake would sort it among them).
find_package(absl CONFIG REQUIRED)
find_package(gRPC CONFIG REQUIRED)

add_library(rnnserve_tsan_annotations SHARED
            ${CMAKE_CURRENT_LIST_DIR}/absl_sync_tsan.cc
            ${CMAKE_CURRENT_LIST_DIR}/grpc_tsan.cc)
# Headers only for gRPC: its functions are reached with dlsym, so that
# targets without gRPC (the batching and sessions tests) do not load it.
target_include_directories(rnnserve_tsan_annotations PRIVATE
  $<TARGET_PROPERTY:gRPC::grpc,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(rnnserve_tsan_annotations
  PRIVATE absl::synchronization ${CMAKE_DL_LIBS})
link_libraries(rnnserve_tsan_annotations)
add_link_options($<TARGET_FILE:rnnserve_tsan_annotations>)

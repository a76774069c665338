# tests/collect/CMakeLists.fragment.cmake - test-only build rules for the
# collect module.
#
# Builds fake_nvml, a shared library exporting the subset of the NVML C API
# that src/collect/collect_gpu.c loads with dlopen.  Its answers come from a
# text file named by the environment variable HS_FAKE_NVML_DATA (see
# tests/collect/fake_nvml.c).  The GPU tests receive the library's path in
# HS_FAKE_NVML and point collect_config.nvml_path at it.
#
# Included from the top CMakeLists.txt after the test loop, so the test
# targets below already exist.
add_library(fake_nvml SHARED ${CMAKE_SOURCE_DIR}/tests/collect/fake_nvml.c)
# The fake library is loaded into sanitized test processes; it is built
# without sanitizer link flags of its own (the host process provides the
# runtime) and with no undefined symbols left to the loader but libc.
set_target_properties(fake_nvml PROPERTIES C_VISIBILITY_PRESET default)
target_include_directories(fake_nvml PRIVATE ${CMAKE_SOURCE_DIR}/src)

if(TARGET collect_test_gpu)
  add_dependencies(collect_test_gpu fake_nvml)
  set_tests_properties(collect/test_gpu PROPERTIES
    ENVIRONMENT "${HS_TEST_ENV};HS_FAKE_NVML=$<TARGET_FILE:fake_nvml>")
endif()
if(TARGET collect_test_collector)
  add_dependencies(collect_test_collector fake_nvml)
  set_tests_properties(collect/test_collector PROPERTIES
    ENVIRONMENT "${HS_TEST_ENV};HS_FAKE_NVML=$<TARGET_FILE:fake_nvml>")
endif()

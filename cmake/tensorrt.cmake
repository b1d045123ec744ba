# The TensorRT provider, neoserve_tensorrt.so: built only when TensorRT 10
# headers (NEOSERVE_TENSORRT_INCLUDE, a directory with NvInfer.h) and a CUDA
# toolkit are there. It needs neither libnvinfer nor libcudart at run time:
# libnvinfer.so.10 is dlopen'd by the core and handed over, and the CUDA
# runtime is linked statically (it loads the driver, libcuda.so.1, itself).
# Included from CMakeLists.txt after neoserve_core (and the tests) are defined.
set(NEOSERVE_TENSORRT_INCLUDE "" CACHE PATH
    "Directory with TensorRT 10's NvInfer.h: builds the TensorRT provider (see scripts/build-tensorrt.sh)")

set(_neoserve_trt_skip "")
if(NOT NEOSERVE_TENSORRT_INCLUDE)
  set(_neoserve_trt_skip "NEOSERVE_TENSORRT_INCLUDE is not set (a directory with TensorRT 10's NvInfer.h; see scripts/build-tensorrt.sh)")
elseif(NOT EXISTS "${NEOSERVE_TENSORRT_INCLUDE}/NvInfer.h")
  set(_neoserve_trt_skip "there is no NvInfer.h in NEOSERVE_TENSORRT_INCLUDE=${NEOSERVE_TENSORRT_INCLUDE}")
else()
  find_package(CUDAToolkit QUIET)
  if(NOT CUDAToolkit_FOUND)
    set(_neoserve_trt_skip "no CUDA toolkit found (put nvcc on PATH or set CUDAToolkit_ROOT)")
  else()
    if(NOT CMAKE_CUDA_COMPILER AND CUDAToolkit_NVCC_EXECUTABLE)
      set(CMAKE_CUDA_COMPILER "${CUDAToolkit_NVCC_EXECUTABLE}")
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(NOT CMAKE_CUDA_COMPILER)
      set(_neoserve_trt_skip "no working CUDA compiler (nvcc) found")
    endif()
  endif()
endif()

if(_neoserve_trt_skip)
  message(STATUS "TensorRT provider (neoserve_tensorrt.so) not built: ${_neoserve_trt_skip}")
  return()
endif()

# T4 (sm_75), A100 (sm_80) and H100/H200 (sm_90), each with PTX, unless the caller chose.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES 75 80 90)
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
message(STATUS "TensorRT provider: building neoserve_tensorrt.so with ${NEOSERVE_TENSORRT_INCLUDE}, "
               "CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")

# The CUDA kernels (*.cu) are an object library of their own, linked into
# the provider and into the kernel tests (neoserve_tensorrt_kernel_tests), so
# both run the same object code.
file(GLOB NEOSERVE_TENSORRT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/native/providers/tensorrt/*.cpp)
file(GLOB NEOSERVE_TENSORRT_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/native/providers/tensorrt/*.cu)
add_library(neoserve_tensorrt_kernels OBJECT ${NEOSERVE_TENSORRT_CUDA_SOURCES})
add_library(neoserve_tensorrt MODULE ${NEOSERVE_TENSORRT_SOURCES} $<TARGET_OBJECTS:neoserve_tensorrt_kernels>)

# The project's add_compile_options (-Wall -Wextra ..., sanitizers) are GCC
# flags that nvcc rejects: keep them for C++ and hand them to nvcc's host
# compiler for .cu files.
foreach(_neoserve_trt_target neoserve_tensorrt neoserve_tensorrt_kernels)
  get_target_property(_neoserve_trt_opts ${_neoserve_trt_target} COMPILE_OPTIONS)
  set(_neoserve_trt_wrapped "")
  if(_neoserve_trt_opts)
    foreach(_opt IN LISTS _neoserve_trt_opts)
      list(APPEND _neoserve_trt_wrapped "$<$<COMPILE_LANGUAGE:CXX>:${_opt}>")
      if(_opt MATCHES "^-W")
        list(APPEND _neoserve_trt_wrapped "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_opt}>")
      endif()
    endforeach()
  endif()
  set_property(TARGET ${_neoserve_trt_target} PROPERTY COMPILE_OPTIONS ${_neoserve_trt_wrapped})

  target_include_directories(${_neoserve_trt_target} PRIVATE ${CMAKE_SOURCE_DIR}/native/providers/tensorrt)
  # TensorRT's and CUDA's headers warn under -Wextra: include them as system headers.
  target_include_directories(${_neoserve_trt_target} SYSTEM PRIVATE ${NEOSERVE_TENSORRT_INCLUDE} ${CUDAToolkit_INCLUDE_DIRS})
  # Usage requirements only for the object library (the core's include directory).
  target_link_libraries(${_neoserve_trt_target} PRIVATE neoserve_core CUDA::cudart_static)
endforeach()

# Export the two entry points and nothing else: the core (linked in
# statically) and the static CUDA runtime stay private to this library, so
# they never clash with the addon's copies.
set(_neoserve_trt_map "${CMAKE_CURRENT_BINARY_DIR}/neoserve_tensorrt.map")
file(WRITE "${_neoserve_trt_map}" "{\n  global: neoserve_tensorrt_abi; neoserve_tensorrt_create;\n  local: *;\n};\n")
target_link_options(neoserve_tensorrt PRIVATE
  "LINKER:--version-script=${_neoserve_trt_map}" "LINKER:--exclude-libs,ALL" "LINKER:--no-undefined")
set_property(TARGET neoserve_tensorrt APPEND PROPERTY LINK_DEPENDS "${_neoserve_trt_map}")

# Beside the addon (build/Release under cmake-js), where tensorrt_provider_path() looks.
if(CMAKE_LIBRARY_OUTPUT_DIRECTORY)
  set(_neoserve_trt_out "${CMAKE_LIBRARY_OUTPUT_DIRECTORY}")
else()
  set(_neoserve_trt_out "${CMAKE_BINARY_DIR}")
endif()
set_target_properties(neoserve_tensorrt PROPERTIES
  PREFIX "" OUTPUT_NAME neoserve_tensorrt SUFFIX ".so"
  LIBRARY_OUTPUT_DIRECTORY "${_neoserve_trt_out}"
  CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
  CUDA_RUNTIME_LIBRARY Static
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
set_target_properties(neoserve_tensorrt_kernels PROPERTIES
  CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
  CUDA_RUNTIME_LIBRARY Static
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")

# ctest suite "tensorrt": the provider against the CPU on a real engine when
# NEOSERVE_TEST_ENGINE_DIR / NEOSERVE_TEST_HF_DIR name one and a GPU is there;
# otherwise it says why it skips, and passes.
if(NEOSERVE_TESTS AND TARGET neoserve_tests)
  add_dependencies(neoserve_tests neoserve_tensorrt)
  add_test(NAME tensorrt COMMAND neoserve_tests tensorrt.)
  set_tests_properties(tensorrt PROPERTIES ENVIRONMENT "NEOSERVE_TENSORRT_PROVIDER=$<TARGET_FILE:neoserve_tensorrt>")
endif()

# ctest suite "tensorrt_kernels": the provider's CUDA kernels (kv_kernels.h)
# against a host reference on a real GPU; without a usable CUDA device each
# case prints "skipped: <why>" and passes. The binary needs neither
# libnvinfer nor Node, only a GPU: bash scripts/build-tensorrt.sh --ctest-only.
if(NEOSERVE_TESTS)
  add_executable(neoserve_tensorrt_kernel_tests
    ${CMAKE_SOURCE_DIR}/native/test/tensorrt_kernels/test_kv_kernels.cpp
    ${CMAKE_SOURCE_DIR}/native/test/harness_main.cpp
    $<TARGET_OBJECTS:neoserve_tensorrt_kernels>)
  target_include_directories(neoserve_tensorrt_kernel_tests PRIVATE
    ${CMAKE_SOURCE_DIR}/native ${CMAKE_SOURCE_DIR}/native/test)
  target_include_directories(neoserve_tensorrt_kernel_tests SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(neoserve_tensorrt_kernel_tests PRIVATE CUDA::cudart_static)
  add_test(NAME tensorrt_kernels COMMAND neoserve_tensorrt_kernel_tests tensorrt_kernels.)
endif()

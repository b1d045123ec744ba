# Per-file instruction-set flags: foo_avx512.cpp gets AVX-512 (F/BW/VL/VNNI/BF16),
# foo_avx2.cpp gets AVX2+FMA+F16C; every other file stays portable x86-64.
function(neoserve_apply_isa_flags sources)
  foreach(src ${sources})
    if(src MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
        "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx512bf16;-mfma;-mf16c;-mavx2")
    elseif(src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    endif()
  endforeach()
endfunction()

# Hooked into the top project by scripts/fuzz.sh (-DCMAKE_PROJECT_strata_INCLUDE=<this file>): the
# fuzz targets build against the very libraries of the main tree, compiled with clang-14 and
# -fsanitize=fuzzer-no-link,address,undefined, without the top CMakeLists knowing about fuzzing.
# fuzz/CMakeLists.txt is include()d (a deferred call may not add a subdirectory) at the end of the
# top CMakeLists, when strata_common, strata_router and strata_cachenode exist. A deferred call's
# arguments are expanded when it runs, so the path is spelled out now through EVAL.
cmake_language(EVAL CODE
  "cmake_language(DEFER DIRECTORY [[${CMAKE_SOURCE_DIR}]] CALL include [[${CMAKE_CURRENT_LIST_DIR}/CMakeLists.txt]])")

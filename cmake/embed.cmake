# hs_embed(MODULE NAME BASEDIR FILE...): turns files into a generated C source
# holding their bytes and adds it to the sources of MODULE.  Used for the
# default rule pack and the dashboard assets, so nothing is read from disk
# at run time.  The generated file defines
#   const struct hs_embedded_file hs_embed_<NAME>[] = { {path, data, len}, ..., {0} };
# with paths relative to BASEDIR.
function(hs_embed MODULE NAME BASEDIR)
  set(out ${CMAKE_BINARY_DIR}/gen/embed_${NAME}.c)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAME=${NAME} -DBASEDIR=${BASEDIR}
            "-DFILES=${ARGN}" -P ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    DEPENDS ${ARGN} ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    COMMENT "Embedding ${NAME}" VERBATIM)
  set(HS_GEN_${MODULE} ${HS_GEN_${MODULE}} ${out} PARENT_SCOPE)
endfunction()

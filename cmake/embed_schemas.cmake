# Generates schemas_embedded.c/.h: every schemas/*.avsc as a C string, looked up by file name
# without the extension. Run with -DSRC_DIR=<schemas dir> -DOUT_DIR=<gen dir>.
file(GLOB files ${SRC_DIR}/*.avsc)
list(SORT files)
set(body "")
set(table "")
set(i 0)
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "static const char schema_${i}[] = {${hex}0x00};\n")
  string(APPEND table "    {\"${name}\", schema_${i}},\n")
  math(EXPR i "${i}+1")
endforeach()
file(WRITE ${OUT_DIR}/schemas_embedded.c.tmp
"/* generated from the schemas/ files by cmake/embed_schemas.cmake: do not edit */
#include <string.h>
#include \"schemas_embedded.h\"
${body}
static const struct { const char *name; const char *text; } schemas[] = {
${table}    {0, 0}
};
const char *embedded_schema(const char *name)
{
    for (int i = 0; schemas[i].name; i++)
        if (!strcmp(schemas[i].name, name)) return schemas[i].text;
    return 0;
}
const char *embedded_schema_name(int i)
{
    return i >= 0 && i < (int)(sizeof schemas / sizeof schemas[0]) - 1 ? schemas[i].name : 0;
}
")
file(WRITE ${OUT_DIR}/schemas_embedded.h.tmp
"/* generated: the hand-written Avro schemas of the schemas/ directory, embedded in the binary */
#ifndef LOGPROC_SCHEMAS_EMBEDDED_H
#define LOGPROC_SCHEMAS_EMBEDDED_H
/* The schema JSON text of schemas/<name>.avsc, or NULL. Static storage. */
const char *embedded_schema(const char *name);
/* The i-th schema name in sorted order, or NULL past the end. */
const char *embedded_schema_name(int i);
#endif
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT_DIR}/schemas_embedded.c.tmp ${OUT_DIR}/schemas_embedded.c)
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT_DIR}/schemas_embedded.h.tmp ${OUT_DIR}/schemas_embedded.h)

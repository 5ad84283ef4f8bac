# Generates a C file holding one file's bytes: const char <SYM>[] (NUL-terminated) and
# const unsigned long <SYM>_len. Run with -DIN=<file> -DOUT=<c file> -DSYM=<symbol>.
file(READ ${IN} hex HEX)
file(SIZE ${IN} len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
file(WRITE ${OUT}.tmp
"/* generated from ${SYM}'s source file by cmake/embed_file.cmake: do not edit */
const char ${SYM}[] = {${hex}0x00};
const unsigned long ${SYM}_len = ${len};
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})

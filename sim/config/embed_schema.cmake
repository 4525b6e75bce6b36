# Turns configs/apfsim.xsd into a C array so the library validates with the
# schema it was built with, wherever the binary runs.
# Usage: cmake -DIN=apfsim.xsd -DOUT=schema_xsd.c -P embed_schema.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# One line per 32 bytes keeps the generated file readable in a diff or editor.
# (CMake regexes have no {n} repetition, hence the spelled-out pattern.)
string(REPEAT "0x[0-9a-f][0-9a-f]," 32 line_pattern)
string(REGEX REPLACE "(${line_pattern})" "\\1\n  " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "/* Generated from configs/apfsim.xsd by sim/config/embed_schema.cmake. Do not edit. */\n"
  "#include \"config/config.h\"\n\n"
  "const char config_schema_xsd[] = {\n  ${bytes}0x00};\n")
# Only touch the output when it changed, so an unrelated re-run rebuilds nothing.
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.tmp")

# Turns an XSD into a NUL-terminated C array, so the sweep loader validates
# with the schema it was built with, wherever the binary runs.
# Usage: cmake -DIN=sweep.xsd -DOUT=sweep_xsd.c -DNAME=sweep_schema_xsd
#        -DHEADER=sweep/spec.h -P embed_xsd.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 32 line_pattern)
string(REGEX REPLACE "(${line_pattern})" "\\1\n  " bytes "${bytes}")
get_filename_component(in_name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${in_name} by sim/sweep/embed_xsd.cmake. Do not edit. */\n"
  "#include \"${HEADER}\"\n\n"
  "const char ${NAME}[] = {\n  ${bytes}0x00};\n")
# Only touch the output when it changed, so an unrelated re-run rebuilds nothing.
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.tmp")

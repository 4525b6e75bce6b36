#!/bin/sh
# check_user_object.sh NM OBJECT — the combined user object must be self-contained: user
# code runs at CPL3 and can call nothing in the (supervisor-only) kernel, so any undefined
# symbol (e.g. a libgcc helper or a kernel function) is a build error here rather than a
# #PF at run time.
set -eu
undefined=$("$1" -u "$2")
if [ -n "$undefined" ]; then
  echo "check_user_object: $2 references symbols outside the user code:" >&2
  echo "$undefined" >&2
  exit 1
fi

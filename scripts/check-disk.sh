#!/usr/bin/env bash
# Checks, before the first installation into .venv, that the disk holding the project has room for
# it: the environment takes about 6 GiB (PyTorch's wheel from PyPI is a CUDA build, which runs on
# the CPU too). Too little room fails here with one clear line instead of pip's "No space left on
# device" halfway through the installation; little room only warns.
#
# Usage: check-disk.sh DIR [NEED_GIB] [WARN_GIB]
set -u
dir=${1:-.}
need_gib=${2:-6}
warn_gib=${3:-8}
if ! free_kib=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }') || [ -z "$free_kib" ]; then
  echo "check-disk: cannot read the free space of $dir; installing anyway" >&2
  exit 0
fi
free_gib=$(awk -v k="$free_kib" 'BEGIN { printf "%.1f", k / 1048576 }')
if [ "$free_kib" -lt $((need_gib * 1048576)) ]; then
  echo "error: the virtual environment needs about $need_gib GiB of disk, but only $free_gib GiB is free on $dir; free some space there and run make again" >&2
  exit 2
fi
if [ "$free_kib" -lt $((warn_gib * 1048576)) ]; then
  echo "warning: $free_gib GiB free on $dir; the virtual environment needs about $need_gib GiB" >&2
fi
exit 0

#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test hepack:
# python3 + pip + venv (test data, the Python package), gcc/g++ and cmake
# (SEAL is built from source by the
# sealy crate), libclang-dev (sealy's bindgen), libcpu-features-dev (SEAL's
# Intel HEXL on x86-64). Rust stable must be installed.
set -euo pipefail

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# The Python package's tests build it into a virtual environment.
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v cmake >/dev/null || need_apt+=(cmake)
# bindgen (through clang-sys) loads libclang.so or libclang-<version>.so, never
# libclang-cpp.so (a different library the stock image ships): look for exactly
# those, unless LIBCLANG_PATH points bindgen elsewhere.
have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  local f
  for f in /usr/lib/llvm-*/lib/libclang.so /usr/lib/llvm-*/lib/libclang-[0-9]*.so \
           /usr/lib/*-linux-gnu/libclang.so /usr/lib/*-linux-gnu/libclang-[0-9]*.so; do
    [ -e "$f" ] && return 0
  done
  return 1
}
have_libclang || need_apt+=(libclang-dev)
# SEAL's Intel HEXL (x86-64) links google's cpu_features, which its CMake
# would otherwise clone from GitHub.
if [ "$(uname -m)" = x86_64 ] && ! compgen -G "/usr/lib/*-linux-gnu/libcpu_features.a" >/dev/null; then
  need_apt+=(libcpu-features-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  $sudo_cmd apt-get install -y -q "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust stable (rustup) first" >&2; exit 1; }

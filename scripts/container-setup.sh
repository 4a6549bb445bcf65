#!/bin/sh
# Install and configure what the container tests need: podman, skopeo, umoci,
# runc, Debian's docker-registry and debootstrap (which makes the local base
# image of the Dockerfile test; apt-get only for what is missing), and a
# containers.conf that makes rootful podman work in CI sandboxes (runc, raised
# ulimits). Idempotent. Prints the CONTAINERS_CONF line to export.
#
#   eval "$(scripts/container-setup.sh)"
set -eu

conf_dir="${SLIDESVC_CONTAINERS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/slidesvc}"

missing=""
for pair in podman:podman skopeo:skopeo umoci:umoci runc:runc docker-registry:docker-registry \
    debootstrap:debootstrap; do
    tool="${pair%%:*}"
    package="${pair#*:}"
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "container-setup: missing$missing; run as root (or: sudo apt-get install$missing)" >&2
        exit 1
    fi
    echo "container-setup: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >&2
fi
# Debian's docker-registry package starts a system service on :5000; the tests
# run their own registry on 127.0.0.1:5000, so the packaged one must not hold it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry >&2 || true
fi

mkdir -p "$conf_dir"
conf="$conf_dir/containers.conf"
cat >"$conf.tmp" <<'EOF'
# Written by scripts/container-setup.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
mv "$conf.tmp" "$conf"
echo "export CONTAINERS_CONF=$conf"

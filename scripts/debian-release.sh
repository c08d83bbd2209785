#!/bin/sh
# Debian releases this project builds images for, and the host's own archive URI.
# Sourced by scripts/build-image.sh and scripts/debian-apt.sh:
#   debian_release SUITE     prints the release number (bookworm 12, trixie 13) or fails
#   debian_mirror            prints the archive URI of the host's own Debian sources
#                            (deb822 .sources or one-line sources.list), or deb.debian.org
#   host_suite               prints the host's Debian suite (from /etc/os-release)

debian_release() {
    case "$1" in
        bookworm) echo 12 ;;
        trixie) echo 13 ;;
        *)
            echo "unknown Debian suite '$1' (this project knows bookworm = Debian 12 and trixie = Debian 13)" >&2
            return 2
            ;;
    esac
}

debian_mirror() {
    if [ -n "${NTSOPS_DEBIAN_MIRROR:-}" ]; then
        echo "$NTSOPS_DEBIAN_MIRROR"
        return 0
    fi
    uri=""
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        # The URIs line of a stanza that is not the security archive.
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$file")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

host_suite() {
    # shellcheck disable=SC1091  # os-release is the host's, not ours
    . /etc/os-release
    echo "${VERSION_CODENAME:-unknown}"
}

#!/usr/bin/env bash
# Fails when a Cargo.toml declares a dependency that nothing uses (run by .ci/run).
#
# - Each member's [dependencies] must be named (as `name::` or `use name`, `-` read as `_`)
#   in its src/ or build.rs; its [dev-dependencies] in src/, tests/, benches/ or examples/.
# - Each root [workspace.dependencies] entry must be used by some member's Cargo.toml.
#
# A plain grep, no install, a second to run. A dependency that is needed without being named
# (a feature switch on a crate another one pulls in) is listed in ALLOWED with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

# crate:dependency pairs needed without a path in the code.
#   volley-cli:libmimalloc-sys  turns on mimalloc's `extended` feature, which `mimalloc` reads.
ALLOWED=" volley-cli:libmimalloc-sys "

# Prints `section name` for each dependency declared in the Cargo.toml $1.
declared() {
    awk '
        /^\[/ {
            section = ""
            if ($0 ~ /^\[(target\.[^]]*\.)?dependencies\]/) section = "dependencies"
            if ($0 ~ /^\[(target\.[^]]*\.)?dev-dependencies\]/) section = "dev-dependencies"
            if ($0 ~ /^\[(target\.[^]]*\.)?build-dependencies\]/) section = "build-dependencies"
            if ($0 ~ /^\[workspace\.dependencies\]/) section = "workspace"
            next
        }
        section != "" && /^[A-Za-z0-9_-]+[ .=]/ {
            name = $0
            sub(/[ .=].*/, "", name)
            print section, name
        }
    ' "$1"
}

# The library name of workspace member package $1 (its [lib] name), else $1.
lib_name() {
    local member
    for member in $members; do
        if [[ $(awk -F'"' '/^name *=/ { print $2; exit }' "$member/Cargo.toml") == "$1" ]]; then
            awk -F'"' '/^\[lib\]/ { lib = 1; next } /^\[/ { lib = 0 } lib && /^name *=/ { print $2; exit }' \
                "$member/Cargo.toml" | grep . && return
        fi
    done
    echo "$1"
}

# True when crate folder $1 names dependency $2 in the folders $3...
named_in() {
    local dir=$1 dep where=()
    dep=$(lib_name "$2")
    dep=${dep//-/_}
    shift 2
    for sub in "$@"; do
        [[ -e "$dir/$sub" ]] && where+=("$dir/$sub")
    done
    [[ ${#where[@]} -gt 0 ]] || return 1
    grep -rqE --include='*.rs' "(^|[^A-Za-z0-9_])${dep}::|use ${dep}( |;|::|$)|extern crate ${dep}( |;)" \
        "${where[@]}"
}

members=$(awk '/^members *=/ { gsub(/[][",=]/, " "); for (i = 2; i <= NF; i++) print $i }' Cargo.toml)
unused=()
for member in $members; do
    manifest="$member/Cargo.toml"
    package=$(awk -F'"' '/^name *=/ { print $2; exit }' "$manifest")
    while read -r section dep; do
        [[ "$ALLOWED" == *" $package:$dep "* ]] && continue
        case $section in
            dependencies) named_in "$member" "$dep" src build.rs && continue ;;
            build-dependencies) named_in "$member" "$dep" build.rs && continue ;;
            dev-dependencies) named_in "$member" "$dep" src tests benches examples && continue ;;
        esac
        unused+=("$manifest [$section] $dep")
    done < <(declared "$manifest")
done

manifests=()
for member in $members; do manifests+=("$member/Cargo.toml"); done
while read -r _ dep; do
    if ! grep -qE "^${dep}( *=|\.workspace)" "${manifests[@]}"; then
        unused+=("Cargo.toml [workspace.dependencies] $dep (no member uses it)")
    fi
done < <(declared Cargo.toml | grep '^workspace ')

if [[ ${#unused[@]} -gt 0 ]]; then
    echo "unused dependencies (remove them, or list them in ALLOWED in $0 with the reason):"
    printf '  %s\n' "${unused[@]}"
    exit 1
fi
echo "no unused dependencies"

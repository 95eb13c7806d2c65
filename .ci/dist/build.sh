#!/usr/bin/env bash
# make dist: writes dist/ctlab_<version>_<arch>.deb,
# dist/ctlab_<version>_linux_<arch>.tar.gz (amd64, and arm64 when the static
# cgo build cross-compiles) and dist/SHA256SUMS.
#
# The binaries are static (cgo for the nsexec constructor, libc.a linked in),
# so the .deb has no Depends. Man pages and completions come from the real
# cobra tree (ctlab built with -tags gendocs, see cmd/ctlab/gendocs.go).
# Timestamps come from the commit (SOURCE_DATE_EPOCH): two builds of one
# clean commit give identical files.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=.ci/dist
GO=${GO:-go}
version=${VERSION:-$(bash $here/version.sh)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export CGO_ENABLED=1
first=$( (git log --max-parents=0 --format=%cd --date=format:%Y 2>/dev/null || true) | sort | sed -n 1p)
last=$(date -u -d @"$SOURCE_DATE_EPOCH" +%Y)
years=${first:-$last}
[ "$years" = "$last" ] || years="$years-$last"
out=dist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"
echo "dist: ctlab $version ($commit)"

# Man pages and completions: architecture-independent, made once.
$GO build -tags gendocs,netgo,osusergo -ldflags "-X main.version=$version" -o "$work/gendocs" ./cmd/ctlab
"$work/gendocs" __gendocs "$work/docs"
gzip -9n "$work"/docs/man/*.1

ldflags="-s -w -linkmode external -extldflags -static -X main.version=$version -X main.commit=$commit"
# build ARCH: the four static binaries into $work/ARCH/bin.
build() {
  local arch=$1 cc=gcc
  [ "$arch" = arm64 ] && cc=aarch64-linux-gnu-gcc
  command -v "$cc" >/dev/null || { echo "$cc is not installed (apt-get install gcc-aarch64-linux-gnu)"; return 1; }
  for b in ctlab ctlab-tui ctlab-init; do
    local bcc=$cc
    # ctlab-init with musl where it can (the Makefile's CC_INIT: libc's
    # start-up runs in every container start); Debian has no musl cross
    # compiler, so arm64's stays glibc.
    [ "$b" = ctlab-init ] && [ "$arch" = amd64 ] && command -v musl-gcc >/dev/null && bcc=musl-gcc
    CC=$bcc GOARCH=$arch $GO build -trimpath -buildvcs=false -tags netgo,osusergo -ldflags "$ldflags" \
      -o "$work/$arch/bin/$b" ./cmd/$b 2>&1 || return 1
  done
  # ctlab-oci without cgo, as the Makefile builds it: no libc start-up in
  # each of the many calls a shim makes (its containers' init is ctlab-init).
  CGO_ENABLED=0 GOARCH=$arch $GO build -trimpath -buildvcs=false -tags netgo,osusergo \
    -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
    -o "$work/$arch/bin/ctlab-oci" ./cmd/ctlab-oci 2>&1 || return 1
}

# stage ROOT ARCH: the installed file tree (usr/...), shared by .deb and tarball.
stage() {
  local root=$1 arch=$2
  install -d "$root/usr/bin" "$root/usr/share/man/man1" "$root/usr/share/doc/ctlab" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"
  install -m 0755 "$work/$arch"/bin/* "$root/usr/bin/"
  install -m 0644 "$work"/docs/man/*.1.gz "$root/usr/share/man/man1/"
  install -m 0644 "$work/docs/completions/ctlab.bash" "$root/usr/share/bash-completion/completions/ctlab"
  install -m 0644 "$work/docs/completions/_ctlab" "$root/usr/share/zsh/vendor-completions/_ctlab"
  install -m 0644 "$work/docs/completions/ctlab.fish" "$root/usr/share/fish/vendor_completions.d/ctlab.fish"
  sed "s/@YEARS@/$years/" $here/copyright >"$root/usr/share/doc/ctlab/copyright"
  install -D -m 0644 $here/lintian-overrides "$root/usr/share/lintian/overrides/ctlab"
  sed "s/@VERSION@/$version/; s/@DATE@/$(date -u -R -d @"$SOURCE_DATE_EPOCH")/" $here/changelog |
    gzip -9n >"$root/usr/share/doc/ctlab/changelog.gz"
}

deb() {
  local arch=$1 root=$work/deb-$1
  stage "$root" "$arch"
  install -d "$root/DEBIAN"
  install -m 0755 $here/prerm $here/postrm "$root/DEBIAN/"
  # libc.a is linked in: name the glibc source, as Debian policy asks of
  # static binaries.
  local libc=libc6-dev bu
  [ "$arch" = arm64 ] && libc=libc6-dev-arm64-cross
  bu=$(dpkg-query -W -f='Built-Using: ${source:Package} (= ${source:Version})' $libc 2>/dev/null || true)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/^@BUILTUSING@\$/$bu/" -e '/^$/d' \
    -e "s/@SIZE@/$(du -sk --exclude=DEBIAN "$root" | cut -f1)/" $here/control >"$root/DEBIAN/control"
  (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  find "$root" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/ctlab_${version}_$arch.deb" >/dev/null
}

tarball() {
  local arch=$1 name=ctlab_${version}_linux_$1
  local root=$work/tar/$name st=$work/tar-stage-$1
  stage "$st" "$arch"
  install -d "$root/completions"
  mv "$st/usr/bin" "$root/bin"
  mv "$st/usr/share/man" "$root/man"
  mv "$st/usr/share/bash-completion/completions/ctlab" "$root/completions/ctlab.bash"
  mv "$st/usr/share/zsh/vendor-completions/_ctlab" "$root/completions/_ctlab"
  mv "$st/usr/share/fish/vendor_completions.d/ctlab.fish" "$root/completions/ctlab.fish"
  sed "s/@VERSION@/$version/g; s/@ARCH@/$arch/g" $here/INSTALL >"$root/INSTALL"
  tar -C "$work/tar" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@"$SOURCE_DATE_EPOCH" \
    -cf - "$name" | gzip -6n >"$out/$name.tar.gz"
}

for arch in amd64 arm64; do
  if ! msg=$(build "$arch"); then
    [ "$arch" = amd64 ] && { echo "$msg" >&2; exit 1; }
    echo "dist: no $arch build: $(echo "$msg" | tail -5)" | tee "$out/NO-$arch.txt" >&2
    continue
  fi
  deb "$arch"
  tarball "$arch"
done
(cd "$out" && sha256sum -- *.deb *.tar.gz >SHA256SUMS)
ls -l "$out"

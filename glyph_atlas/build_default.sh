#!/usr/bin/env bash
# Rebuilds ocr_tf/assets/default_atlas.npz (and its .report.txt) from Debian
# font packages. Run from anywhere; needs apt-get (root or sudo) and a Python
# with numpy, Pillow and fontTools. Pass --no-install to skip apt-get.
# The faces, packages and licenses are listed in glyph_atlas/DEFAULT_ATLAS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  fonts-dejavu-core fonts-dejavu-extra
  fonts-liberation fonts-liberation2
  fonts-urw-base35
  fonts-lmodern
  fonts-noto-core fonts-noto-mono
  fonts-crosextra-carlito fonts-crosextra-caladea
  fonts-go
  fonts-roboto-unhinted
  fonts-open-sans
  fonts-lato
  fonts-cantarell
  fonts-inconsolata
  fonts-linuxlibertine
  fonts-sil-gentium
  fonts-comic-neue
  fonts-firacode
  fonts-jetbrains-mono
)

if [[ "${1:-}" != "--no-install" ]]; then
  SUDO=""
  if [[ $EUID -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
fi

echo "font packages used:" >&2
dpkg-query -W "${PACKAGES[@]}" >&2

PYTHON="${PYTHON:-python3}"
"$PYTHON" -m glyph_atlas \
  --out ocr_tf/assets/default_atlas.npz \
  --fonts \
    /usr/share/fonts/truetype/dejavu \
    /usr/share/fonts/truetype/liberation2 \
    /usr/share/fonts/truetype/liberation \
    /usr/share/fonts/opentype/urw-base35 \
    /usr/share/texmf/fonts/opentype/public/lm \
    /usr/share/fonts/truetype/noto \
    /usr/share/fonts/truetype/crosextra \
    /usr/share/fonts/fonts-go \
    /usr/share/fonts/truetype/roboto/unhinted \
    /usr/share/fonts/truetype/open-sans \
    /usr/share/fonts/truetype/lato \
    /usr/share/fonts/opentype/cantarell \
    /usr/share/fonts/truetype/inconsolata \
    /usr/share/fonts/opentype/linux-libertine \
    /usr/share/fonts/truetype/gentium \
    /usr/share/fonts/opentype/comic-neue \
    /usr/share/fonts/truetype/firacode \
    /usr/share/fonts/truetype/jetbrains-mono \
  --exclude '/dejavu/(?!(DejaVuSans(|-Bold|-Oblique)|DejaVuSansCondensed(|-Bold)|DejaVuSansMono(|-Bold)|DejaVuSerif(|-Bold|-Italic)|DejaVuSerifCondensed)\.ttf$)[^/]*$' \
  --exclude '/liberation2/[^/]*BoldItalic[^/]*$' \
  --exclude '/liberation/(?!LiberationSansNarrow-(Regular|Bold)\.ttf$)[^/]*$' \
  --exclude '/urw-base35/(D050000L|NimbusSansNarrow-(Bold)?Oblique|C059-BdIta|[^/]*-(BoldItalic|DemiItalic|DemiOblique))\.otf$' \
  --exclude '/lm/(?!(lmroman10-(regular|bold|italic)|lmsans10-(regular|bold|oblique)|lmmono10-regular)\.otf$)[^/]*$' \
  --exclude '/noto/(?!(Noto(Sans|Serif)-(Regular|Bold|Italic)|NotoSansMono-(Regular|Bold))\.ttf$)[^/]*$' \
  --exclude '/crosextra/[^/]*BoldItalic[^/]*$' \
  --exclude '/fonts-go/(?!(Go-(Regular|Bold|Italic)|Go-Mono(|-Bold))\.ttf$)[^/]*$' \
  --exclude '/roboto/(.*/)?(?!(Roboto(Condensed)?-(Regular|Bold)|Roboto-Italic)\.ttf$)[^/]*$' \
  --exclude '/open-sans/(?!OpenSans-(Regular|Bold|CondBold)\.ttf$)[^/]*$' \
  --exclude '/lato/(?!Lato-(Regular|Bold|Italic)\.ttf$)[^/]*$' \
  --exclude '/cantarell/(?!Cantarell-(Regular|Bold)\.otf$)[^/]*$' \
  --exclude '/linux-libertine/(LinBiolinum_K|LinLibertine_(DR|M|RZ|RZI|RBI))\.otf$' \
  --exclude '/gentium/GentiumAlt-[^/]*$' \
  --exclude '/comic-neue/(?!ComicNeue-(Regular|Bold)\.otf$)[^/]*$' \
  --exclude '/firacode/(?!FiraCode-Regular\.ttf$)[^/]*$' \
  --exclude '/jetbrains-mono/(?!JetBrainsMono-(Regular|Bold)\.ttf$)[^/]*$'

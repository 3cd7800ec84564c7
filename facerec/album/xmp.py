"""Face regions as XMP sidecars (MWG-RS), the format digiKam, Lightroom and Picasa read and write.

A region is the face's box, normalised to the photo's size, its *centre* as
`stArea:x`/`stArea:y` (Metadata Working Group, "Guidelines for Handling
Image Metadata" 2.0, section 5.9), with the person's name and Type Face.
Sidecars are written next to the photo as `photo.jpg.xmp` (digiKam's and
darktable's naming; `photo.xmp` is read too); the photo itself is never
touched. A sidecar that exists is left alone unless asked to overwrite it, as
it may hold another tool's metadata.

Reading treats every sidecar as hostile: a size cap, no DTD (so no entity
expansion), and values checked to be finite and inside the photo. Both the
attribute form (ours) and the element form (ExifTool's) are read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

#: Largest sidecar read, in bytes.
MAX_SIDECAR_BYTES = 1_000_000

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
ST_AREA = "http://ns.adobe.com/xmp/sType/Area#"
ST_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"


@dataclass(frozen=True, slots=True)
class Region:
    """A named face region, its box in photo pixels (x1, y1, x2, y2)."""

    name: str
    box: tuple[float, float, float, float]


class SidecarError(ValueError):
    """A sidecar that cannot be read as MWG-RS regions."""


def sidecar_path(photo: Path, out_dir: Path | None = None) -> Path:
    """Where a photo's sidecar goes: `photo.jpg.xmp` beside it, or in `out_dir`."""
    name = photo.name + ".xmp"
    return (out_dir / name) if out_dir is not None else photo.with_name(name)


def sidecars_of(photo: Path) -> list[Path]:
    """The sidecars another tool may have written for `photo` (`photo.jpg.xmp`, `photo.xmp`)."""
    return [
        p for p in (photo.with_name(photo.name + ".xmp"), photo.with_suffix(".xmp")) if p.is_file()
    ]


def to_xmp(regions: Sequence[Region], width: int, height: int) -> str:
    """An XMP packet holding `regions` of a `width` x `height` photo."""
    items = []
    for r in regions:
        x1, y1, x2, y2 = r.box
        w, h = (x2 - x1) / width, (y2 - y1) / height
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        items.append(
            "     <rdf:li>\n"
            f'      <rdf:Description mwg-rs:Name={quoteattr(r.name)} mwg-rs:Type="Face">\n'
            f'       <mwg-rs:Area stArea:x="{cx:.6f}" stArea:y="{cy:.6f}" '
            f'stArea:w="{w:.6f}" stArea:h="{h:.6f}" stArea:unit="normalized"/>\n'
            "      </rdf:Description>\n"
            "     </rdf:li>\n"
        )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="facerec">\n'
        f' <rdf:RDF xmlns:rdf="{RDF}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:mwg-rs="{MWG_RS}"\n    xmlns:stArea="{ST_AREA}"\n    xmlns:stDim="{ST_DIM}">\n'
        '   <mwg-rs:Regions rdf:parseType="Resource">\n'
        f'    <mwg-rs:AppliedToDimensions stDim:w="{width}" stDim:h="{height}" stDim:unit="pixel"/>\n'
        "    <mwg-rs:RegionList>\n     <rdf:Bag>\n"
        + "".join(items)
        + "     </rdf:Bag>\n    </mwg-rs:RegionList>\n   </mwg-rs:Regions>\n"
        '  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n'
    )


def read_regions(path: Path, width: int, height: int) -> list[Region]:
    """The named Face regions of a sidecar, as boxes of a `width` x `height` photo."""
    data = path.read_bytes()[: MAX_SIDECAR_BYTES + 1]
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(f"{path}: larger than {MAX_SIDECAR_BYTES} bytes")
    if re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise SidecarError(f"{path}: a DTD or entity declaration (refused)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SidecarError(f"{path}: not XML ({exc})") from None
    out = []
    for li in root.iter(f"{{{RDF}}}li"):
        node = li.find(f"{{{RDF}}}Description")
        node = node if node is not None else li
        name, kind = _value(node, MWG_RS, "Name"), _value(node, MWG_RS, "Type")
        area = node.find(f"{{{MWG_RS}}}Area")
        if not name or (kind or "Face") != "Face" or area is None:
            continue
        try:
            cx, cy, w, h = (float(_value(area, ST_AREA, k) or "nan") for k in "xywh")
        except ValueError:
            continue
        if not all(math.isfinite(v) for v in (cx, cy, w, h)) or not (0 < w <= 1 and 0 < h <= 1):
            continue
        box = (
            max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height),
            min(float(width), (cx + w / 2) * width), min(float(height), (cy + h / 2) * height),
        )  # fmt: skip
        if box[0] < box[2] and box[1] < box[3]:
            out.append(Region(name.strip()[:200], box))
    return out


def _value(node: ET.Element, ns: str, key: str) -> str | None:
    """A property given as an attribute (`ns:key="v"`) or as a child element (`<ns:key>v</..>`)."""
    attr = node.get(f"{{{ns}}}{key}")
    if attr is not None:
        return attr
    child = node.find(f"{{{ns}}}{key}")
    return child.text if child is not None else None

"""An album scan's decoders stay within the decode budget (docs/limits.md), whatever the photos.

Before: 8 16-bit grey 8900x8900 PNGs (a megabyte each on disk) peaked at
2.3 GB with the default decoders and 5.6 GB with `--workers 3`, and a 32-bit
float TIFF was accepted. Each decode now reserves what its header announces
(`ImageHeader.decode_bytes`) from one `DecodeBudget` shared by the decoder
threads, 16-bit pixels are converted a strip at a time, and float pixels are
refused by name. Measured as the peak RSS of a real `facerec album scan`,
against the same command on one small photo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.faces.images import DEFAULT_DECODE_BUDGET

from ..bad_images import grey16_png, peak_rss_command
from ..conftest import shared_file

#: What the scan may hold besides its decoders' budget: the shrunk photos in flight
#: (a window of 1600 px photos) and allocator slack.
SLACK = 250 * 2**20


def scan_peak(folder: Path, db: Path, tmp: Path, env: dict[str, str]) -> tuple[int, dict]:
    out = tmp / f"peak-{folder.name}.txt"
    argv = ["album", "scan", str(folder), "--db", str(db), "--workers", "3", "--json"]
    r = subprocess.run(peak_rss_command(out, argv), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(out.read_text()), json.loads(r.stdout)


@pytest.mark.slow  # decodes four 79-megapixel images
def test_sixteen_bit_scans_stay_within_the_decode_budget(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(shared_file(shared, "face_recognition/examples/obama.jpg"), small / "obama.jpg")
    base, _ = scan_peak(small, tmp_path / "base.db", tmp_path, cli_env)

    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for i in range(4):
        (hostile / f"scan{i}.png").write_bytes(grey16_png(8900, 8900, level=1, seed=i))
    Image.fromarray(np.linspace(0, 1, 600 * 600, dtype=np.float32).reshape(600, 600)).save(
        hostile / "float.tif"
    )
    peak, summary = scan_peak(hostile, tmp_path / "hostile.db", tmp_path, cli_env)

    assert summary["processed"] == 4 and summary["errors"] == 1, summary
    over = (peak - base) / 2**20
    print(f"peak {peak / 2**20:.0f} MiB, small scan {base / 2**20:.0f} MiB, over {over:.0f} MiB")
    assert peak - base < DEFAULT_DECODE_BUDGET + SLACK, f"{over:.0f} MiB over the small scan"

    con = __import__("sqlite3").connect(tmp_path / "hostile.db")
    (error,) = con.execute("SELECT error FROM album_photos WHERE path LIKE '%float.tif'").fetchone()
    con.close()
    assert "floating-point pixels" in error, error

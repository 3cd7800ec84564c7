"""Memory a request can make the service spend is bounded by its decode budget (docs/limits.md).

Before: an enrolment of 10 black 4800x4900 PNGs (a 748 KiB body) raised the
server's RSS by ~835 MiB, and 4 such requests at once peaked at 3,636 MiB:
every upload was decoded before the model lock, outside any budget. Now a
request reserves, from its uploads' headers, what decoding and holding them
costs before it decodes anything, and requests beyond the budget wait their
turn (or get 503 when their time budget runs out). Measured on a real
`facerec serve`: its peak RSS (VmHWM) against its RSS before the requests.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from facerec.faces.images import DEFAULT_DECODE_BUDGET
from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..bad_images import solid_png
from ..served import serving_process

#: Besides the decode budget: the request bodies, the detector's shrunk copies, allocator slack.
SLACK = 250 * 2**20


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow  # decodes 40 uploads of 23.5 megapixels
def test_four_enrolments_of_ten_huge_black_pngs_stay_within_the_budget(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Database.open(db) as database:
        token = KeyStore(database).create("tests").token
    env = dict(os.environ, FACEREC_OFFLINE="1", FACEREC_DB=str(tmp_path / "unused.db"))
    black = solid_png(4800, 4900, (0, 0, 0), level=9)
    args = ["--db", str(db), "--log-level", "warning", "--request-budget", "120"]
    with serving_process(args, env, tmp_path / "server.log") as (url, proc):
        before = status_kib(proc.pid, "VmRSS")

        def enroll(i: int, n: int = 10) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=300) as c:
                return c.post(
                    "/v1/enroll",
                    data={"name": f"Black Square {i}"},
                    files=[("image", (f"black{j}.png", black, "image/png")) for j in range(n)],
                    headers={"Authorization": f"Bearer {token}"},
                )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(enroll, range(4)))
        peak = status_kib(proc.pid, "VmHWM")
    for r in answers:  # no face in a black square; nothing enrolled
        assert r.status_code == 422, r.text
    over = peak - before
    print(f"server RSS {before / 2**20:.0f} MiB before, peak {peak / 2**20:.0f} MiB")
    assert over < DEFAULT_DECODE_BUDGET + SLACK, f"{over / 2**20:.0f} MiB over"


def test_a_request_out_of_time_gets_503_with_retry_after_over_http(tmp_path: Path) -> None:
    """The promise clients retry by, over HTTP: 503 and `Retry-After: 1` when the budget runs out.

    Ten 23.5-megapixel uploads take seconds to decode, past a 0.3 s request budget.
    """
    db = tmp_path / "g.db"
    with Database.open(db) as database:
        token = KeyStore(database).create("tests").token
    env = dict(os.environ, FACEREC_OFFLINE="1", FACEREC_DB=str(tmp_path / "unused.db"))
    black = solid_png(4800, 4900, (0, 0, 0), level=9)
    args = ["--db", str(db), "--log-level", "warning", "--request-budget", "0.3"]
    with serving_process(args, env, tmp_path / "server.log") as (url, _):
        r = httpx.post(
            f"{url}/v1/enroll",
            data={"name": "Black Square"},
            files=[("image", (f"b{i}.png", black, "image/png")) for i in range(10)],
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after") == "1", r.headers
    assert r.json()["error"] == "ServiceBusyError" and "retry later" in r.json()["detail"], r.text

"""Two real processes on one real PostgreSQL: what one writes, the other's next `identify` sees.

The second process stands for a second machine: it keeps its own FAISS cache
of the gallery in memory. The bound stated in docs/postgresql.md is "the next
query": every search reads the gallery revision first, in the same snapshot
as everything else it reads, and catches its cache up before answering. So
right after the enrolment commits, the other process's very next identify
names the new person, and right after a `remove` commits its very next
identify answers unknown. It also must have patched its cache, not rebuilt
it (which at a million people would take the better part of a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from facerec.api import FaceRec

from ..conftest import shared_file

IDENTIFIER = textwrap.dedent(
    """
    import json, sys

    from facerec.api import FaceRec

    with FaceRec(sys.argv[1]) as fr:
        fr.check_model()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            photo = line.strip()
            result = fr.identify(photo)
            names = [f.identification.name for f in result.faces if f.identification is not None]
            cache = fr.gallery._search.cached
            print(json.dumps({
                "names": names,
                "cache": id(cache) if cache is not None else None,
                "revision": cache.stamp.revision if cache is not None else None,
            }), flush=True)
    """
)


def test_a_write_on_one_machine_is_seen_by_the_next_identify_on_another(
    postgres_url: str, shared: Path
) -> None:
    lfw = shared_file(shared, "lfw/images")
    powell = [lfw / "Colin_Powell" / f"Colin_Powell_000{i}.jpg" for i in (1, 2)]
    chavez = lfw / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"
    with FaceRec(postgres_url) as here:
        here.enroll("Hugo Chavez", [chavez])
        other = subprocess.Popen(
            [sys.executable, "-c", IDENTIFIER, postgres_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert other.stdout is not None and other.stdin is not None
            assert json.loads(other.stdout.readline()) == {"ready": True}, other.stderr

            def identify_there(photo: Path) -> dict[str, object]:
                assert other.stdin is not None and other.stdout is not None
                other.stdin.write(f"{photo}\n")
                other.stdin.flush()
                line = other.stdout.readline()
                assert line, other.stderr.read() if other.stderr else ""
                answer: dict[str, object] = json.loads(line)
                return answer

            before = identify_there(powell[1])
            assert before["names"] == [None]  # not enrolled yet: unknown

            here.enroll("Colin Powell", [powell[0]])
            enrolled = identify_there(powell[1])
            assert enrolled["names"] == ["Colin Powell"]

            here.remove("Colin Powell")
            removed = identify_there(powell[1])
            assert removed["names"] == [None]
            assert identify_there(chavez)["names"] == ["Hugo Chavez"]

            # One cache all along, patched at each revision rather than rebuilt.
            assert before["cache"] == enrolled["cache"] == removed["cache"] is not None
            assert [before["revision"], enrolled["revision"], removed["revision"]] == [1, 2, 3]
        finally:
            if other.stdin is not None:
                other.stdin.close()
            other.wait(timeout=60)
    assert other.returncode == 0, other.stderr.read() if other.stderr else ""

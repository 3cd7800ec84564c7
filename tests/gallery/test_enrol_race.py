"""Two processes enrolling two different men under one new name at the same moment.

Found by a red team: the enrolment check read the gallery, then the write
transaction began, and nothing re-checked under the lock, so both checks saw
a name nobody held and both writes went in; `verify` then let both men in.
Here each process, with the real default pipeline and real LFW photos, reads
what the check needs (`Gallery.person_snapshot`) and then waits at a
two-process barrier until the other has read too: the worst interleaving,
every time, instead of a race won by chance. On SQLite and on a real
PostgreSQL one of them must be sent back to check against the other's
photo, refused with the reason, and the name must hold one man.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from facerec.api import FaceRec

from ..conftest import shared_file

NAME = "Alex Mercer"

ENROLLER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from facerec.api import FaceRec
    from facerec.decisions.enrolment import EnrolmentError
    from facerec.gallery.store import Gallery

    url, name, photo, me, barrier = sys.argv[1:6]
    barrier = Path(barrier)
    read = Gallery.person_snapshot
    waited = []

    def snapshot_then_wait(self, who):
        seen = read(self, who)
        if not waited:  # only the first check waits: a re-check must go straight on
            waited.append(True)
            (barrier / me).touch()
            deadline = time.monotonic() + 120
            while len(list(barrier.iterdir())) < 2:
                if time.monotonic() > deadline:
                    sys.exit("the other enrolment never came")
                time.sleep(0.005)
        return seen

    Gallery.person_snapshot = snapshot_then_wait
    with FaceRec(url) as fr:
        fr.check_model()  # load the models before the race, so both reach the barrier together
        try:
            result = fr.enroll(name, [photo])
            print(json.dumps({"enrolled": result.added}))
        except EnrolmentError as e:
            print(json.dumps({"refused": type(e).__name__, "why": str(e)}))
    """
)


def test_one_new_name_raced_by_two_men_ends_with_one(
    empty_db_url: str, shared: Path, tmp_path: Path
) -> None:
    lfw = shared_file(shared, "lfw/images")
    photos = {
        "powell": lfw / "Colin_Powell" / "Colin_Powell_0001.jpg",
        "chavez": lfw / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg",
    }
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = {
        who: subprocess.Popen(
            [sys.executable, "-c", ENROLLER, empty_db_url, NAME, str(photo), who, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who, photo in photos.items()
    }
    outcome = {}
    for who, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outcome[who] = json.loads(out.strip().splitlines()[-1])

    winners = [who for who, o in outcome.items() if "enrolled" in o]
    assert len(winners) == 1, outcome
    (loser,) = set(photos) - set(winners)
    # The loser is told why: its photo does not match the man now enrolled under the name.
    assert outcome[loser]["refused"] == "PhotoMismatchError", outcome
    assert Path(photos[loser]).name in outcome[loser]["why"]

    with FaceRec(empty_db_url) as fr:
        assert [(p.name, p.n_samples) for p in fr.people()] == [(NAME, 1)]
        assert fr.verify(NAME, photos[winners[0]]).accepted
        assert not fr.verify(NAME, photos[loser]).accepted

"""docs/reliability.md names real tests: every ``tests/<file>.py::<test>`` it cites exists, and
every corpus id it cites is one of the hostile corpus's."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "reliability.md").read_text()


def test_every_cited_test_exists() -> None:
    """A renamed or deleted test cannot leave the table pointing at nothing."""
    cited = re.findall(r"`(tests/[a-z_/]+\.py)::([a-z_0-9]+)(?:\[[^\]]*\])?`", DOC)
    assert len(cited) > 20
    for path, name in cited:
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, flags=re.MULTILINE), f"{path}::{name}"
    for path in set(re.findall(r"`(tests/[a-z_/]+\.py)`", DOC)):
        assert (ROOT / path).is_file(), path


def test_every_cited_corpus_id_exists() -> None:
    """``corpus ids `x`, `y-*``` name entries of the hostile corpus."""
    from tests.unit.contract.test_hostile import CORPUS

    ids = {param.id for param in CORPUS}
    for line in DOC.splitlines():
        if "corpus id" not in line:
            continue
        for cited in re.findall(r"`([a-z0-9.*-]+)`", line.split("corpus id", 1)[1]):
            pattern = re.compile(re.escape(cited).replace(r"\*", ".*") + "$")
            assert any(pattern.match(i) for i in ids), cited

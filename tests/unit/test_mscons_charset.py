"""The character set of an MSCONS interchange: as its UNB syntax identifier declares, and
UTF-8 written under a single-byte declaration (UNOC, ISO 8859-1) read as UTF-8 and said
once, never stored garbled ('Zähler' as 'ZÃ¤hler')."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from vbatt.ingest.load import ingest_file
from vbatt.ingest.mscons import MsconsError, read_mscons

# a 2.4c load profile, UNB+UNOC:3, with its location id replaced by one beyond ASCII
PROFILE = Path(__file__).resolve().parents[1] / "data/mscons/variants/2.4c-profile-dtm-304.edi"
LOCATION = "DE0001234567890000000000000000002"
METER = "Zähler-Süd-2"


def _written(tmp_path: Path, encoding: str, syntax: str = "UNOC") -> Path:
    content = PROFILE.read_text(encoding="ascii").replace(LOCATION, METER)
    path = tmp_path / f"{syntax}-{encoding}.edi"
    path.write_bytes(content.replace("UNB+UNOC:3", f"UNB+{syntax}:3").encode(encoding))
    return path


def _charset_notes(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "UTF-8" in w]


def test_utf8_under_unoc_is_read_as_utf8_and_said_once(tmp_path):
    interchange = read_mscons(_written(tmp_path, "utf-8"))
    assert {s.location_id for _, s in interchange.series()} == {METER}
    (note,) = _charset_notes(interchange.warnings)
    assert note.startswith("declares UNOC (ISO 8859-1) but is written in UTF-8 (2 characters")
    assert f"LOC+172+{METER}" in note and "ask the sender to declare UNOW" in note


@pytest.mark.parametrize(("syntax", "encoding"), [("UNOC", "latin-1"), ("UNOW", "utf-8")])
def test_the_declared_character_set_is_read_without_a_note(tmp_path, syntax, encoding):
    interchange = read_mscons(_written(tmp_path, encoding, syntax))
    assert {s.location_id for _, s in interchange.series()} == {METER}
    assert _charset_notes(interchange.warnings) == []


def test_latin2_is_read_as_declared(tmp_path):
    path = tmp_path / "unod.edi"
    content = PROFILE.read_text(encoding="ascii").replace("UNB+UNOC:3", "UNB+UNOD:3")
    path.write_bytes(content.replace(LOCATION, "Łódź-1").encode("iso8859-2"))
    assert {s.location_id for _, s in read_mscons(path).series()} == {"Łódź-1"}


def test_a_file_declaring_utf8_in_another_set_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(MsconsError) as refused:
        read_mscons(_written(tmp_path, "latin-1", "UNOW"))
    assert str(refused.value) == (
        "UNOW-latin-1.edi: declares UNOW (UTF-8), but byte 0xe4 at line 1 is not UTF-8:"
        " ask the sender to declare the character set the file is in (UNOW for UTF-8, UNOC"
        " for ISO 8859-1)"
    )


def test_a_byte_the_declared_set_lacks_is_refused_with_what_to_do(tmp_path):
    """ISO 8859-7 (UNOF) has no character for 0xae: the file is refused as MSCONS, not
    taken for a CSV that should be saved as UTF-8."""
    path = tmp_path / "unof.edi"
    content = PROFILE.read_text(encoding="ascii").replace("UNB+UNOC:3", "UNB+UNOF:3")
    path.write_bytes(content.replace(LOCATION, "M\xae-1").encode("latin-1"))
    with pytest.raises(MsconsError, match=r"declares UNOF \(ISO 8859-7\), but byte 0xae"):
        read_mscons(path)


def test_the_meter_id_is_stored_as_sent_and_the_load_says_how_it_was_read(engine, raw, tmp_path):
    outcome = ingest_file(engine, _written(tmp_path, "utf-8"), raw_schema=raw)
    assert outcome.status == "loaded"
    assert len(_charset_notes(outcome.warnings)) == 1
    with engine.connect() as conn:
        meters = conn.execute(
            text(f"select distinct meter_id from {raw}.interval_energies")
        ).scalars()
        assert list(meters) == [METER]
        stored = conn.execute(text(f"select warnings from {raw}.files")).scalar_one()
    assert "written in UTF-8" in stored

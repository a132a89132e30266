"""The canonical model and code lists."""

import pytest

from crimeaudit.model import TABLES, Estimate, load_code_lists
from crimeaudit.model.schema import INCIDENTS


def test_every_offence_has_a_known_strand_and_rank():
    codes = load_code_lists()
    assert len(codes.offences) >= 40
    for o in codes.offences.values():
        assert o.strand in codes.strands
        assert 0 <= o.seriousness_rank <= 100


def test_rape_is_part_of_sexual_offences_and_all_crime():
    codes = load_code_lists()
    assert codes.strands_of("19C") == ["rape", "sexual", "all"]
    assert "19C" in codes.codes_in_strand("sexual")
    assert "19C" not in codes.codes_in_strand("violence")


def test_downgrades_follow_seriousness():
    codes = load_code_lists()
    assert codes.is_downgrade("8N", "105A")
    assert codes.is_downgrade("28E", "49")
    assert not codes.is_downgrade("105A", "8N")


def test_c_codes_map_to_reasons():
    codes = load_code_lists()
    assert codes.cancellation_reason_for_c_code("c2") == "avi"
    with pytest.raises(KeyError):
        codes.cancellation_reason_for_c_code("C9")


def test_user_can_replace_a_code_list(tmp_path):
    (tmp_path / "offences.csv").write_text(
        "code,description,offence_group,strand,seriousness_rank\n"
        "X1,Local offence,Other,other,10\n"
    )
    codes = load_code_lists(str(tmp_path))
    assert list(codes.offences) == ["X1"]
    assert "8N" not in codes.offences
    assert "avi" in codes.cancellation_reasons  # the other lists stay the shipped ones


def test_unknown_strand_in_replacement_is_refused(tmp_path):
    (tmp_path / "offences.csv").write_text(
        "code,description,offence_group,strand,seriousness_rank\nX1,Local,Other,fraud,10\n"
    )
    with pytest.raises(ValueError, match="unknown strand 'fraud'"):
        load_code_lists(str(tmp_path))


def test_schemas_mark_personal_fields_and_keys():
    assert INCIDENTS.column("victim").personal
    assert not INCIDENTS.column("narrative").required
    assert TABLES["crimes"].key == ("crime_id",)
    assert TABLES["crimes"].arrow_schema().field("crime_id").nullable is False


def test_estimate_round_trips_and_summarises():
    e = Estimate("recording_rate", "violence", 0.8, 0.75, 0.85, 0.95, "wilson", 300, 240, 300)
    assert Estimate.from_dict(e.to_dict()) == e
    assert "80.0%" in e.summary() and "wilson" in e.summary() and "n=300" in e.summary()


def test_data_model_doc_matches_the_code():
    from pathlib import Path

    from crimeaudit.model.schema import STAGE_TABLES, render_markdown

    doc = (Path(__file__).parents[1] / "docs" / "data-model.md").read_text()
    generated = doc.split("it is current -->\n", 1)[1].split("<!-- end generated -->")[0]
    assert generated == render_markdown(), "regenerate docs/data-model.md from the schema"
    stage = doc.split("render_markdown(STAGE_TABLES); a test checks it is current -->\n", 1)[1]
    stage = stage.split("<!-- end generated stage tables -->")[0]
    assert stage == render_markdown(STAGE_TABLES), "regenerate the stage tables in data-model.md"


def test_public_api_names_all_resolve():
    import crimeaudit

    missing = [n for n in crimeaudit.__all__ if not hasattr(crimeaudit, n)]
    assert missing == []

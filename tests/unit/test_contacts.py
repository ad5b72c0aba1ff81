from pathlib import Path

import pytest

from supervisor.config.contacts import Directory, DirectoryModel, load_directory, mask_phone
from supervisor.config.yamlconf import ConfigInvalid

CONFIG = Path(__file__).resolve().parents[2] / "config" / "contacts.yaml"

SMALL = """\
people:
  zhang: {name: 张敏, phone: "138 0013 8001", channels: [sms, voice]}
  wang: {name: 王强, phone: 13800138011}
  li: {name: 李华, channels: [console]}
street:
  supervisor: [zhang]
  leader: []
units:
  城管执法中队: {name: 城管执法中队, liaison: [wang], head: []}
grids:
  G01: [wang]
  G02: []
"""


def test_shipped_directory_is_complete():
    directory = load_directory(CONFIG)
    assert directory.gaps() == []
    assert len(directory.model.units) >= 5


def test_phones_are_normalised_to_e164():
    directory = load_directory("c.yaml", SMALL)
    assert directory.person("zhang").phone == "+8613800138001"
    assert directory.person("wang").phone == "+8613800138011"  # unquoted: an int in YAML
    assert directory.person("li").phone is None


def test_invalid_phone_names_the_person_and_line():
    text = SMALL.replace('"138 0013 8001"', '"12345"')
    with pytest.raises(ConfigInvalid) as exc:
        load_directory("c.yaml", text)
    [err] = exc.value.errors
    assert (err.file, err.line, err.key) == ("c.yaml", 2, "people.zhang.phone")
    assert "'12345' is not a valid phone number" in err.message and "张敏" in err.message


def test_sms_needs_a_phone():
    with pytest.raises(
        ConfigInvalid, match="c.yaml:4: people.li: 李华 has channel sms but no phone"
    ):
        load_directory("c.yaml", SMALL.replace("channels: [console]", "channels: [sms]"))


def test_misspelt_key_has_line_and_allowed_keys():
    text = SMALL.replace("liaison: [wang]", "liason: [wang]")
    with pytest.raises(ConfigInvalid) as exc:
        load_directory("c.yaml", text)
    [err] = exc.value.errors
    assert (err.line, err.key) == (9, "units.城管执法中队.liason")
    assert "not one of: name, liaison, head" in err.message
    assert str(err).startswith("c.yaml:9: units.城管执法中队.liason: unknown key")


def test_unknown_person_reference_has_its_line():
    text = SMALL.replace("G01: [wang]", "G01: [wnag]")
    with pytest.raises(ConfigInvalid) as exc:
        load_directory("c.yaml", text)
    [err] = exc.value.errors
    assert (err.line, err.key) == (11, "grids.G01.0")
    assert "unknown person 'wnag'" in err.message and "did you mean 'wang'" in err.message


def test_unknown_channel():
    with pytest.raises(ConfigInvalid, match="c.yaml:3: people.wang.channels.0"):
        load_directory(
            "c.yaml", SMALL.replace("phone: 13800138011}", "phone: 13800138011, channels: [fax]}")
        )


def test_resolve_roles():
    directory = load_directory("c.yaml", SMALL)
    [liaison] = directory.resolve("liaison", unit="城管执法中队", grid=None)
    assert (liaison.person, liaison.role, liaison.fallback_reason) == ("wang", "liaison", None)
    [grid] = directory.resolve("grid", unit=None, grid="G01")
    assert grid.person == "wang" and grid.channels == ("sms",)
    assert [r.person for r in directory.resolve("supervisor", unit=None, grid=None)] == ["zhang"]


@pytest.mark.parametrize(
    ("role", "unit", "grid", "reason"),
    [
        ("head", "城管执法中队", None, "no head for unit '城管执法中队'"),
        ("liaison", "没有的单位", None, "unit '没有的单位' is not in the contact directory"),
        ("liaison", None, None, "no unit given for the liaison"),
        ("leader", None, None, "no street leader in the contact directory"),
        ("grid", None, "G02", "no member for grid 'G02'"),
        ("grid", None, None, "the ticket has no grid"),
    ],
)
def test_missing_role_falls_back_to_the_supervisor(role, unit, grid, reason):
    [r] = load_directory("c.yaml", SMALL).resolve(role, unit=unit, grid=grid)
    assert r.person == "zhang" and r.role == role
    assert r.fallback_reason == f"{reason}; sent to the supervisor instead"


def test_no_supervisor_means_nobody_and_the_caller_reports_it():
    directory = load_directory("c.yaml", SMALL.replace("supervisor: [zhang]", "supervisor: []"))
    assert directory.resolve("head", unit="城管执法中队", grid=None) == []
    assert directory.resolve("supervisor", unit=None, grid=None) == []


def test_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown role"):
        load_directory("c.yaml", SMALL).resolve("mayor", unit=None, grid=None)


def test_gaps():
    assert load_directory("c.yaml", SMALL).gaps() == [
        "the street has no leader",
        "unit '城管执法中队' has no head",
        "grid 'G02' has no member",
    ]


def test_hand_built_model_with_unknown_reference_is_refused():
    model = DirectoryModel.model_validate({"people": {}, "grids": {"G01": ["ghost"]}})
    with pytest.raises(ValueError, match="unknown person 'ghost'"):
        Directory(model)


def test_mask_phone():
    assert mask_phone("+8613812341234") == "138****1234"
    assert mask_phone("+861065123456") == "106****3456"
    assert mask_phone("123") == "****"


def test_resolve_answers_are_remembered_as_they_were_given():
    """Directory.resolve keeps its answers: asked again (after the caller changed the list it
    got), it gives what a directory asking afresh gives, for every role, unit and grid."""
    from supervisor.config import contacts

    directory = load_directory("c.yaml", SMALL)
    questions = [(role, unit, grid) for role in ("liaison", "head", "supervisor", "leader", "grid")
                 for unit in (None, "城管执法中队", "无此单位") for grid in (None, "G01", "G02", "G09")]  # fmt: skip
    for _ in range(3):
        for role, unit, grid in questions:
            got = directory.resolve(role, unit=unit, grid=grid)
            fresh = load_directory("c.yaml", SMALL).resolve(role, unit=unit, grid=grid)
            assert got == fresh, (role, unit, grid)
            got.append(None)  # type: ignore[arg-type]  # the caller's list, not the memo's
    with pytest.raises(ValueError, match="unknown role"):
        directory.resolve("mayor")
    # bounded: cleared when full, still right
    for k in range(contacts._RESOLVED_MAX + 10):
        directory.resolve("grid", grid=f"G{k}")
    assert len(directory._resolved) <= contacts._RESOLVED_MAX
    fresh = load_directory("c.yaml", SMALL)
    for grid in ("G01", "G5", f"G{contacts._RESOLVED_MAX + 5}"):
        assert directory.resolve("grid", grid=grid) == fresh.resolve("grid", grid=grid)

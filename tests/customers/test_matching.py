"""Probabilistic matching of files: small hand-made files whose true pairs are known."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from parcours.core.errors import InvalidInput
from parcours.customers.matching_engine import EngineOptions, score_pairs
from parcours.customers.matching_files import (
    column_mapping,
    load_input,
    match_files,
    parse_blocking,
    parse_mapping,
    read_table,
)
from parcours.customers.matching_records import clean_date, detect_columns, standardise

# A store loyalty file (French headers, `;`) and web accounts (English headers): four
# people are in both, with the typos people make; Martin Dupont of Lille and Martin
# Dupont of Nice are two people who share a name.
LOYALTY = """\
carte;Prénom;Nom;Date de naissance;Adresse;Code postal;Ville;Téléphone
L1;Élodie;Marchand;12/03/1985;12 rue des Lilas;69003;Lyon;06 12 34 56 78
L2;Karim;Benali;1979-07-30;4 avenue Foch;75016;Paris;
L3;Martin;Dupont;01/01/1990;8 place du Marché;59000;Lille;07 98 76 54 32
L4;Sophie;Lefebvre;23/11/1962;3 chemin Vert;33000;Bordeaux;06 11 22 33 44
L5;Jean;Morel;05/05/1955;1 rue Haute;67000;Strasbourg;
"""
WEB = """\
account,first_name,last_name,birth_date,address,postcode,city,phone,email
W1,Elodie,Marchant,1985-03-12,12 rue des lilas,69003,Lyon,+33612345678,elodie.m@example.fr
W2,Karim,Benalli,1979-07-30,4 av Foch,75016,Paris,,karim@example.fr
W3,Martin,Dupont,1971-06-14,22 promenade des Anglais,06000,Nice,+33650505050,mdupont@example.fr
W4,Sophie,Lefèbvre,1962-11-23,3 chemin vert,33000,Bordeaux,0611223344,
W5,Claire,Rousseau,1991-02-17,9 rue Neuve,44000,Nantes,,claire@example.fr
W6,Jean,Morel,1955-05-05,1 rue Haute,67000,Strasbourg,,
"""
TRUE_LINKS = {("L1", "W1"), ("L2", "W2"), ("L4", "W4"), ("L5", "W6")}

# One CRM export with three people entered twice.
CRM = """\
id,first_name,last_name,date_of_birth,address_1,postcode,suburb,phone_number,email
1,Lucie,Garnier,1988-04-02,5 rue Pasteur,31000,Toulouse,0601020304,lucie.garnier@example.fr
2,Paul,Girard,1970-09-09,17 quai Rambaud,69002,Lyon,,paul.girard@example.fr
3,Lucie,Garnier,02/04/1988,5 r Pasteur,31000,Toulouse,+33601020304,
4,Nadia,Haddad,1995-12-24,2 impasse Bleue,13001,Marseille,0788990011,
5,Paul,Girard,1970-09-09,17 quai Rambaud,69002,Lyon,,paul.girard@example.fr
6,Nadia,Hadad,1995-12-24,2 impasse bleue,13001,Marseille,07 88 99 00 11,nadia@example.fr
7,Hugo,Bernard,1983-01-15,40 cours Mirabeau,13100,Aix-en-Provence,,
8,Emma,Bernard,2001-08-30,40 cours Mirabeau,13100,Aix-en-Provence,,
"""
TRUE_DUPLICATES = {("1", "3"), ("2", "5"), ("4", "6")}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pairs_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["id_a"], frame["id_b"], strict=True))


def test_two_files_are_linked_on_their_true_pairs_only(tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    match_files(
        write(tmp_path, "loyalty.csv", LOYALTY),
        write(tmp_path, "web.csv", WEB),
        "carte",
        out,
        EngineOptions(threshold=0.9),
        id_column_b="account",
    )
    written = pd.read_csv(out, dtype=str)
    assert list(written.columns) == ["id_a", "id_b", "probability"]
    assert pairs_of(written) == TRUE_LINKS
    assert (written["probability"].astype(float) >= 0.9).all()


def test_one_file_is_deduplicated_and_each_pair_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    result = match_files(
        write(tmp_path, "crm.csv", CRM), None, "id", out, EngineOptions(threshold=0.9)
    )
    written = pd.read_csv(out, dtype=str)
    assert pairs_of(written) == TRUE_DUPLICATES
    assert all(a < b for a, b in pairs_of(written))
    assert result.scored.trained is False  # eight rows teach nothing: the priors are used


def test_namesakes_at_different_addresses_and_births_stay_apart(tmp_path: Path) -> None:
    loyalty = load_input(write(tmp_path, "l.csv", LOYALTY), "carte", ())
    web = load_input(write(tmp_path, "w.csv", WEB), "account", ())
    scored = score_pairs(loyalty.table, web.table, EngineOptions(threshold=1e-9))
    namesakes = scored.pairs[(scored.pairs["id_a"] == "L3") & (scored.pairs["id_b"] == "W3")]
    assert len(namesakes) == 1  # blocked together on first and last name...
    assert namesakes["probability"].iloc[0] < 0.01  # ...and scored apart
    assert namesakes["birth_date"].iloc[0] == "different"


def test_the_comparison_details_say_which_fields_agreed(tmp_path: Path) -> None:
    loyalty = load_input(write(tmp_path, "l.csv", LOYALTY), "carte", ())
    web = load_input(write(tmp_path, "w.csv", WEB), "account", ())
    scored = score_pairs(loyalty.table, web.table, EngineOptions(threshold=0.9))
    elodie = scored.pairs.set_index("id_a").loc["L1"]
    assert elodie["first_name"] == "exact"  # accents do not count
    assert elodie["last_name"] == "close"  # Marchand / Marchant
    assert elodie["birth_date"] == "exact"  # 12/03/1985 read day first
    assert elodie["phone"] == "exact"  # 06 12 34 56 78 and +33612345678
    assert "email" not in scored.fields  # the loyalty file has no email column


def test_results_are_the_same_for_the_same_seed(tmp_path: Path) -> None:
    crm = load_input(write(tmp_path, "crm.csv", CRM), "id", ())
    first = score_pairs(crm.table, None, EngineOptions(threshold=0.01, training="em", seed=7))
    again = score_pairs(crm.table, None, EngineOptions(threshold=0.01, training="em", seed=7))
    pd.testing.assert_frame_equal(first.pairs, again.pairs)
    assert first.trained


def test_blocking_rules_decide_which_pairs_are_compared(tmp_path: Path) -> None:
    crm = load_input(write(tmp_path, "crm.csv", CRM), "id", ())
    by_email = score_pairs(crm.table, None, EngineOptions(threshold=0.0001, blocking=(("email",),)))
    # Only Paul Girard's two rows share an email: no other pair is even compared.
    assert pairs_of(by_email.pairs) == {("2", "5")}
    assert by_email.blocking == (("email",),)


def test_a_blocking_rule_on_a_field_the_files_lack_is_refused(tmp_path: Path) -> None:
    loyalty = load_input(write(tmp_path, "l.csv", LOYALTY), "carte", ())
    web = load_input(write(tmp_path, "w.csv", WEB), "account", ())
    with pytest.raises(InvalidInput, match="uses email"):
        score_pairs(loyalty.table, web.table, EngineOptions(blocking=(("email",),)))


def test_common_column_names_are_recognised_in_french_and_english() -> None:
    found = detect_columns(
        ["Prénom", "NOM", "date_naissance", "address_1", "Suburb", "CP", "phone_number", "Mail"]
    )
    assert found == {
        "first_name": ["Prénom"],
        "last_name": ["NOM"],
        "birth_date": ["date_naissance"],
        "address": ["address_1"],
        "postcode": ["CP"],
        "city": ["Suburb"],
        "phone": ["phone_number"],
        "email": ["Mail"],
    }


def test_mapped_columns_win_and_several_columns_make_one_field() -> None:
    mapping = column_mapping(
        ["rec_id", "given_name", "street_number", "address_1", "ville"],
        parse_mapping(["street_number=address", "address_1=address", "given_name=last_name"]),
        "rec_id",
    )
    assert mapping == {
        "last_name": ["given_name"],
        "address": ["street_number", "address_1"],
        "city": ["ville"],
    }


def test_dates_of_birth_are_read_in_the_usual_formats() -> None:
    dates = pd.Series(["1985-03-12", "19850312", "12/03/1985", "12.03.1985", "31/02/1985", None])
    assert list(clean_date(dates).fillna("")) == ["1985-03-12"] * 4 + ["", ""]


def test_blocked_test_addresses_never_make_two_people_one() -> None:
    raw = pd.DataFrame({"email": ["test@test.com", "Lea@Example.fr "]})
    table = standardise(raw, pd.Series(["1", "2"]))
    assert table["email"].isna().iloc[0]
    assert table["email"].iloc[1] == "lea@example.fr"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["name"], "write COLUMN=FIELD"),
        (["prenom=given"], "unknown field 'given'"),
    ],
)
def test_bad_map_options_are_refused(option: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_mapping(option)


def test_bad_blocking_options_are_refused() -> None:
    with pytest.raises(InvalidInput, match="--blocking 'first_name,nickname'"):
        parse_blocking(["first_name,nickname"])


def test_a_missing_id_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no column 'client'.*carte, Prénom"):
        load_input(write(tmp_path, "l.csv", LOYALTY), "client", ())


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "id,first_name\n1,Ana\n1,Bob\n")
    with pytest.raises(InvalidInput, match="repeats '1'"):
        load_input(path, "id", ())


def test_a_mapped_column_in_neither_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"'prenom_client', which is not in crm\.csv"):
        match_files(
            write(tmp_path, "crm.csv", CRM),
            None,
            "id",
            tmp_path / "out.csv",
            EngineOptions(),
            parse_mapping(["prenom_client=first_name"]),
        )


def test_a_file_without_any_known_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "id,colour\n1,red\n2,blue\n")
    with pytest.raises(InvalidInput, match="no column to compare"):
        match_files(path, None, "id", tmp_path / "out.csv", EngineOptions())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        (b"", "the file is empty"),
        (b'id,name\n1,"unclosed\n', "not a readable CSV file"),
    ],
)
def test_unreadable_files_are_refused_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message) as caught:
        read_table(path)
    assert "\n" not in caught.value.detail


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nowhere\.csv: no such file"):
        read_table(tmp_path / "nowhere.csv")

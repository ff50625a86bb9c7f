"""The ZIP table answers every lookup as the `zipcodes` dataset does, and holds only what lookups use."""

import json
import subprocess
import sys

import pytest
import zipcodes

from app.schemas import geo
from app.schemas.geo import ZipDetails, zip_details
from app.schemas.ziptable import ZipEntry, ZipTable


@pytest.fixture(scope="module")
def dataset():
    """The library's own answer for each ZIP, with geo's rule: a time zone that is not an IANA name is none."""
    answers = {}
    for entry in zipcodes.list_all():
        timezone = entry["timezone"] if entry["timezone"] in geo.iana_timezones() else None
        answers[entry["zip_code"]] = (entry, ZipDetails(entry["state"], entry["city"], timezone))
    return answers


def test_zip_details_answer_as_the_dataset_for_every_five_digit_string(dataset):
    wrong = [
        zip5
        for zip5 in (f"{number:05d}" for number in range(100_000))
        if zip_details(zip5) != (dataset[zip5][1] if zip5 in dataset else None)
    ]
    assert wrong == []
    assert len(geo._zip_table()) == len(dataset)


def test_retired_zips_stay_known_with_their_details(dataset):
    retired = [zip5 for zip5, (entry, _) in dataset.items() if not entry["active"]]
    assert len(retired) > 1000
    assert all(zip_details(zip5) == dataset[zip5][1] for zip5 in retired)


def test_zips_without_a_real_time_zone_have_none(dataset):
    without = [zip5 for zip5, (entry, _) in dataset.items() if entry["timezone"] not in geo.iana_timezones()]
    assert len(without) > 800  # the military APO/FPO ZIPs have an empty one
    assert {zip_details(zip5).timezone for zip5 in without} == {None}
    assert zip_details("99634") == ZipDetails("AK", "Napakiak", None)  # the dataset names a place, not a zone


def test_served_timezones_hold_every_real_zone_of_the_dataset(dataset):
    zones = {entry["timezone"] for entry, _ in dataset.values()}
    assert zones & geo.iana_timezones() <= geo.served_timezones()
    assert "Napakiak" not in geo.served_timezones() and "" not in geo.served_timezones()


def test_zip_table_keeps_the_last_entry_of_a_zip_given_twice():
    table = ZipTable([("10001", ZipEntry("NY", "Old", "")), ("10001", ZipEntry("NY", "New York", "America/New_York"))])
    assert table.get("10001") == ZipEntry("NY", "New York", "America/New_York")
    assert len(table) == 1


@pytest.mark.parametrize("text", ["1000", "100011", "10001-1234", "1000a", "١٠٠٠١", "", "99999", "00000"])
def test_zip_table_knows_no_malformed_or_absent_zip(text):
    table = ZipTable([("10001", ZipEntry("NY", "New York", "America/New_York")), ("١٠٠٠٢", ZipEntry("NY", "x", ""))])
    assert table.get(text) is None


def test_zip_table_gives_back_names_as_spelled_empty_ones_included():
    entries = [
        ("00606", ZipEntry("PR", "Maricao", "America/Puerto_Rico")),
        ("00610", ZipEntry("PR", "Añasco", "")),
        ("09001", ZipEntry("AE", "Apo", "")),
    ]
    table = ZipTable(entries)
    assert table.get("00610") == ZipEntry("PR", "Añasco", "")
    assert table.get("00606") == ZipEntry("PR", "Maricao", "America/Puerto_Rico")
    assert table.get("09001") == ZipEntry("AE", "Apo", "")
    assert table.timezones() == frozenset({"America/Puerto_Rico", ""})


_MEASURE_WARM_UP = """
import gc, json
from app.schemas import geo
import zipcodes

gc.collect()
before = len(gc.get_objects())
geo.warm_up()
gc.collect()
print(json.dumps({"new_objects": len(gc.get_objects()) - before}))
"""


def test_warming_up_leaves_no_copy_of_the_library_dataset_alive():
    """The library's 42,789 dicts (170,000 objects for the garbage collector) are not kept: the table is a few flat
    arrays. How much memory that saves is `leadrelay bench`'s to show (a web process's resident memory)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE_WARM_UP], capture_output=True, text=True, check=True)
    grown = json.loads(result.stdout)
    assert grown["new_objects"] < 1_000

"""CsvRows (dropbench/atomic.py), behind metrics.csv: a file written whole after every
recorded epoch from rows formatted once is the file csv.DictWriter writes from all rows."""

import csv
import io

from dropbench.atomic import CsvRows


def dict_writer(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def test_every_write_is_the_whole_csv_of_the_rows_so_far(tmp_path):
    path, log, rows = tmp_path / "metrics.csv", CsvRows(), []
    for epoch in range(1, 8):
        row = {"epoch": epoch, "loss": 1 / epoch, "note": "a, \"quoted\" cell"}
        if epoch >= 5:  # a column that appears later: every row gets its empty cell
            row["max_norm_projected"] = epoch * 2
        rows.append(row)
        log.write(path, rows)
        assert path.read_text() == dict_writer(rows)
    rows[2]["loss"] = 99.0  # a row changed after it was written is formatted again
    log.write(path, rows)
    assert path.read_text() == dict_writer(rows)
    log.write(path, rows[:3])  # fewer rows (a resumed run's): only those
    assert path.read_text() == dict_writer(rows[:3])


def test_a_row_changed_in_place_is_not_served_from_before(tmp_path):
    path, log = tmp_path / "m.csv", CsvRows()
    rows = [{"epoch": 1, "loss": 0.5}]
    log.write(path, rows)
    rows[0]["loss"] = 0.25
    log.write(path, rows)
    assert "0.25" in path.read_text() and "0.5" not in path.read_text()

"""Every character set MariaDB offers round-trips byte for byte: snapshot and stream."""

from __future__ import annotations

from pathlib import Path

from hotsite.db import connect
from hotsite.dburl import DatabaseURL
from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import catch_up, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]
TEXT = "Zürich € 中文 日本 ÿ ß ą"


def _charsets(server: PrivateMariaDB) -> list[str]:
    return [
        str(r[0])
        for r in server.execute(
            "SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS ORDER BY 1"
        )
    ]


def _hex_rows(server: PrivateMariaDB, columns: list[str]) -> list[tuple[object, ...]]:
    hexed = ", ".join(f"HEX(`{c}`)" for c in columns)
    return server.execute(f"SELECT id, {hexed} FROM app.cs ORDER BY id")


def test_every_charset_and_latin1s_odd_bytes_round_trip_exactly(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    charsets = _charsets(source)
    assert len(charsets) > 30
    columns = [f"c_{cs}" for cs in charsets] + ["l_enum", "l_set", "l_key"]
    definitions = ", ".join(f"`c_{cs}` VARCHAR(40) CHARACTER SET {cs} NULL" for cs in charsets)
    source.execute(
        f"CREATE TABLE app.cs (id INT PRIMARY KEY, {definitions},"
        " l_enum ENUM('é', 'ü', 'x') CHARACTER SET latin1,"
        " l_set SET('à', 'ö', 'y') CHARACTER SET latin1,"
        " l_key VARCHAR(10) CHARACTER SET latin1, UNIQUE KEY (l_key))"
    )

    def insert(row_id: int) -> None:
        values = ", ".join(f"CONVERT(_utf8mb4'{TEXT}' USING {cs})" for cs in charsets)
        source.execute(
            "SET SESSION sql_mode = ''",  # characters a charset lacks become '?'
            f"INSERT INTO app.cs VALUES ({row_id}, {values}, 'ü', 'à,ö',"
            f" CONCAT(X'818D8F909D', {row_id}))",
        )

    insert(1)
    source.execute("UPDATE app.cs SET c_latin1 = X'818D8F909DE9' WHERE id = 1")
    source.execute("ALTER DATABASE app CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    config = write_config(tmp_path, source, target)
    catch_up(config)  # the snapshot
    assert _hex_rows(target, columns) == _hex_rows(source, columns)
    schema = (
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA"
        " WHERE SCHEMA_NAME = 'app'"
    )
    assert target.execute(schema) == source.execute(schema) == [("latin1", "latin1_swedish_ci")]
    insert(2)  # streamed
    source.execute(
        "UPDATE app.cs SET c_ucs2 = CONVERT(_utf8mb4'ωψ' USING ucs2), l_enum = 'é',"
        " c_latin1 = X'9D8F81' WHERE id = 2"
    )
    insert(3)
    source.execute("DELETE FROM app.cs WHERE id = 3")
    catch_up(config)
    assert _hex_rows(target, columns) == _hex_rows(source, columns)


def test_a_connection_is_utf8mb4_in_utc_after_one_statement_at_connect(
    source_and_target: Servers,
) -> None:
    """``SET NAMES`` and the session's time zone travel in one statement (db.py)."""
    source, _ = source_and_target
    conn = connect(DatabaseURL.parse(source.url()), "primary")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT @@SESSION.time_zone, @@SESSION.character_set_client,"
                " @@SESSION.character_set_results, @@SESSION.character_set_connection"
            )
            assert cur.fetchone() == ("+00:00", "utf8mb4", "utf8mb4", "utf8mb4")
            cur.execute(
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS"
                " WHERE VARIABLE_NAME = 'QUESTIONS'"
            )
            # SET NAMES with the time zone, then these two: nothing else was sent
            assert int(cur.fetchone()[0]) == 3
    finally:
        conn.close()

from hotsite.testing.mariadb import PrivateMariaDB


def test_private_server_has_binlog_ready_for_capture(
    source_and_target: tuple[PrivateMariaDB, PrivateMariaDB],
) -> None:
    source, target = source_and_target
    rows = dict(
        source.execute(
            "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES"
            " WHERE VARIABLE_NAME IN ('LOG_BIN','BINLOG_FORMAT','BINLOG_ROW_IMAGE','BINLOG_ROW_METADATA')"
        )
    )
    assert rows == {
        "LOG_BIN": "ON",
        "BINLOG_FORMAT": "ROW",
        "BINLOG_ROW_IMAGE": "FULL",
        "BINLOG_ROW_METADATA": "FULL",
    }
    assert source.port != target.port
    assert source.execute("SELECT @@server_id") != target.execute("SELECT @@server_id")

from hotsite.testing.mariadb import PrivateMariaDB, free_port


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


def test_a_port_taken_before_the_server_binds_it_is_chosen_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Between free_port() and mariadbd's bind another process can take the port (a
    parallel test worker): the server then starts on another one, from a fresh datadir
    copy (the template), with a binary log of its own."""
    import socket

    from hotsite.testing import mariadb

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        draws = iter([taken])
        monkeypatch.setattr(mariadb, "free_port", lambda: next(draws, None) or free_port())
        server = PrivateMariaDB(server_id=4242).start()
        try:
            assert server.port != taken
            assert server.execute("SELECT @@port, @@server_id, @@gtid_binlog_pos") == [
                (server.port, 4242, "")
            ]
        finally:
            server.stop()

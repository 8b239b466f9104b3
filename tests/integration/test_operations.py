"""Operations: how hotsite reaches servers, what it checks before it starts, and how it
behaves when its own files or the servers get in the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.helpers import catch_up, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def socket_url(server: PrivateMariaDB) -> str:
    """A URL whose TCP port leads nowhere: only its socket reaches the server."""
    return f"mysql://root@127.0.0.1:{free_port()}/app?socket={server.socket_path}"


@pytest.mark.parametrize("decoder", ["library", "fast"])
def test_both_decoders_connect_through_the_socket_of_the_url(
    source_and_target: Servers, tmp_path: Path, decoder: str
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target, decoder=decoder)
    text = config.read_text()
    config.write_text(
        text.replace(source.url(), socket_url(source)).replace(target.url(), socket_url(target))
    )
    catch_up(config)  # the snapshot
    source.execute("INSERT INTO app.t VALUES (2), (3)")
    catch_up(config)  # streamed by the decoder, over the source's socket
    assert target.execute("SELECT id FROM app.t ORDER BY id") == [(1,), (2,), (3,)]

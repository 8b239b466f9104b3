"""db.error_code / error_message: the one reading of a driver error's number and text."""

from __future__ import annotations

import pymysql

from hotsite.db import error_code, error_message, error_reason, is_unavailable


def test_code_and_message_of_a_server_error() -> None:
    exc = pymysql.err.IntegrityError(1062, "Duplicate entry 'ann@example.org' for key 'email'")
    assert error_code(exc) == 1062
    assert error_message(exc) == "Duplicate entry 'ann@example.org' for key 'email'"
    assert error_reason(exc) == "Duplicate entry '…' for key 'email'"  # no row value


def test_errors_without_a_number() -> None:
    assert error_code(ValueError("bad")) is None and error_message(ValueError("bad")) == "bad"
    assert error_code(pymysql.err.InterfaceError("(0, '')")) is None
    assert error_message(TimeoutError()) == "TimeoutError"
    assert is_unavailable(pymysql.err.OperationalError(2013, "Lost connection"))
    assert not is_unavailable(pymysql.err.OperationalError(1045, "Access denied"))

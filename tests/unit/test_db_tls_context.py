"""pymysql's TLS-if-offered mode (a site without ``tls``) shares one context: it verified
nothing per connection either, and building it cost 20 ms of CPU each time."""

from __future__ import annotations

import ssl

from hotsite import db


def _unconnected() -> db._PymysqlConnection:
    return object.__new__(db._PymysqlConnection)  # no server: only its context is asked for


def test_the_offered_tls_context_is_built_once_and_verifies_nothing() -> None:
    first = _unconnected()._create_ssl_ctx({})
    again = _unconnected()._create_ssl_ctx({})
    assert first is again
    assert first.verify_mode == ssl.CERT_NONE and not first.check_hostname


def test_a_sites_own_context_is_used_as_given() -> None:
    own = ssl.create_default_context()
    assert _unconnected()._create_ssl_ctx(own) is own
    verified = _unconnected()._create_ssl_ctx({"ca": None, "verify_mode": True})
    assert verified is not _unconnected()._create_ssl_ctx({})
    assert verified.verify_mode == ssl.CERT_REQUIRED

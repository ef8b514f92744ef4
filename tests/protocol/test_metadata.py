from __future__ import annotations

from dataclasses import replace

from grantline.protocol.metadata import server_metadata
from grantline.settings import Settings


def test_metadata_is_derived_from_settings(settings: Settings) -> None:
    doc = server_metadata(settings)
    assert doc["issuer"] == settings.issuer
    assert doc["pushed_authorization_request_endpoint"] == settings.issuer + "/par"
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert doc["scopes_supported"] == sorted(settings.scopes)


def test_par_switch_is_reflected(settings: Settings) -> None:
    relaxed = replace(settings, require_pushed_authorization_requests=False)
    assert server_metadata(relaxed)["require_pushed_authorization_requests"] is False

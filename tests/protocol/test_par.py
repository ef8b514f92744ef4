from __future__ import annotations

import time

import pytest

from grantline.errors import InvalidRequestUri, PageOnlyInvalidRequest
from grantline.models import Client
from grantline.protocol.par import (
    REQUEST_URI_PREFIX,
    check_front_channel_params,
    new_reference,
    pushed_request_lifetime,
    reference_id,
    request_uri_secret,
)
from grantline.tokens.digest import Digester, new_secret

DIGESTER = Digester(b"k" * 32)

CLIENT = Client("c", "C", "client_secret_basic", ("https://c.example/cb",))


def test_request_uri_secret_strips_the_prefix() -> None:
    assert request_uri_secret(REQUEST_URI_PREFIX + "abc") == "abc"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("https://evil.example/request.jwt", id="remote-uri"),
        pytest.param(REQUEST_URI_PREFIX, id="empty-secret"),
        pytest.param(REQUEST_URI_PREFIX + "x" * 500, id="oversized"),
        pytest.param("urn:ietf:params:oauth:request_uri", id="no-colon"),
    ],
)
def test_foreign_request_uris_are_invalid_request_uri(value: str) -> None:
    with pytest.raises(InvalidRequestUri) as info:
        request_uri_secret(value)
    assert info.value.redirectable is False


def test_lifetime_follows_server_default_then_client_then_cap() -> None:
    assert pushed_request_lifetime(60, CLIENT) == 60
    assert pushed_request_lifetime(60, Client("c", "C", "none", (), par_lifetime=10)) == 10
    assert pushed_request_lifetime(60, Client("c", "C", "none", (), par_lifetime=10_000)) == 600


PUSHED = {"client_id": "c", "scope": "inbox.read", "state": "s1", "redirect_uri": "https://c/cb"}


def test_front_channel_may_repeat_pushed_values() -> None:
    check_front_channel_params(
        {"client_id": "c", "request_uri": "u", "scope": "inbox.read"}, PUSHED
    )


@pytest.mark.parametrize(
    ("front", "named"),
    [
        pytest.param({"scope": "invoices.pay"}, "scope", id="scope"),
        pytest.param({"redirect_uri": "https://evil/cb"}, "redirect_uri", id="redirect_uri"),
        pytest.param({"state": "other"}, "state", id="state"),
        pytest.param({"code_challenge": "x" * 43}, "code_challenge", id="added-parameter"),
    ],
)
def test_substituted_parameters_are_refused(front: dict[str, str], named: str) -> None:
    with pytest.raises(PageOnlyInvalidRequest, match=named) as info:
        check_front_channel_params({"client_id": "c", "request_uri": "u", **front}, PUSHED)
    assert info.value.redirectable is False


def test_reference_ids_sort_by_the_time_the_reference_was_made() -> None:
    ids = []
    for _ in range(3):
        ids.append(reference_id(DIGESTER, new_reference()))
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_a_reference_id_keeps_the_time_in_clear_and_only_a_digest_of_the_secret() -> None:
    reference = new_reference()
    random_part = reference[12:]
    assert len(random_part) >= 43  # 256 bits, base64url
    stored = reference_id(DIGESTER, reference)
    assert stored.startswith(reference[:12])
    assert random_part not in stored
    assert stored[12:] == DIGESTER.digest("request_uri", reference)


def test_changing_the_time_part_of_a_reference_changes_its_id() -> None:
    reference = new_reference()
    forged = "0" * 12 + reference[12:]
    assert reference_id(DIGESTER, forged) != reference_id(DIGESTER, reference)
    assert reference_id(DIGESTER, forged)[12:] != reference_id(DIGESTER, reference)[12:]


def test_a_reference_from_before_the_time_part_keeps_its_plain_digest() -> None:
    old = new_secret()
    assert reference_id(DIGESTER, old) == DIGESTER.digest("request_uri", old)

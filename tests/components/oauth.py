"""OAuth helpers: PKCE, authorization requests, token claims, and the provider's login and
logout pages driven with plain HTTP."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

if TYPE_CHECKING:
    from components.provider import OidcProvider


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(code_verifier, code_challenge)`` pair for the S256 method."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified: for assertions about tokens only."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects the forms of a page with their hidden/preset input values, its iframes' sources
    and its ``<a id="continue">`` link (the provider's front-channel logout page)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.frames: list[str] = []
        self.continue_link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "iframe" and values.get("src"):
            self.frames.append(values["src"])
        elif tag == "a" and values.get("id") == "continue":
            self.continue_link = values.get("href")


def _parse_page(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


def _load_frames(client: httpx.Client, page_url: str, frames: list[str]) -> None:
    """Load a page's iframes as a browser would; one that fails to load does not stop it."""
    for src in frames:
        with contextlib.suppress(httpx.TransportError):
            client.get(urljoin(page_url, src), follow_redirects=True)


def _drive_provider(
    client: httpx.Client, url: str, answer: Callable[[_Form], dict[str, str] | None]
) -> str:
    """GET ``url`` on the provider, follow its redirects and answer its forms with ``answer``.

    Returns the first redirect that leaves the provider (scheme, host and port differ), unfollowed.
    The front-channel logout page counts as a redirect to its ``continue`` link, once its iframes
    are loaded, as a browser would.
    """
    provider_origin = urlsplit(url)[:2]
    response = client.get(url, follow_redirects=False)
    for _step in range(10):
        if response.is_redirect:
            location = response.headers["location"]
        elif response.status_code != 200:
            raise AssertionError(f"provider answered {response.status_code}: {response.text[:500]}")
        else:
            page = _parse_page(response.text)
            if not (page.frames and page.continue_link):
                response = _submit_form(client, response, page.forms, answer)
                continue
            _load_frames(client, str(response.url), page.frames)
            location = page.continue_link
        location = urljoin(str(response.url), location)
        if urlsplit(location)[:2] != provider_origin:
            return location
        response = client.get(location, follow_redirects=False)
    raise AssertionError(f"too many steps at the provider, last at {response.url}")


def _submit_form(
    client: httpx.Client,
    response: httpx.Response,
    forms: list[_Form],
    answer: Callable[[_Form], dict[str, str] | None],
) -> httpx.Response:
    """Submit the first of ``forms`` (on the page ``response``) that ``answer`` fills in."""
    answered = [(form, data) for form in forms if (data := answer(form)) is not None]
    if not answered:
        raise AssertionError(f"unexpected page at {response.url}: {response.text[:500]}")
    form, data = answered[0]
    action = urljoin(str(response.url), form.action)
    return client.post(action, data={**form.fields, **data}, follow_redirects=False)


def provider_login(client: httpx.Client, authorize_url: str, username: str) -> str:
    """Log ``username`` in through the provider's login (and consent) pages, with plain HTTP.

    ``client`` must keep cookies across calls (the provider's interaction cookies) and should be
    the same client for the app's requests, if any. Returns the redirect to the app's callback
    (``...?code=...&state=...`` or ``...?error=...``) without following it.
    """

    def answer(form: _Form) -> dict[str, str] | None:
        if form.fields.get("prompt") == "login":
            return {"login": username, "password": "any password"}
        if form.fields.get("prompt") == "consent":
            return {}
        return None

    return _drive_provider(client, authorize_url, answer)


def provider_logout(client: httpx.Client, end_session_url: str) -> str:
    """Confirm RP-initiated logout on the provider's page (``logout=yes``: the whole session).

    Returns the redirect to the ``post_logout_redirect_uri`` without following it, after loading
    the front-channel logout iframes of the provider's page, if any. Raises if the provider keeps
    the user on its own "signed out" page (no registered post-logout URI).
    """

    def answer(form: _Form) -> dict[str, str] | None:
        return {"logout": "yes"} if "xsrf" in form.fields else None

    return _drive_provider(client, end_session_url, answer)


def authorize_url(
    provider: OidcProvider,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    *,
    scope: str = "openid profile email offline_access",
    state: str | None = None,
    **params: str,
) -> str:
    """An authorization-code request URL with PKCE S256 and a random state and nonce."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state or secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return f"{provider.url('/auth')}?{urlencode(query)}"

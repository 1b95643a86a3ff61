"""Hostile input: hypothesis settings, hostile values and the strategies that combine them."""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .rules import EVIL, MARKUP

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI results do not flicker
    database=None,
    print_blob=False,
    # One app (and client) serves all examples of a test: that is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))

WEIRD = [
    "",
    " ",
    "%",
    "%zz",
    "%00",
    "%ff%fe",
    "%C0%AF",
    "\x00",
    "\r\nSet-Cookie: h0st1le=1",
    "\u202e\u2028\ufeff",
    "é€𝄞",
    "../../../etc/passwd",
    "${jndi:ldap://x}",
    "null",
    "[]",
    '{"a":1}',
    "a" * 600,
    "A" * 5000,
    "javascript:alert(1)",
    f"//{EVIL}",
    f"https://{EVIL}/",
]
PARAM_NAMES = [
    "returnTo",
    "returnto",
    "state",
    "code",
    "iss",
    "error",
    "error_description",
    "login_hint",
    "prompt",
    "screen_hint",
    "ui_locales",
    "organization",
    "invitation",
    "connection",
    "redirect_uri",
    "post_logout_redirect_uri",
    "client_id",
    "response_type",
    "logout_token",
    "__proto__",
]


# -- strategies ---------------------------------------------------------------------

texts = st.text(max_size=40)
hostile_text = st.one_of(
    st.sampled_from(MARKUP),
    st.sampled_from(WEIRD),
    texts,
    st.builds("".join, st.lists(st.sampled_from(MARKUP + WEIRD) | texts, max_size=4)),
)
param_names = st.sampled_from(PARAM_NAMES) | st.text(max_size=12)
query_pairs = st.lists(st.tuples(param_names, hostile_text), max_size=6)
ascii_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
header_value = st.sampled_from([m for m in MARKUP if "\n" not in m]) | ascii_value
HEADER_NAMES = [
    "accept",
    "accept-language",
    "authorization",
    "content-type",
    "forwarded",
    "host",
    "origin",
    "referer",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-proto",
    "x-original-url",
    "x-real-ip",
    "x-rewrite-url",
]
FORWARDING_HEADERS = [name for name in HEADER_NAMES if name == "host" or "forward" in name]
accepts = st.sampled_from(["text/html", "application/json", "*/*", "", "text/html;q=0"])

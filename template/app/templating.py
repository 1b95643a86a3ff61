"""The Jinja2 environment for pages and error pages (autoescaping on)."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.auth.urls import AUTH_PREFIX

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# Page templates link to the auth routes through this global, e.g. `auth ~ "/logout"`.
templates.env.globals["auth"] = AUTH_PREFIX

"""The Jinja2 environment for pages and error pages (autoescaping on)."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

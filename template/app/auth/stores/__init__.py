"""Where sessions are kept: the store this app was generated with (see `base.py`)."""

"""Local development: run the app against a built-in OpenID provider (`python -m devserver`)."""

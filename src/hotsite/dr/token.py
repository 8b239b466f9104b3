"""The project token, for the dr layer: it lives on the bottom floor (control_token.py)
because a blueprint's deployed agent is handed it too, and blueprint sits below dr."""

from hotsite.control_token import MIN_LENGTH, Token, load_token

__all__ = ["MIN_LENGTH", "Token", "load_token"]

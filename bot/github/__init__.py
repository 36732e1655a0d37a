"""Talking to GitHub as an App: settings, authentication, the REST client and git transport."""

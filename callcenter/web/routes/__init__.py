"""The web app's routers, one per page family."""

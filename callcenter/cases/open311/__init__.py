"""The Open311 GeoReport v2 API: parameters (``params``), answers (``formats``) and the router (``routes``)."""
